"""Pure tests of pipeline.kafka_local: generated files, the pinned version, pid-file handling.

No broker, no Java, no Maven: processes used here are short Python sleepers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pipeline import kafka_local
from pipeline.kafka_local import (
    KAFKA_VERSION,
    POM_PATH,
    KafkaStartError,
    LocalKafka,
    kafka_jar_name,
    mvn_fetch_command,
    pom_kafka_version,
)

POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse_properties(text: str) -> dict[str, str]:
    props: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        assert key not in props, f"duplicate key {key}"
        props[key] = value
    return props


@pytest.fixture
def offline_kafka(tmp_path: Path) -> LocalKafka:
    """A LocalKafka on ports where nothing listens (so probes answer 'not running' at once)."""
    return LocalKafka(tmp_path / "kafka", port=free_port(), controller_port=free_port())


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --------------------------------------------------------------------------- version / pom


def test_version_constant_matches_pom() -> None:
    assert pom_kafka_version(POM_PATH) == KAFKA_VERSION == "3.9.1"


def test_pom_pins_kafka_and_its_reload4j_binding_through_properties() -> None:
    root = ET.parse(POM_PATH).getroot()
    props = {el.tag.split("}")[1]: el.text for el in root.find("m:properties", POM_NS)}
    deps = {
        (d.findtext("m:groupId", namespaces=POM_NS), d.findtext("m:artifactId", namespaces=POM_NS)):
            d.findtext("m:version", namespaces=POM_NS)
        for d in root.iterfind("m:dependencies/m:dependency", POM_NS)
    }
    assert deps[("org.apache.kafka", "kafka_2.13")] == "${kafka.version}"
    assert props["kafka.version"] == KAFKA_VERSION
    resolved = {k: props.get(v[2:-1], v) if v.startswith("${") else v for k, v in deps.items()}
    assert resolved[("org.slf4j", "slf4j-reload4j")] == "1.7.36"
    assert resolved[("ch.qos.reload4j", "reload4j")] == "1.2.25"
    # The version appears literally only once in the pom (the property).
    assert POM_PATH.read_text().count(KAFKA_VERSION) == 1


def test_pom_is_packaged_with_the_module() -> None:
    assert POM_PATH.parent == Path(kafka_local.__file__).parent
    assert POM_PATH.is_file()


def test_mvn_command_copies_runtime_dependencies(tmp_path: Path) -> None:
    cmd = mvn_fetch_command(tmp_path / "libs")
    assert cmd[0] == "mvn"
    assert "-q" in cmd
    assert cmd[cmd.index("-f") + 1] == str(POM_PATH)
    assert "dependency:copy-dependencies" in cmd
    assert "-DincludeScope=runtime" in cmd
    assert f"-DoutputDirectory={(tmp_path / 'libs').resolve()}" in cmd


# --------------------------------------------------------------------------- generated files


def test_server_properties_single_node_kraft(tmp_path: Path) -> None:
    k = LocalKafka(tmp_path / "kafka")
    props = parse_properties(k.server_properties())
    expected = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": "1@127.0.0.1:9093",
        "listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
        "advertised.listeners": "PLAINTEXT://127.0.0.1:9092",
        "controller.listener.names": "CONTROLLER",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "num.partitions": "4",
        "auto.create.topics.enable": "true",
    }
    for key, value in expected.items():
        assert props[key] == value, key
    protocols = dict(p.split(":") for p in props["listener.security.protocol.map"].split(","))
    assert protocols == {"CONTROLLER": "PLAINTEXT", "PLAINTEXT": "PLAINTEXT"}
    log_dirs = Path(props["log.dirs"])
    assert log_dirs.is_absolute()
    assert log_dirs.is_relative_to((tmp_path / "kafka" / "data").resolve())


def test_server_properties_follow_port_overrides(tmp_path: Path) -> None:
    k = LocalKafka(tmp_path, host="127.0.0.2", port=19092, controller_port=19093)
    props = parse_properties(k.server_properties())
    assert props["listeners"] == "PLAINTEXT://127.0.0.2:19092,CONTROLLER://127.0.0.2:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.2:19092"
    assert props["controller.quorum.voters"] == "1@127.0.0.2:19093"
    assert k.bootstrap == "127.0.0.2:19092"


def test_log4j_properties_info_but_quiet() -> None:
    props = parse_properties(LocalKafka.log4j_properties())
    assert props["log4j.rootLogger"].startswith("INFO")
    assert props["log4j.logger.kafka.request.logger"] == "WARN"
    assert props["log4j.logger.kafka.server.KafkaConfig"] == "WARN"
    assert "ConsoleAppender" in props["log4j.appender.stdout"]


def test_java_command_uses_heap_log4j_and_libs(tmp_path: Path) -> None:
    k = LocalKafka(tmp_path / "kafka", heap="512m")
    cmd = k._java_cmd("kafka.Kafka", str(k.properties_path), heap=k.heap)
    assert "-Xms512m" in cmd and "-Xmx512m" in cmd
    assert f"-Dlog4j.configuration=file:{k.log4j_path.resolve()}" in cmd
    assert cmd[cmd.index("-cp") + 1] == str(k.libs_dir.resolve() / "*")
    assert cmd[-2:] == ["kafka.Kafka", str(k.properties_path)]


# --------------------------------------------------------------------------- jars


def test_ensure_jars_skips_maven_when_the_jar_is_there(
    offline_kafka: LocalKafka, monkeypatch: pytest.MonkeyPatch
) -> None:
    offline_kafka.libs_dir.mkdir(parents=True)
    (offline_kafka.libs_dir / kafka_jar_name()).touch()

    def no_maven(*args, **kwargs):
        raise AssertionError("mvn must not run when the jars are present")

    monkeypatch.setattr(subprocess, "run", no_maven)
    assert offline_kafka.ensure_jars() == offline_kafka.libs_dir


def test_ensure_jars_without_maven_says_so(
    offline_kafka: LocalKafka, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A libs/ of another version does not count as present.
    offline_kafka.libs_dir.mkdir(parents=True)
    (offline_kafka.libs_dir / kafka_jar_name("0.0.1")).touch()
    monkeypatch.setenv("PATH", "")
    with pytest.raises(KafkaStartError, match="Maven"):
        offline_kafka.ensure_jars()


# --------------------------------------------------------------------------- pid handling


def test_status_not_running_without_pid_file(offline_kafka: LocalKafka) -> None:
    st = offline_kafka.status()
    assert not st.running
    assert st.pid is None
    assert st.bootstrap == offline_kafka.bootstrap
    assert "not running" in st.detail


def test_stale_pid_of_a_dead_process(offline_kafka: LocalKafka) -> None:
    pid = dead_pid()
    offline_kafka.pid_path.parent.mkdir(parents=True)
    offline_kafka.pid_path.write_text(f"{pid}\n")

    assert offline_kafka.broker_pid() is None
    st = offline_kafka.status()
    assert not st.running and st.pid is None
    assert "stale pid file" in st.detail

    assert offline_kafka.stop(timeout=1) is False
    assert not offline_kafka.pid_path.exists(), "stop() removes a stale pid file"


@pytest.mark.parametrize("content", ["", "garbage\n", "-5\n"])
def test_unreadable_pid_file(offline_kafka: LocalKafka, content: str) -> None:
    offline_kafka.pid_path.parent.mkdir(parents=True)
    offline_kafka.pid_path.write_text(content)
    assert offline_kafka.status().pid is None
    assert offline_kafka.stop(timeout=1) is False
    assert not offline_kafka.pid_path.exists()


def test_pid_of_an_unrelated_live_process_is_never_signalled(offline_kafka: LocalKafka) -> None:
    # A recycled pid: alive, but not a Kafka broker of this state dir (here: pytest itself).
    offline_kafka.pid_path.parent.mkdir(parents=True)
    offline_kafka.pid_path.write_text(f"{os.getpid()}\n")
    assert offline_kafka.broker_pid() is None
    assert offline_kafka.status().pid is None
    assert offline_kafka.stop(timeout=1) is False  # and we are still alive to assert it


def _fake_broker(k: LocalKafka, *, ignore_term: bool = False) -> subprocess.Popen:
    """A Python sleeper whose command line looks like this state dir's broker."""
    code = "import signal, time\n"
    if ignore_term:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "print('up', flush=True)\ntime.sleep(60)\n"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "kafka.Kafka", str(k.properties_path.resolve())],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"up"
    k.pid_path.parent.mkdir(parents=True, exist_ok=True)
    k.pid_path.write_text(f"{proc.pid}\n")
    return proc


def test_live_broker_pid_is_recognised_and_stopped(offline_kafka: LocalKafka) -> None:
    proc = _fake_broker(offline_kafka)
    try:
        assert offline_kafka.broker_pid() == proc.pid
        st = offline_kafka.status()
        assert not st.running  # alive but not answering
        assert st.pid == proc.pid and "alive" in st.detail
        assert offline_kafka.stop(timeout=10) is True
        assert proc.wait(timeout=5) is not None
        assert not offline_kafka.pid_path.exists()
        assert offline_kafka.stop(timeout=1) is False
    finally:
        proc.kill()
        proc.wait()


def test_stop_escalates_to_sigkill(offline_kafka: LocalKafka) -> None:
    proc = _fake_broker(offline_kafka, ignore_term=True)
    try:
        t0 = time.monotonic()
        assert offline_kafka.stop(timeout=0.5) is True
        proc.wait(timeout=5)  # already reaped by stop(); the exit status is not kept
        assert offline_kafka.broker_pid() is None
        assert time.monotonic() - t0 < 10
    finally:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------- start guards


def test_start_refuses_a_port_held_by_something_else(offline_kafka: LocalKafka) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", offline_kafka.controller_port))
        squatter.listen()
        with pytest.raises(KafkaStartError, match="in use"):
            offline_kafka.start(timeout=5)
    assert not offline_kafka.libs_dir.exists(), "no jar download before the port check"


def test_log_tail_keeps_the_last_lines(offline_kafka: LocalKafka) -> None:
    offline_kafka.log_path.parent.mkdir(parents=True)
    offline_kafka.log_path.write_text("".join(f"line {i}\n" for i in range(100)))
    tail = offline_kafka.log_tail().splitlines()
    assert len(tail) == 30
    assert tail[0] == "line 70" and tail[-1] == "line 99"
    assert "no broker.log" in LocalKafka(offline_kafka.state_dir / "none").log_tail()
