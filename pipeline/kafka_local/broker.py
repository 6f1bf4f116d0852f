"""A local single-node Apache Kafka broker (KRaft), run straight from Maven Central jars.

No Docker, no tarball: ``mvn dependency:copy-dependencies`` fetches ``kafka_2.13`` and its
runtime dependencies (plus an SLF4J binding) into ``<state_dir>/libs``, and the broker runs as
``java -cp 'libs/*' kafka.Kafka server.properties``, detached from the caller.

Layout of ``state_dir`` (default ``$PIPELINE_STATE_DIR/kafka``, else ``./var/kafka``)::

    libs/               the jars (replaced whole when KAFKA_VERSION changes)
    data/logs/          the broker's log.dirs (KRaft metadata and topic data)
    server.properties   written on every start from the LocalKafka fields
    log4j.properties    the broker's logging (INFO, quiet loggers turned down)
    broker.log          the broker's stdout/stderr (rotated once past 20 MB)
    broker.pid          the pid of the broker this state dir launched
    start.lock          serialises concurrent start() calls

An optional SASL_PLAINTEXT listener (``sasl_port``) accepts PLAIN and SCRAM-SHA-256 logins for
``sasl_users``; the SCRAM credentials are written into the KRaft metadata when the storage is
formatted (``StorageTool format --add-scram``), so give such a broker a fresh ``state_dir``.
Tests run it as a second broker next to the shared one, sharing its jars through ``libs``.

Only the standard library and kafka-python are used.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka.admin import KafkaAdminClient

from pipeline.paths import state_root

log = logging.getLogger(__name__)

#: The broker's message.max.bytes: the default max_record_bytes (4 MiB) plus the record overhead
#: allowance (pipeline.settings); a unit test keeps them equal, as for docker-compose.yml.
MESSAGE_MAX_BYTES = 4_259_840

#: The Apache Kafka version run locally. Mirrors the ``kafka.version`` property of pom.xml
#: (a unit test checks that they agree); docker-compose.yml uses the same tag.
KAFKA_VERSION = "3.9.1"

#: The pom that lists the broker's jars.
POM_PATH = Path(__file__).with_name("pom.xml")

#: Lines of broker.log quoted in a KafkaStartError.
LOG_TAIL_LINES = 30

#: Rotate broker.log (to broker.log.1) at start when it is larger than this.
LOG_ROTATE_BYTES = 20 * 1024 * 1024

#: Time allowed for Maven to fetch the jars (a cold download is ~50 MB).
MVN_TIMEOUT_S = 900.0

_BROKER_MAIN = "kafka.Kafka"
_STORAGE_TOOL = "kafka.tools.StorageTool"

#: SASL mechanisms the optional SASL listener enables (every user gets both).
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256")

#: User names and passwords go verbatim into JAAS and StorageTool arguments: keep them plain.
_SAFE_CREDENTIAL = re.compile(r"^[A-Za-z0-9._-]+$")
_PASSWORD_ARG = re.compile(r"(password=)[A-Za-z0-9._-]+")
_PLAIN_LOGIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
_SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"


_LOG4J_LINES = (
    "log4j.rootLogger=INFO, stdout",
    "log4j.appender.stdout=org.apache.log4j.ConsoleAppender",
    "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout",
    "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n",
    "log4j.logger.kafka=INFO",
    "log4j.logger.org.apache.kafka=INFO",
    # One line per request / full config dumps / per-partition chatter.
    "log4j.logger.kafka.request.logger=WARN",
    "log4j.logger.kafka.network.RequestChannel$=WARN",
    "log4j.logger.org.apache.kafka.common.config.AbstractConfig=WARN",
    "log4j.logger.kafka.server.KafkaConfig=WARN",
    "log4j.logger.org.apache.kafka.common.utils.AppInfoParser=WARN",
    "log4j.logger.kafka.authorizer.logger=WARN",
    "log4j.logger.state.change.logger=WARN",
    "log4j.logger.kafka.controller=INFO",
    "log4j.logger.kafka.log.LogCleaner=INFO",
    "",
)


class KafkaStartError(RuntimeError):
    """The local broker could not be set up or did not come up in time."""


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str
    detail: str
    startup_seconds: float | None = None


def default_state_dir() -> Path:
    """``kafka/`` under the project's state folder (``PIPELINE_STATE_DIR``, else ``./var``)."""
    return state_root() / "kafka"


def kafka_jar_name(version: str = KAFKA_VERSION) -> str:
    return f"kafka_2.13-{version}.jar"


def pom_kafka_version(pom: Path = POM_PATH) -> str:
    """The ``kafka.version`` property of the pom (the single place the build pins it)."""
    import xml.etree.ElementTree as ET

    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(pom).getroot().find("m:properties/m:kafka.version", ns)
    if node is None or not (node.text or "").strip():
        raise ValueError(f"{pom}: no <kafka.version> property")
    return node.text.strip()


# --------------------------------------------------------------------------- processes


def _proc_state(pid: int) -> str | None:
    """The one-letter state of a process from /proc (None when unknown or gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return "gone"
    except OSError:
        return None
    # "pid (comm) S ..." - comm may contain spaces and parentheses.
    return stat.rpartition(")")[2].split()[0] if ")" in stat else None


def _cmdline(pid: int) -> str | None:
    """The command line of a live process, or None if there is no such (non-zombie) process."""
    if pid <= 0:
        return None
    if Path("/proc").is_dir():
        state = _proc_state(pid)
        if state in ("gone", "Z", "X"):
            return None
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip() or None
    # No /proc (macOS): ask ps.
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    try:
        out = subprocess.run(
            ["ps", "-o", "stat=,command=", "-p", str(pid)],
            capture_output=True, text=True, timeout=5, check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not out or out.split(None, 1)[0].startswith("Z"):
        return None
    return out.split(None, 1)[1] if " " in out else None


def _reap(pid: int) -> None:
    """Collect the exit status if the process happens to be our child (no zombie left)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


# --------------------------------------------------------------------------- probing


def _port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class _ProbeAdmin(KafkaAdminClient):
    """KafkaAdminClient whose constructor stops its IO thread when bootstrap fails
    (kafka-python 3.0 starts that thread before bootstrapping and leaves it running then)."""

    def __init__(self, **configs):
        try:
            super().__init__(**configs)
        except BaseException:
            client = getattr(self, "_client", None)
            net = getattr(self, "_net", None)
            with contextlib.suppress(Exception):
                if client is not None:
                    client.close()
            with contextlib.suppress(Exception):
                if net is not None:
                    net.stop()
            raise


def _admin_list_topics(bootstrap: str, timeout: float, **security: Any) -> list[str]:
    """One ``list_topics`` admin request; raises on any failure."""
    ms = max(int(timeout * 1000), 500)
    admin = _ProbeAdmin(
        bootstrap_servers=bootstrap,
        client_id="pipeline-kafka-local-probe",
        bootstrap_timeout_ms=ms,
        request_timeout_ms=ms,
        reconnect_backoff_max_ms=1000,
        **security,
    )
    try:
        return list(admin.list_topics())
    finally:
        with contextlib.suppress(Exception):
            admin.close()


def probe(bootstrap: str, timeout: float = 3.0, **security: Any) -> tuple[bool, str]:
    """Does a Kafka broker answer an admin request (list topics) at ``bootstrap``?

    ``security`` takes kafka-python client options (``security_protocol``, ``sasl_*``,
    ``ssl_*``; see ``pipeline.security.kafka_python_options``) to probe a SASL/TLS listener.
    """
    host, _, port = bootstrap.rpartition(":")
    if not _port_open(host or "127.0.0.1", int(port), timeout=min(timeout, 1.0)):
        return False, f"nothing listening on {bootstrap}"
    try:
        topics = _admin_list_topics(bootstrap, timeout, **security)
    except Exception as exc:  # noqa: BLE001 - kafka-python raises many kinds while booting
        return False, f"{bootstrap} open but no admin answer ({type(exc).__name__}: {exc})"
    return True, f"answering on {bootstrap} ({len(topics)} topics)"


# --------------------------------------------------------------------------- the broker


@dataclass(frozen=True)
class LocalKafka:
    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 9092
    controller_port: int = 9093
    heap: str = "768m"
    #: Port of an extra SASL_PLAINTEXT listener (PLAIN and SCRAM-SHA-256); None: no SASL.
    sasl_port: int | None = None
    #: (name, password) pairs accepted on the SASL listener, by every mechanism.
    sasl_users: tuple[tuple[str, str], ...] = ()
    #: Where the jars live when not in ``<state_dir>/libs`` (a second broker shares them).
    libs: Path | None = None

    def __post_init__(self) -> None:
        for name, password in self.sasl_users:
            if not (_SAFE_CREDENTIAL.match(name) and _SAFE_CREDENTIAL.match(password)):
                raise ValueError(
                    f"SASL user {name!r}: names and passwords may use only letters, digits, '._-'"
                )

    def __repr__(self) -> str:  # never show the SASL passwords
        users = [name for name, _ in self.sasl_users]
        return (
            f"LocalKafka(state_dir={str(self.state_dir)!r}, bootstrap={self.bootstrap!r}, "
            f"sasl_port={self.sasl_port!r}, sasl_users={users!r})"
        )

    # -- paths ------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        """The SASL_PLAINTEXT listener's address (requires ``sasl_port``)."""
        if self.sasl_port is None:
            raise ValueError("this LocalKafka has no SASL listener (sasl_port is None)")
        return f"{self.host}:{self.sasl_port}"

    @property
    def libs_dir(self) -> Path:
        return Path(self.libs) if self.libs is not None else Path(self.state_dir) / "libs"

    @property
    def data_dir(self) -> Path:
        return Path(self.state_dir) / "data"

    @property
    def log_dirs(self) -> Path:
        return self.data_dir / "logs"

    @property
    def properties_path(self) -> Path:
        return Path(self.state_dir) / "server.properties"

    @property
    def log4j_path(self) -> Path:
        return Path(self.state_dir) / "log4j.properties"

    @property
    def log_path(self) -> Path:
        return Path(self.state_dir) / "broker.log"

    @property
    def pid_path(self) -> Path:
        return Path(self.state_dir) / "broker.pid"

    # -- generated files ----------------------------------------------------------------
    def server_properties(self) -> str:
        """The text of server.properties for a single-node KRaft broker+controller."""
        h = self.host
        listeners = f"PLAINTEXT://{h}:{self.port},CONTROLLER://{h}:{self.controller_port}"
        advertised = f"PLAINTEXT://{h}:{self.port}"
        protocols = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        if self.sasl_port is not None:
            listeners += f",SASL_PLAINTEXT://{h}:{self.sasl_port}"
            advertised += f",SASL_PLAINTEXT://{h}:{self.sasl_port}"
            protocols += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
        lines = [
            "# Written by pipeline.kafka_local on every start; edit LocalKafka, not this file.",
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{h}:{self.controller_port}",
            f"listeners={listeners}",
            f"advertised.listeners={advertised}",
            "inter.broker.listener.name=PLAINTEXT",
            "controller.listener.names=CONTROLLER",
            f"listener.security.protocol.map={protocols}",
            f"log.dirs={self.log_dirs.resolve()}",
            "num.partitions=4",
            "default.replication.factor=1",
            "min.insync.replicas=1",
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            # Topics created without a max.message.bytes of their own (Faust's changelogs) accept
            # what the worker's producer may send: Settings().output_topic_max_bytes.
            f"message.max.bytes={MESSAGE_MAX_BYTES}",
            "auto.create.topics.enable=true",
            "delete.topic.enable=true",
            "num.network.threads=3",
            "num.io.threads=4",
            "num.recovery.threads.per.data.dir=1",
            "log.retention.hours=168",
            "log.segment.bytes=1073741824",
            "log.retention.check.interval.ms=300000",
        ]
        if self.sasl_port is not None:
            plain_users = " ".join(f'user_{name}="{pw}"' for name, pw in self.sasl_users)
            prefix = "listener.name.sasl_plaintext"
            lines += [
                f"sasl.enabled.mechanisms={','.join(SASL_MECHANISMS)}",
                f"{prefix}.plain.sasl.jaas.config={_PLAIN_LOGIN} required {plain_users};",
                f"{prefix}.scram-sha-256.sasl.jaas.config={_SCRAM_LOGIN} required;",
            ]
        return "\n".join(lines) + "\n"

    def scram_arguments(self) -> list[str]:
        """``--add-scram`` arguments of StorageTool format: the SCRAM users, in KRaft metadata."""
        args: list[str] = []
        if self.sasl_port is None:
            return args
        for name, password in self.sasl_users:
            for mechanism in SASL_MECHANISMS:
                if mechanism.startswith("SCRAM-"):
                    args += ["--add-scram", f"{mechanism}=[name={name},password={password}]"]
        return args

    @staticmethod
    def log4j_properties() -> str:
        """Broker logging: INFO to stdout (which goes to broker.log), noisy loggers at WARN."""
        return "\n".join(_LOG4J_LINES)

    # -- jars ---------------------------------------------------------------------------
    def ensure_jars(self) -> Path:
        """Fetch the broker jars into ``libs/`` with Maven unless they are already there.

        Idempotent: skipped when ``libs/`` holds the kafka jar of KAFKA_VERSION. The download
        goes to a temporary folder renamed into place, so an interrupted fetch never leaves a
        half-filled ``libs/`` behind; a ``libs/`` of another version is replaced.
        """
        libs = self.libs_dir
        if (libs / kafka_jar_name()).is_file():
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaStartError(
                "Maven (mvn) is not on PATH; it is needed once to fetch the Kafka "
                f"{KAFKA_VERSION} jars (Debian: apt-get install -y maven)."
            )
        Path(self.state_dir).mkdir(parents=True, exist_ok=True)
        tmp = libs.with_name("libs.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        cmd = mvn_fetch_command(tmp, mvn=mvn)
        log.info("fetching Kafka %s jars: %s", KAFKA_VERSION, " ".join(cmd))
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=MVN_TIMEOUT_S, check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise KafkaStartError(
                f"Maven did not fetch the Kafka jars within {exc.timeout:.0f}s"
            ) from exc
        if proc.returncode != 0 or not (tmp / kafka_jar_name()).is_file():
            shutil.rmtree(tmp, ignore_errors=True)
            out = _tail_text((proc.stdout or "") + (proc.stderr or ""), LOG_TAIL_LINES)
            raise KafkaStartError(
                f"Maven could not fetch the Kafka {KAFKA_VERSION} jars "
                f"(exit {proc.returncode}): {' '.join(cmd)}\n{out}"
            )
        if libs.exists():
            shutil.rmtree(libs)
        tmp.rename(libs)
        return libs

    # -- pid file -----------------------------------------------------------------------
    def _read_pid(self) -> int | None:
        try:
            text = self.pid_path.read_text().strip()
        except OSError:
            return None
        try:
            return int(text)
        except ValueError:
            return None

    def _is_our_broker(self, pid: int) -> bool:
        """True if ``pid`` is alive and is a Kafka broker using this state dir's config."""
        cmd = _cmdline(pid)
        if cmd is None:
            return False
        return _BROKER_MAIN in cmd and str(self.properties_path.resolve()) in cmd

    def broker_pid(self) -> int | None:
        """The pid in broker.pid if that process is alive and is this state dir's broker."""
        pid = self._read_pid()
        if pid is not None and self._is_our_broker(pid):
            return pid
        return None

    def _clear_stale_pid(self) -> int | None:
        """Remove broker.pid when it does not name a live broker; returns the stale pid."""
        pid = self._read_pid()
        if self.pid_path.exists() and (pid is None or not self._is_our_broker(pid)):
            with contextlib.suppress(FileNotFoundError):
                self.pid_path.unlink()
            return pid
        return None

    # -- status -------------------------------------------------------------------------
    def status(self) -> BrokerStatus:
        ok, why = probe(self.bootstrap)
        pid = self.broker_pid()
        if ok:
            detail = why if pid is not None else f"{why}; not launched from {self.state_dir}"
            return BrokerStatus(True, pid, self.bootstrap, detail)
        if pid is not None:
            return BrokerStatus(False, pid, self.bootstrap, f"process {pid} alive but {why}")
        stale = self._read_pid() if self.pid_path.exists() else None
        if self.pid_path.exists():
            shown = stale if stale is not None else "unreadable"
            why += f"; stale pid file ({shown}, no such broker)"
        return BrokerStatus(False, None, self.bootstrap, f"not running: {why}")

    # -- start --------------------------------------------------------------------------
    def start(self, timeout: float = 90.0) -> BrokerStatus:
        """Start the broker unless one already answers on the bootstrap address.

        Returns once an admin request (list topics) answers. ``timeout`` bounds the wait for
        the launched JVM; fetching the jars the first time is bounded separately by Maven's
        own timeout (MVN_TIMEOUT_S). Raises KafkaStartError (with the tail of broker.log) when
        the broker exits early or does not answer in time; a broker that did not answer in
        time is stopped again.
        """
        t0 = time.monotonic()
        ok, why = probe(self.bootstrap)
        if ok:
            return self._already(why)
        Path(self.state_dir).mkdir(parents=True, exist_ok=True)
        with self._start_lock():
            ok, why = probe(self.bootstrap)
            if ok:
                return self._already(why)
            pid = self.broker_pid()
            if pid is not None:
                # Launched earlier from this state dir and still booting (or hung): wait for it.
                return self._wait_ready(pid, t0, time.monotonic(), timeout, launched=False)
            self._clear_stale_pid()
            for port in (self.port, self.controller_port, self.sasl_port):
                if port is not None and _port_open(self.host, port):
                    raise KafkaStartError(
                        f"{self.host}:{port} is in use by a process that does not answer as the "
                        f"Kafka broker ({why}); free the port or give LocalKafka other ports."
                    )
            self.ensure_jars()
            t_jars = time.monotonic()
            self._write_config()
            self._format_storage()
            t_launch = time.monotonic()
            pid = self._launch()
            log.info("launched Kafka %s (pid %d); waiting for %s", KAFKA_VERSION, pid,
                     self.bootstrap)
            st = self._wait_ready(pid, t0, t_launch, timeout, launched=True)
            return BrokerStatus(
                st.running, st.pid, st.bootstrap,
                f"{st.detail}; jars {t_jars - t0:.1f}s, format {t_launch - t_jars:.1f}s, "
                f"broker {time.monotonic() - t_launch:.1f}s",
                st.startup_seconds,
            )

    def _already(self, why: str) -> BrokerStatus:
        pid = self.broker_pid()
        suffix = "" if pid is not None else f" (not launched from {self.state_dir})"
        return BrokerStatus(True, pid, self.bootstrap, f"already running: {why}{suffix}")

    @contextlib.contextmanager
    def _start_lock(self) -> Iterator[None]:
        with open(Path(self.state_dir) / "start.lock", "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _write_config(self) -> None:
        self.log_dirs.mkdir(parents=True, exist_ok=True)
        _write_if_changed(self.properties_path, self.server_properties())
        _write_if_changed(self.log4j_path, self.log4j_properties())

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        if java_home and (Path(java_home) / "bin" / "java").is_file():
            return str(Path(java_home) / "bin" / "java")
        java = shutil.which("java")
        if java is None:
            raise KafkaStartError(
                "java is not on PATH (Kafka needs Java 17+; Debian: openjdk-17-jre-headless)"
            )
        return java

    def _java_cmd(self, main: str, *args: str, heap: str | None = None) -> list[str]:
        cmd = [self._java()]
        if heap:
            cmd += [f"-Xms{heap}", f"-Xmx{heap}"]
        cmd += [
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.log4j_path.resolve()}",
            f"-Dkafka.logs.dir={Path(self.state_dir).resolve()}",
            "-cp", str(self.libs_dir.resolve() / "*"),
            main, *args,
        ]
        return cmd

    def _format_storage(self) -> None:
        """Format log.dirs once (skipped when meta.properties exists)."""
        if (self.log_dirs / "meta.properties").is_file():
            return
        cluster_id = new_cluster_id()  # what `StorageTool random-uuid` prints, minus a JVM start
        self._run_java(
            _STORAGE_TOOL, "format", "-t", cluster_id,
            "-c", str(self.properties_path.resolve()), "--ignore-formatted",
            *self.scram_arguments(),
        )
        if not (self.log_dirs / "meta.properties").is_file():
            raise KafkaStartError(f"StorageTool format left no meta.properties in {self.log_dirs}")

    def _run_java(self, main: str, *args: str) -> str:
        cmd = self._java_cmd(main, *args, heap="256m")
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL
        )
        if proc.returncode != 0:
            shown = " ".join(_PASSWORD_ARG.sub(r"\1***", arg) for arg in args)
            raise KafkaStartError(
                f"{main} {shown} failed (exit {proc.returncode}):\n"
                + _tail_text(proc.stdout + proc.stderr, LOG_TAIL_LINES)
            )
        return proc.stdout

    def _launch(self) -> int:
        """Launch the broker detached (own session, re-parented to init); returns its pid."""
        self._rotate_log()
        with open(self.log_path, "ab") as fh:
            fh.write(
                f"\n===== pipeline.kafka_local: starting Kafka {KAFKA_VERSION} at "
                f"{time.strftime('%Y-%m-%d %H:%M:%S')} =====\n".encode()
            )
        cmd = self._java_cmd(_BROKER_MAIN, str(self.properties_path.resolve()), heap=self.heap)
        # A short-lived Python launches the JVM and exits, so the broker is nobody's child:
        # no zombie when it stops, no "subprocess still running" warning, and it outlives us.
        launcher = (
            "import subprocess, sys\n"
            "log = open(sys.argv[1], 'ab')\n"
            "p = subprocess.Popen(sys.argv[3:], cwd=sys.argv[2], stdin=subprocess.DEVNULL,\n"
            "                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)\n"
            "print(p.pid, flush=True)\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", launcher, str(self.log_path.resolve()),
             str(Path(self.state_dir).resolve()), *cmd],
            capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL,
        )
        try:
            pid = int(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise KafkaStartError(
                f"could not launch the broker (exit {proc.returncode}): {proc.stderr.strip()}"
            ) from None
        tmp = self.pid_path.with_suffix(".pid.tmp")
        tmp.write_text(f"{pid}\n")
        tmp.replace(self.pid_path)
        return pid

    def _wait_ready(
        self, pid: int, t0: float, t_launch: float, timeout: float, *, launched: bool
    ) -> BrokerStatus:
        deadline = t_launch + timeout
        why = "not probed yet"
        while True:
            ok, why = probe(self.bootstrap, timeout=min(3.0, max(0.5, deadline - time.monotonic())))
            if ok:
                secs = round(time.monotonic() - t0, 2)
                what = "started" if launched else "came up"
                return BrokerStatus(True, pid, self.bootstrap, f"{what} (pid {pid}): {why}", secs)
            if _cmdline(pid) is None:
                _reap(pid)
                with contextlib.suppress(FileNotFoundError):
                    self.pid_path.unlink()
                raise KafkaStartError(
                    f"the Kafka broker (pid {pid}) exited during start-up; last lines of "
                    f"{self.log_path}:\n{self.log_tail()}"
                )
            if time.monotonic() >= deadline:
                tail = self.log_tail()
                self.stop()
                raise KafkaStartError(
                    f"the Kafka broker (pid {pid}) did not answer on {self.bootstrap} within "
                    f"{timeout:.0f}s ({why}); it was stopped. "
                    f"Last lines of {self.log_path}:\n{tail}"
                )
            time.sleep(0.25)

    def _rotate_log(self) -> None:
        with contextlib.suppress(OSError):
            if self.log_path.stat().st_size > LOG_ROTATE_BYTES:
                self.log_path.replace(self.log_path.with_name(self.log_path.name + ".1"))

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 64 * 1024))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return "(no broker.log)"
        return _tail_text(text, lines)

    # -- stop ---------------------------------------------------------------------------
    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM the broker this state dir launched, SIGKILL after ``timeout``.

        Returns True if it was running. A broker not launched from this state dir (no live
        pid in broker.pid) is left alone; a stale pid file is removed.
        """
        pid = self.broker_pid()
        if pid is None:
            self._clear_stale_pid()
            return False
        log.info("stopping Kafka broker pid %d", pid)
        _signal(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            log.warning("Kafka broker pid %d ignored SIGTERM for %.0fs; killing it", pid, timeout)
            _signal(pid, signal.SIGKILL)
            _wait_gone(pid, 10.0)
        with contextlib.suppress(FileNotFoundError):
            self.pid_path.unlink()
        return True


def new_cluster_id() -> str:
    """A random KRaft cluster id: 16 random bytes, URL-safe base64 without padding, never
    starting with '-' (like Kafka's ``Uuid.randomUuid().toString()``)."""
    while True:
        text = base64.urlsafe_b64encode(os.urandom(16)).decode("ascii").rstrip("=")
        if not text.startswith("-"):
            return text


def mvn_fetch_command(output_dir: Path, *, mvn: str = "mvn", pom: Path = POM_PATH) -> list[str]:
    """The Maven command that copies the broker's runtime jars into ``output_dir``."""
    return [
        mvn, "-q", "-B", "-f", str(pom),
        "dependency:copy-dependencies", "-DincludeScope=runtime",
        f"-DoutputDirectory={Path(output_dir).resolve()}",
    ]


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        _reap(pid)
        if _cmdline(pid) is None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def _write_if_changed(path: Path, text: str) -> None:
    try:
        if path.read_text() == text:
            return
    except OSError:
        pass
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _tail_text(text: str, lines: int) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])
