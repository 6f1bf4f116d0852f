"""Throughput, latency and CPU of the pipeline through Kafka, against bare NER on every core.

On one corpus (benchmarks/_corpus.py: five English and two French real pages, optionally the
seed, copied into distinct articles):

  a  the floor: bare NER on every core, `nlp.pipe(texts, n_process=cores)` with the worker's
     NER-only models over each article's cleaned text; with story linking on, then the story
     embedding (`Embedder` over `embedding_text(title, text)`) on a pool of one process per core.
  b  the pipeline through the real broker: `--workers` `pipeline worker` processes with the
     default settings (or --worker-env), every article produced at once, timed from the first
     send until the last article comes out at a consumer.
     (a) and (b) alternate `--runs` times on fresh copies: each run is printed, then the median.
  c  latency at half of (b)'s median rate on the same workers: send to receipt at a consumer.

Beside the rates: CPU per article of the workers with their child processes against the
floor's, the hypervisor's steal time in each phase, each stage's time from the workers' /metrics
(`pipeline_stage_duration_seconds`) over the (b) runs, the workers' memory after (c). The
workers run on topics and an app id of their own (`pipeline.launch`), deleted at the end.
Needs the broker (`pipeline kafka start`); run from the repository root.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import astuple, dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

import orjson
import psutil
from kafka import KafkaConsumer, KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _corpus import PAGES, PAGES_DIR, SEED, BaseArticle, Copy, base_articles, make_copies

from pipeline.analysis import PreparedArticle, prepare
from pipeline.launch import Deployment, http_get
from pipeline.settings import Settings, load_settings
from pipeline.stages.entities import EntityRecognizer
from pipeline.stages.story import Embedder, embedding_text

CORES = len(os.sched_getaffinity(0))
T = TypeVar("T")


# --- what a phase used ----------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """A phase's wall seconds and CPU seconds of the processes doing its work; of the whole
    machine, the busy CPU seconds and those the hypervisor gave to other guests (steal)."""

    wall: float
    cpu: float
    busy: float
    steal: float


def own_cpu() -> float:
    """CPU seconds of this process and of its children that have ended (joined pools)."""
    times = psutil.Process().cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def family_cpu(pids: Sequence[int]) -> float:
    """CPU seconds of these processes and all their descendants (a worker's NER processes)."""
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            family = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in family:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system + times.children_user + times.children_system
    return total


def measured(work: Callable[[], T], cpu: Callable[[], float] = own_cpu) -> tuple[T, Usage]:
    machine, cpu_before, started = psutil.cpu_times(), cpu(), time.perf_counter()
    result = work()
    wall, cpu_after, after = time.perf_counter() - started, cpu(), psutil.cpu_times()
    busy = sum(after) - after.idle - after.iowait - after.guest - after.guest_nice
    busy -= sum(machine) - machine.idle - machine.iowait - machine.guest - machine.guest_nice
    return result, Usage(wall, cpu_after - cpu_before, busy, after.steal - machine.steal)


# --- (a) the floor: bare NER and bare embedding on every core ----------------------------


def prepared(copies: Sequence[Copy], settings: Settings) -> list[PreparedArticle]:
    """Parsed, cleaned and language-tagged as the worker does."""
    now = datetime.now(UTC)
    return [
        prepare(
            copy.payload,
            copy.key,
            now,
            max_message_bytes=settings.max_message_bytes,
            max_text_chars=settings.max_text_chars,
        )
        for copy in copies
    ]


def bare_ner(recognizer: EntityRecognizer, articles: Sequence[PreparedArticle]) -> Usage:
    """Each article's cleaned text through its language's NER-only model, on every core."""
    texts: dict[str, list[str]] = defaultdict(list)
    for article in articles:
        if article.profile.language in recognizer.languages:
            texts[article.profile.language].append(article.cleaned.text)

    def work() -> None:
        for lang, batch in texts.items():
            for _ in recognizer.model(lang).pipe(batch, n_process=CORES, batch_size=8):
                pass

    return measured(work)[1]


_embedder: Embedder | None = None  # one per process of the embedding pool


def _start_embedder() -> None:
    global _embedder
    _embedder = Embedder(num_threads=1)


def _embed(texts: list[str]) -> float:
    """Embed in a pool process; return the CPU seconds it took there."""
    assert _embedder is not None
    started = time.process_time()
    _embedder.embed(texts)
    return time.process_time() - started


def bare_embedding(articles: Sequence[PreparedArticle]) -> Usage:
    """The story embedding of every article, batches of 16 on a pool of one process per core."""
    texts = [embedding_text(a.cleaned.title or a.raw.title, a.cleaned.text) for a in articles]
    batches = [texts[i : i + 16] for i in range(0, len(texts), 16)]
    with ProcessPoolExecutor(CORES, initializer=_start_embedder) as pool:
        list(pool.map(_embed, [texts[:1]] * 2 * CORES))  # every process started and warm
        pool_cpu, usage = measured(lambda: sum(pool.map(_embed, batches)))
    return replace(usage, cpu=usage.cpu + pool_cpu)


# --- (b), (c) the pipeline through Kafka ----------------------------------------------------


class Outputs:
    """The enriched and DLQ topics read from the start: when each article (by key) came out."""

    def __init__(self, deployment: Deployment) -> None:
        self.dlq = deployment.topics["dlq"]
        self.consumer = KafkaConsumer(
            deployment.topics["enriched"],
            self.dlq,
            bootstrap_servers=deployment.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=20,
            max_partition_fetch_bytes=8 * 2**20,
        )
        self.arrived: dict[str, float] = {}
        self.outcomes: Counter[str] = Counter()  # dedup status, or "dlq"

    def poll(self, seconds: float) -> None:
        batches = self.consumer.poll(timeout_ms=max(1, round(seconds * 1000)))
        now = time.monotonic()
        for partition, messages in batches.items():
            for message in messages:
                article_id = message.key.decode()
                if article_id not in self.arrived:
                    self.arrived[article_id] = now
                    dlq = partition.topic == self.dlq
                    record = {} if dlq else orjson.loads(message.value)
                    self.outcomes["dlq" if dlq else record["dedup"]["status"]] += 1

    def wait_for(self, ids: Collection[str], timeout: float) -> float:
        """When the last of `ids` came out."""
        deadline = time.monotonic() + timeout
        while missing := set(ids) - self.arrived.keys():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(missing)} of {len(ids)} articles not out in {timeout} s")
            self.poll(0.1)
        return max(self.arrived[article_id] for article_id in ids)

    def close(self) -> None:
        self.consumer.close()


def producer(bootstrap: str, linger_ms: int) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=linger_ms,
        batch_size=512 * 1024,
        max_request_size=4 * 2**20,
    )


def burst(deployment: Deployment, outputs: Outputs, copies: Sequence[Copy], timeout: float) -> None:
    """Produce every article at once and wait until all are out."""
    kafka = producer(deployment.bootstrap, linger_ms=5)
    try:
        for copy in copies:
            kafka.send(deployment.topics["raw"], key=copy.key, value=copy.payload)
        kafka.flush()
    finally:
        kafka.close()
    outputs.wait_for([copy.id for copy in copies], timeout)


def paced(
    deployment: Deployment, outputs: Outputs, copies: Sequence[Copy], rate: float, timeout: float
) -> list[float]:
    """Produce at `rate` articles/s; each article's seconds from its send until it is out."""
    kafka = producer(deployment.bootstrap, linger_ms=0)
    sent: dict[str, float] = {}
    try:
        start = time.monotonic()
        for i, copy in enumerate(copies):
            while (wait := start + i / rate - time.monotonic()) > 0:
                outputs.poll(wait)
            sent[copy.id] = time.monotonic()
            kafka.send(deployment.topics["raw"], key=copy.key, value=copy.payload)
        kafka.flush()
    finally:
        kafka.close()
    outputs.wait_for(sent, timeout)
    return [outputs.arrived[article_id] - at for article_id, at in sent.items()]


def wait_balanced(deployment: Deployment, partitions: int, timeout: float) -> None:
    """Until every worker is ready and each raw partition is held by exactly one of them."""
    prefix = deployment.topics["raw"] + ":"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held: list[str] = []
        for port in deployment.ports:
            status, body = http_get(port, "/ready")
            if status != 200:
                break
            held += [tp for tp in orjson.loads(body)["assigned"] if tp.startswith(prefix)]
        else:
            if len(held) == len(set(held)) == partitions:
                return
        time.sleep(1.0)
    raise TimeoutError(f"the workers did not share the raw partitions in {timeout} s")


def stage_totals(deployment: Deployment) -> Counter[tuple[str, str]]:
    """pipeline_stage_duration_seconds (stage, "sum" or "count"), summed over the workers."""
    totals: Counter[tuple[str, str]] = Counter()
    for port in deployment.ports:
        body = http_get(port, "/metrics", timeout=20)[1].decode()
        for family in text_string_to_metric_families(body):
            if family.name == "pipeline_stage_duration_seconds":
                for sample in family.samples:
                    kind = sample.name.removeprefix(family.name + "_")
                    if kind in ("sum", "count"):
                        totals[sample.labels["stage"], kind] += sample.value
    return totals


def memory_mib(pid: int) -> tuple[float, int, float]:
    """RSS of a worker, how many child processes it has, and their RSS."""
    root = psutil.Process(pid)
    children = root.children(recursive=True)
    mib = 2**20
    return (
        root.memory_info().rss / mib,
        len(children),
        sum(child.memory_info().rss for child in children) / mib,
    )


# --- results and their report --------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    articles: int
    ner: Usage
    embedding: Usage | None  # None with story linking off
    pipeline: Usage

    @property
    def floor(self) -> Usage:
        """Bare NER, then bare embedding (when on), each on every core."""
        if self.embedding is None:
            return self.ner
        both = zip(astuple(self.ner), astuple(self.embedding), strict=True)
        return Usage(*(a + b for a, b in both))

    def rate(self, usage: Usage) -> float:
        return self.articles / usage.wall

    def cpu_ms(self, usage: Usage) -> float:
        return 1000 * usage.cpu / self.articles


@dataclass(frozen=True)
class Results:
    runs: list[Run]
    latency_rate: float  # (c): articles/s
    latencies: list[float]  # (c): seconds from send until out, per article
    latency: Usage
    stages: Counter[tuple[str, str]]  # (b): pipeline_stage_duration_seconds over the runs
    memory: list[tuple[float, int, float]]  # memory_mib of each worker after (c)
    outcomes: Counter[str]


def measures(story: bool) -> list[tuple[str, str, Callable[[Run], float]]]:
    """(name, format, value) of the rows of the table of runs."""
    rows = [
        ("(a) bare NER on every core, art/s", ".2f", lambda r: r.rate(r.ner)),
        ("(b) pipeline through Kafka, art/s", ".2f", lambda r: r.rate(r.pipeline)),
        ("**(b)/(a) bare NER** (target >= 0.85)", ".2f",
         lambda r: r.rate(r.pipeline) / r.rate(r.ner)),
    ]  # fmt: skip
    if story:
        rows += [
            ("(a) bare NER + bare embedding on every core, art/s", ".2f",
             lambda r: r.rate(r.floor)),
            ("**(b)/(a) bare NER + embedding** (target >= 0.85)", ".2f",
             lambda r: r.rate(r.pipeline) / r.rate(r.floor)),
        ]  # fmt: skip
    rows += [
        ("(b) CPU ms/article, workers + their child processes", ".0f",
         lambda r: r.cpu_ms(r.pipeline)),
        ("(a) CPU ms/article, bare NER", ".0f", lambda r: r.cpu_ms(r.ner)),
        ("**CPU (b)/(a) bare NER** (target <= 1.15)", ".2f",
         lambda r: r.pipeline.cpu / r.ner.cpu),
    ]  # fmt: skip
    if story:
        rows += [
            ("(a) CPU ms/article, bare NER + embedding", ".0f", lambda r: r.cpu_ms(r.floor)),
            ("**CPU (b)/(a) bare NER + embedding**", ".2f",
             lambda r: r.pipeline.cpu / r.floor.cpu),
        ]  # fmt: skip
    rows += [
        ("steal during (a), CPU s", ".1f", lambda r: r.floor.steal),
        ("steal during (b), CPU s", ".1f", lambda r: r.pipeline.steal),
        ("machine busy during (b)", ".0%", lambda r: r.pipeline.busy / (CORES * r.pipeline.wall)),
    ]
    return rows


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = [header, ["---"] + ["---:"] * (len(header) - 1), *rows]
    return "\n".join("| " + " | ".join(str(cell) for cell in line) + " |" for line in lines)


def describe(name: str, run: Run, usage: Usage) -> str:
    return (
        f"   {name}: {run.rate(usage):.2f} art/s, {run.cpu_ms(usage):.0f} CPU ms/article, "
        f"steal {usage.steal:.1f} s, machine busy {usage.busy / (CORES * usage.wall):.0%}"
    )


def report(results: Results, story: bool) -> None:
    runs = results.runs
    print()
    print(table(
        ["measure", *(f"run {n}" for n in range(1, len(runs) + 1)), "median"],
        [[name, *(f"{get(r):{fmt}}" for r in runs), f"{statistics.median(map(get, runs)):{fmt}}"]
         for name, fmt, get in measures(story)],
    ))  # fmt: skip

    latencies = results.latencies
    cut = statistics.quantiles(latencies, n=100, method="inclusive")
    print()
    print(table(
        ["(c) rate", "articles", "p50", "p95", "p99 (target <= 1 s)", "max", "steal"],
        [[f"{results.latency_rate:.2f} art/s", len(latencies), f"{cut[49]:.3f} s",
          f"{cut[94]:.3f} s", f"**{cut[98]:.3f} s**", f"{max(latencies):.3f} s",
          f"{results.latency.steal:.1f} s"]],
    ))  # fmt: skip

    stages = results.stages
    names = sorted({stage for stage, _ in stages}, key=lambda name: -stages[name, "sum"])
    print()
    print(table(
        ["stage (workers' /metrics over (b))", "ms/article", "total s"],
        [[name, f"{1000 * stages[name, 'sum'] / stages[name, 'count']:.1f}",
          f"{stages[name, 'sum']:.1f}"] for name in names if stages[name, "count"]],
    ))  # fmt: skip

    print()
    print(table(
        ["memory after (c)", "worker RSS", "child processes", "their RSS", "total"],
        [[f"worker {i}", f"{own:.0f} MiB", count, f"{kids:.0f} MiB", f"{own + kids:.0f} MiB"]
         for i, (own, count, kids) in enumerate(results.memory, 1)],
    ))  # fmt: skip
    print(f"\noutcomes: {dict(results.outcomes)}; load average at the end {load_average()}")


# --- the benchmark --------------------------------------------------------------------------


@dataclass
class Supply:
    """Copies of the base articles, each new to the pipeline (a serial number of its own)."""

    bases: Sequence[BaseArticle]
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    made: int = 0

    def take(self, count: int) -> list[Copy]:
        copies = make_copies(self.bases, count, self.tag, start=self.made)
        self.made += count
        return copies


def benchmark(args: argparse.Namespace, settings: Settings, supply: Supply) -> Results:
    recognizer = EntityRecognizer(settings.spacy_models)
    for lang in recognizer.languages:  # loaded and warm before the pools fork
        list(recognizer.model(lang).pipe(["Warm-up in Paris."]))
    workdir = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    deployment = Deployment(settings.kafka_bootstrap_servers, workdir, ROOT, args.worker_env)
    outputs: Outputs | None = None
    try:
        for _ in range(args.workers):
            deployment.start_worker(timeout=args.timeout)
        wait_balanced(deployment, settings.topic_partitions, args.timeout)
        pids = [process.pid for process in deployment.workers]
        outputs = Outputs(deployment)
        burst(deployment, outputs, supply.take(args.warmup * args.workers), args.timeout)

        runs: list[Run] = []
        stages_before = stage_totals(deployment)
        for number in range(1, args.runs + 1):
            copies = supply.take(args.articles)
            articles = prepared(copies, settings)
            ner = bare_ner(recognizer, articles)
            embedding = bare_embedding(articles) if settings.story_linking else None
            _, pipeline = measured(
                partial(burst, deployment, outputs, copies, args.timeout),
                cpu=partial(family_cpu, pids),
            )
            runs.append(Run(len(copies), ner, embedding, pipeline))
            print(f"run {number}:")
            print(describe("(a) bare NER", runs[-1], ner))
            if embedding:
                print(describe("(a) bare embedding", runs[-1], embedding))
            print(describe("(b) pipeline", runs[-1], pipeline), flush=True)
        stages = stage_totals(deployment) - stages_before

        rate = args.latency_load * statistics.median(r.rate(r.pipeline) for r in runs)
        copies = supply.take(max(20, round(rate * args.latency_seconds)))
        print(f"(c) {len(copies)} articles at {rate:.2f} art/s ...", flush=True)
        latencies, latency = measured(
            partial(paced, deployment, outputs, copies, rate, args.timeout)
        )
        memory = [memory_mib(pid) for pid in pids]
        return Results(runs, rate, latencies, latency, stages, memory, outputs.outcomes)
    finally:
        if outputs is not None:
            outputs.close()
        deployment.stop_workers()
        try:
            deployment.delete_topics()
        except Exception as exc:  # noqa: BLE001 - cleanup must not hide the results
            print(f"(topics of {deployment.run_id} not deleted: {exc})", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)


def load_average() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def commit() -> str:
    git = ["git", "describe", "--always", "--dirty"]
    return subprocess.run(git, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=Path, default=PAGES_DIR, metavar="DIR",
                        help="real pages, laid out as DIR/<page>/expected.html and "
                        f"expected-metadata.json, for the pages {', '.join(PAGES)} "
                        "(default: the repository's tests/data/html)")  # fmt: skip
    parser.add_argument("--seed", type=Path, default=SEED, metavar="FILE",
                        help="also this article: a French text, first line the title "
                        "(default: the seed in tests/data/seed)")  # fmt: skip
    parser.add_argument("--articles", type=int, default=400, help="articles per run")
    parser.add_argument("--runs", type=int, default=3, help="runs of (a) and (b)")
    parser.add_argument("--workers", type=int, default=1, help="pipeline workers")
    parser.add_argument("--worker-env", action="append", default=[], metavar="KEY=VALUE",
                        help="settings of the workers (and of the floor), e.g. "
                        "PIPELINE_NER_PROCESSES=1")  # fmt: skip
    parser.add_argument("--warmup", type=int, default=16, help="articles per worker before (b)")
    parser.add_argument("--latency-seconds", type=float, default=60.0, help="length of (c)")
    parser.add_argument("--latency-load", type=float, default=0.5,
                        help="rate of (c) as a share of (b)'s median rate")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per phase at most")
    args = parser.parse_args()
    args.worker_env = dict(item.split("=", 1) for item in args.worker_env)
    os.environ.update(args.worker_env)  # the floor reads the workers' settings
    settings = load_settings()
    supply = Supply(base_articles(args.pages, args.seed))

    print(f"command: {Path(sys.executable).name} {' '.join(sys.argv)}")
    print(f"commit {commit()}; {CORES} cores, {psutil.virtual_memory().total / 2**30:.0f} GB; "
          f"load average {load_average()}")  # fmt: skip
    print(f"{args.workers} worker(s), {settings.ner_process_count} NER process(es) each, "
          f"story linking {'on' if settings.story_linking else 'off'}, settings "
          f"{args.worker_env or 'default'}; {len(supply.bases)} base articles, "
          f"{args.articles} articles per run", flush=True)  # fmt: skip
    report(benchmark(args, settings, supply), settings.story_linking)
    return 0


if __name__ == "__main__":
    sys.exit(main())
