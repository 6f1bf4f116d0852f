"""Kafka security settings: validation, the options each client gets, secrets kept out of sight.

No broker here (tests/integration/test_sasl.py runs a SASL broker); these are pure checks.
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from faust.types.auth import AuthProtocol, SASLMechanism

from pipeline.kafka_local import LocalKafka
from pipeline.kafka_local.broker import new_cluster_id
from pipeline.security import (
    KafkaAccessError,
    check_access,
    describe,
    faust_credentials,
    kafka_python_options,
    ssl_context,
)
from pipeline.settings import Settings, SettingsError, load_settings

PASSWORD = "s3cr3t-Passw0rd-xyz"
CA_BUNDLE = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")


@pytest.fixture(autouse=True)
def no_security_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "PIPELINE_KAFKA_SECURITY_PROTOCOL", "PIPELINE_KAFKA_SASL_MECHANISM",
        "PIPELINE_KAFKA_SASL_USERNAME", "PIPELINE_KAFKA_SASL_PASSWORD",
        "PIPELINE_KAFKA_SSL_CAFILE", "PIPELINE_KAFKA_SSL_CERTFILE", "PIPELINE_KAFKA_SSL_KEYFILE",
    ):
        monkeypatch.delenv(name, raising=False)


def sasl(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": "SCRAM-SHA-256",
        "kafka_sasl_username": "alice",
        "kafka_sasl_password": PASSWORD,
    }
    values.update(overrides)
    return load_settings(**values)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- settings


def test_plaintext_is_the_default() -> None:
    settings = load_settings()
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert settings.kafka_sasl_password is None
    assert faust_credentials(settings) is None
    assert kafka_python_options(settings) == {"security_protocol": "PLAINTEXT"}


def test_security_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("PIPELINE_KAFKA_SASL_MECHANISM", "scram-sha-512")
    monkeypatch.setenv("PIPELINE_KAFKA_SASL_USERNAME", "svc-pipeline")
    monkeypatch.setenv("PIPELINE_KAFKA_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("PIPELINE_KAFKA_SSL_CAFILE", str(CA_BUNDLE))
    settings = load_settings()
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-512"
    assert settings.kafka_sasl_username == "svc-pipeline"
    assert settings.kafka_sasl_password.get_secret_value() == PASSWORD
    assert settings.kafka_ssl_cafile == CA_BUNDLE


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kafka_sasl_username": None}, "PIPELINE_KAFKA_SASL_USERNAME"),
        ({"kafka_sasl_password": None}, "PIPELINE_KAFKA_SASL_PASSWORD"),
        ({"kafka_sasl_password": ""}, "PIPELINE_KAFKA_SASL_PASSWORD"),
        ({"kafka_sasl_mechanism": "GSSAPI"}, "kafka_sasl_mechanism"),
        ({"kafka_security_protocol": "TLS"}, "kafka_security_protocol"),
        ({"kafka_security_protocol": "PLAINTEXT"}, "use SASL_PLAINTEXT or SASL_SSL"),
        ({"kafka_ssl_cafile": "/nonexistent/ca.pem"}, "kafka_ssl_cafile"),
        ({"kafka_ssl_cafile": str(CA_BUNDLE)}, "use SSL or SASL_SSL"),
        (
            {"kafka_security_protocol": "SASL_SSL", "kafka_ssl_keyfile": str(CA_BUNDLE)},
            "kafka_ssl_keyfile needs kafka_ssl_certfile",
        ),
    ],
)
def test_incomplete_or_contradictory_security_fails_at_start_up(
    overrides: dict, message: str
) -> None:
    with pytest.raises(SettingsError, match=message) as failure:
        sasl(**overrides)
    assert PASSWORD not in str(failure.value)


def test_password_is_never_in_repr_str_or_dumps() -> None:
    settings = sasl()
    for text in (repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())):
        assert PASSWORD not in text
    assert "**********" in repr(settings)
    assert PASSWORD not in repr(faust_credentials(settings))
    assert PASSWORD not in describe(settings) and "alice" in describe(settings)


def test_empty_environment_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_KAFKA_SASL_USERNAME", "")
    monkeypatch.setenv("PIPELINE_KAFKA_SASL_PASSWORD", " ")
    monkeypatch.setenv("PIPELINE_KAFKA_SSL_CAFILE", "")
    settings = load_settings()
    assert settings.kafka_sasl_username is None and settings.kafka_sasl_password is None


# --------------------------------------------------------------------------- client options


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_faust_gets_sasl_credentials_that_aiokafka_understands(mechanism: str) -> None:
    credentials = faust_credentials(sasl(kafka_sasl_mechanism=mechanism))
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol is AuthProtocol.SASL_PLAINTEXT
    assert credentials.mechanism is SASLMechanism(mechanism)
    # What faust's aiokafka driver hands to AIOKafkaConsumer/Producer.
    assert credentials_to_aiokafka_auth(credentials) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "alice",
        "sasl_plain_password": PASSWORD,
        "ssl_context": None,
    }


def test_faust_app_takes_the_credentials() -> None:
    app = faust.App("security-unit-test", broker="kafka://127.0.0.1:1",
                    broker_credentials=faust_credentials(sasl()))
    assert app.conf.broker_credentials.mechanism is SASLMechanism.SCRAM_SHA_256


def test_sasl_ssl_and_ssl_carry_a_verifying_tls_context() -> None:
    credentials = faust_credentials(
        sasl(kafka_security_protocol="SASL_SSL", kafka_ssl_cafile=str(CA_BUNDLE))
    )
    assert credentials.protocol is AuthProtocol.SASL_SSL
    assert credentials.ssl_context.verify_mode is ssl.CERT_REQUIRED
    assert credentials.ssl_context.check_hostname is True

    tls_only = load_settings(kafka_security_protocol="SSL", kafka_ssl_check_hostname=False)
    credentials = faust_credentials(tls_only)
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials_to_aiokafka_auth(credentials)["security_protocol"] == "SSL"
    assert credentials.context.check_hostname is False
    assert ssl_context(load_settings()) is None


def test_kafka_python_clients_get_the_same_security() -> None:
    options = kafka_python_options(sasl(kafka_sasl_mechanism="PLAIN"))
    assert options == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "alice",
        "sasl_plain_password": PASSWORD,
    }
    tls = kafka_python_options(load_settings(kafka_security_protocol="SSL"))
    assert tls["security_protocol"] == "SSL" and isinstance(tls["ssl_context"], ssl.SSLContext)


def test_kafka_python_accepts_the_options() -> None:
    from kafka.producer.kafka import KafkaProducer

    options = kafka_python_options(sasl())
    assert set(options) <= set(KafkaProducer.DEFAULT_CONFIG)


def test_access_check_skips_plaintext_and_gives_up_on_an_unreachable_broker() -> None:
    assert check_access(load_settings()) == ""
    port = free_port()
    settings = sasl(kafka_bootstrap_servers=f"127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(KafkaAccessError, match=f"cannot reach Kafka at 127.0.0.1:{port}"):
        check_access(settings, timeout=2.0)
    assert time.monotonic() - started < 10


# --------------------------------------------------------------------------- local SASL broker


def test_local_broker_has_no_sasl_listener_by_default() -> None:
    k = LocalKafka(Path("/var/tmp/kafka-state"))
    settings_lines = [line for line in k.server_properties().splitlines() if "log.dirs" not in line]
    assert not any("sasl" in line.lower() for line in settings_lines)
    assert k.scram_arguments() == []


def test_local_broker_sasl_listener_for_plain_and_scram(tmp_path: Path) -> None:
    k = LocalKafka(
        tmp_path / "sasl", port=19192, controller_port=19193, sasl_port=19194,
        sasl_users=(("alice", PASSWORD),), libs=tmp_path / "shared-libs",
    )
    props = dict(
        line.split("=", 1) for line in k.server_properties().splitlines()
        if line and not line.startswith("#")
    )
    assert props["listeners"].endswith(",SASL_PLAINTEXT://127.0.0.1:19194")
    assert "SASL_PLAINTEXT://127.0.0.1:19194" in props["advertised.listeners"]
    assert "SASL_PLAINTEXT:SASL_PLAINTEXT" in props["listener.security.protocol.map"]
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["sasl.enabled.mechanisms"] == "PLAIN,SCRAM-SHA-256"
    plain = props["listener.name.sasl_plaintext.plain.sasl.jaas.config"]
    assert "PlainLoginModule required" in plain and f'user_alice="{PASSWORD}"' in plain
    assert "ScramLoginModule" in props["listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config"]
    assert k.scram_arguments() == ["--add-scram", f"SCRAM-SHA-256=[name=alice,password={PASSWORD}]"]
    assert k.sasl_bootstrap == "127.0.0.1:19194"
    assert k.libs_dir == tmp_path / "shared-libs"
    assert PASSWORD not in repr(k)


def test_local_broker_refuses_credentials_that_would_break_jaas(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="letters, digits"):
        LocalKafka(tmp_path, sasl_port=19194, sasl_users=(("alice", 'pa"ss'),))


def test_cluster_ids_look_like_kafka_uuids() -> None:
    for _ in range(50):
        cluster_id = new_cluster_id()
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """A TLS endpoint on 127.0.0.1 with a fresh self-signed certificate (not a Kafka broker:
    enough to check the handshake, which comes first)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("`openssl` is not on PATH (apt-get install -y openssl)", pytrace=False)
    workdir = tmp_path_factory.mktemp("tls")
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        capture_output=True, check=True, timeout=60,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with contextlib.suppress(OSError), conn:
                conn.settimeout(5)
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], cert
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def test_an_untrusted_broker_certificate_fails_fast_naming_the_ca_setting(tls_server) -> None:
    port, _ = tls_server
    settings = load_settings(
        kafka_bootstrap_servers=f"127.0.0.1:{port}", kafka_security_protocol="SSL"
    )
    started = time.monotonic()
    with pytest.raises(KafkaAccessError, match="TLS handshake") as failure:
        check_access(settings, timeout=10)
    assert time.monotonic() - started < 5
    assert "CERTIFICATE_VERIFY_FAILED" in str(failure.value)
    assert "PIPELINE_KAFKA_SSL_CAFILE" in str(failure.value)


def test_the_configured_ca_file_is_trusted(tls_server) -> None:
    port, cert = tls_server
    context = ssl_context(load_settings(kafka_security_protocol="SSL", kafka_ssl_cafile=str(cert)))
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    with raw, context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.version() is not None
        tls.sendall(b"x")
