"""Kafka security settings -> client options, and a start-up check that the broker lets us in.

One translation of `Settings.kafka_*` for the three kinds of clients in the project:

- `faust_credentials(settings)`   the Faust app's ``broker_credentials`` (aiokafka underneath)
- `kafka_python_options(settings)` keyword arguments for kafka-python's producer/consumer/admin
- `check_access(settings)`         one authenticated connection per bootstrap server, so a wrong
                                   password fails in a second with a clear message instead of
                                   clients retrying silently until a 30 s bootstrap timeout

The SASL password leaves its SecretStr only inside the dictionaries handed to the clients;
nothing here logs or formats it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ssl
import time
from typing import Any

import faust
from faust.types.auth import CredentialsT

from pipeline.settings import Settings

#: How long check_access keeps trying to reach an unreachable broker (an auth refusal is final).
ACCESS_TIMEOUT_SECONDS = 20.0


class KafkaAccessError(RuntimeError):
    """The broker refused us (authentication, TLS) or could not be reached."""


def uses_sasl(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")


def uses_tls(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """A client TLS context from the kafka_ssl_* settings (None unless SSL or SASL_SSL)."""
    if not uses_tls(settings):
        return None
    cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    context.check_hostname = settings.kafka_ssl_check_hostname
    if settings.kafka_ssl_certfile is not None:
        context.load_cert_chain(
            str(settings.kafka_ssl_certfile),
            str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
        )
    return context


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """``broker_credentials`` for faust.App: SASLCredentials (PLAIN/SCRAM, with TLS for
    SASL_SSL), SSLCredentials, or None for PLAINTEXT."""
    context = ssl_context(settings)
    if uses_sasl(settings):
        assert settings.kafka_sasl_password is not None  # Settings validated it
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context,  # set -> SASL_SSL, None -> SASL_PLAINTEXT
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def kafka_python_options(settings: Settings) -> dict[str, Any]:
    """Security keyword arguments for kafka-python's KafkaProducer/KafkaConsumer/KafkaAdminClient."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if uses_sasl(settings):
        assert settings.kafka_sasl_password is not None
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password.get_secret_value(),
        )
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    return options


def _aiokafka_options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "security_protocol": settings.kafka_security_protocol,
        "ssl_context": ssl_context(settings),
    }
    if uses_sasl(settings):
        assert settings.kafka_sasl_password is not None
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password.get_secret_value(),
        )
    return options


def describe(settings: Settings) -> str:
    """How we connect, for messages: protocol, mechanism and user (never the password)."""
    if uses_sasl(settings):
        return (
            f"{settings.kafka_security_protocol} {settings.kafka_sasl_mechanism} "
            f"as user {settings.kafka_sasl_username!r}"
        )
    return settings.kafka_security_protocol


def check_access(settings: Settings, timeout: float = ACCESS_TIMEOUT_SECONDS) -> str:
    """Open one connection (TLS handshake, SASL authentication) to a bootstrap server.

    Returns the server that let us in. Raises KafkaAccessError at once when the broker refuses
    the credentials or the mechanism, or the TLS handshake fails; after ``timeout`` when no
    server can be reached. PLAINTEXT has nothing to check and returns without connecting.
    """
    if settings.kafka_security_protocol == "PLAINTEXT":
        return ""
    # aiokafka is asyncio; run it on a private loop in a thread so the caller's thread (where
    # Faust later makes its own loop) keeps a pristine event-loop state.
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kafka-access") as pool:
        return pool.submit(asyncio.run, _check_access(settings, timeout)).result()


async def _check_access(settings: Settings, timeout: float) -> str:
    from aiokafka.conn import create_conn
    from aiokafka.errors import (
        SaslAuthenticationFailed,
        UnsupportedSaslMechanismError,
    )

    servers = [s.strip() for s in settings.kafka_bootstrap_servers.split(",") if s.strip()]
    deadline = time.monotonic() + timeout
    last_error = "no bootstrap server configured"
    how = describe(settings)
    while True:
        for server in servers:
            host, _, port = server.rpartition(":")
            remaining = max(1.0, deadline - time.monotonic())
            try:
                conn = await asyncio.wait_for(
                    create_conn(
                        host or "localhost",
                        int(port or 9092),
                        client_id="pipeline-access-check",
                        request_timeout_ms=int(min(remaining, 10.0) * 1000),
                        **_aiokafka_options(settings),
                    ),
                    timeout=min(remaining, 15.0),
                )
            except SaslAuthenticationFailed as exc:
                raise KafkaAccessError(
                    f"Kafka authentication failed at {server} ({how}): {_broker_says(exc)}. "
                    "Check PIPELINE_KAFKA_SASL_USERNAME, PIPELINE_KAFKA_SASL_PASSWORD and "
                    "PIPELINE_KAFKA_SASL_MECHANISM."
                ) from None
            except UnsupportedSaslMechanismError:
                raise KafkaAccessError(
                    f"Kafka authentication failed at {server}: the broker does not enable SASL "
                    f"mechanism {settings.kafka_sasl_mechanism} (PIPELINE_KAFKA_SASL_MECHANISM)."
                ) from None
            except ssl.SSLError as exc:
                raise KafkaAccessError(
                    f"TLS handshake with Kafka at {server} failed ({how}): {exc.reason or exc}. "
                    "Check PIPELINE_KAFKA_SSL_CAFILE (and the client certificate, if any)."
                ) from None
            except Exception as exc:  # noqa: BLE001 - unreachable, refused, timed out: retry
                last_error = f"{server}: {type(exc).__name__}: {exc}"
                continue
            conn.close()
            return server
        if time.monotonic() >= deadline:
            raise KafkaAccessError(
                f"cannot reach Kafka at {settings.kafka_bootstrap_servers} ({how}) within "
                f"{timeout:.0f} s; last error: {last_error}"
            )
        await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def _broker_says(exc: BaseException) -> str:
    """The broker's error message, without aiokafka's class-name prefix."""
    text = str(exc.args[0]) if exc.args else str(exc)
    return text.rstrip(".")
