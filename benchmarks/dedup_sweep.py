"""Cost of the dedup sweep: one step and one whole pass over tables of N keys; prints markdown.

    .venv/bin/python benchmarks/dedup_sweep.py                       # 10,000 and 100,000 keys
    .venv/bin/python benchmarks/dedup_sweep.py --keys 1000000 --stores rocksdb

The agent's own code path: ``table_items_after`` over a Faust table (RocksDB store via rocksdict,
or the memory store) feeding ``sweep_step``, then ``del`` of the expired keys from the store.
The tables hold near-index records as the agent writes them (one 400-byte article record per 42
band records) or FirstSeen records, half of them past the retention window. Without a running
worker the deletes skip the changelog send (Faust's ``on_key_del``) and the benchmark hands the
RocksDB store its one partition (no assignor).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import faust

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.app import table_items_after
from pipeline.stages.dedup import (
    DEFAULT_NEAR_DUP,
    FirstSeen,
    IndexEntry,
    SweepPosition,
    article_key,
    sweep_step,
)

NOW = datetime(2026, 11, 30, tzinfo=UTC)
RETENTION = timedelta(days=7)


def records(kind: str, count: int, seed: int = 1) -> dict[str, dict[str, Any]]:
    """``count`` records of one table, every other one written past the retention window."""
    rng = random.Random(seed)
    table: dict[str, dict[str, Any]] = {}
    for n in range(count):
        seen_at = NOW - timedelta(days=8 if n % 2 else 1, seconds=rng.randrange(86_400))
        if kind == "fingerprints":
            table[f"{rng.getrandbits(256):064x}"] = FirstSeen(f"id-{n}", seen_at).to_record()
        elif n % 43 == 0:
            sig = tuple(rng.getrandbits(16) for _ in range(DEFAULT_NEAR_DUP.num_perm))
            table[article_key(f"id-{n}")] = IndexEntry(
                f"id-{n}", f"id-{n}", sig, seen_at
            ).to_record()
        else:
            key = "b" + "".join(
                rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", k=8)
            )
            table[key] = {"a": [article_key(f"id-{n}")[1:]], "t": int(seen_at.timestamp())}
    return table


def faust_table(store: str, datadir: str, content: dict[str, dict[str, Any]]) -> faust.Table:
    app = faust.App(f"bench-sweep-{store}", store=f"{store}://", datadir=datadir)
    table = app.Table("dedup", default=None, partitions=1, key_type=str)
    data = table.data
    if store == "rocksdb":
        db = data._db_for_partition(0)
        data._dbs_for_actives = lambda: iter([db])  # type: ignore[method-assign]
        for key, value in content.items():
            db.put(data._encode_key(key), data._encode_value(value))
    else:
        data.data.update(content)
    return table


def sweep_pass(table: faust.Table, budget: int) -> tuple[list[float], int, int]:
    """Seconds of each step, keys deleted, live keys counted."""
    position, seconds, deleted = SweepPosition(), [], 0
    while True:
        started = time.perf_counter()
        step = sweep_step(
            table_items_after(table, position.after), position, NOW, RETENTION, budget
        )
        for key in step.expired:
            del table.data[key]  # the store only: no changelog without a worker
        seconds.append(time.perf_counter() - started)
        deleted += len(step.expired)
        position = step.position
        if step.remembered is not None:
            return seconds, deleted, step.remembered


def measure(store: str, kind: str, count: int, budget: int) -> dict[str, Any]:
    content = records(kind, count)
    with tempfile.TemporaryDirectory() as datadir:
        table = faust_table(store, datadir, content)
        cpu = time.process_time()
        wall = time.perf_counter()
        steps, deleted, kept = sweep_pass(table, budget)
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu
        again, _, _ = sweep_pass(table, budget)  # nothing left to delete: a read-only pass
        if store == "rocksdb":
            table.data._dbs[0].close()
    assert deleted == count // 2 and kept == count - count // 2, (deleted, kept)
    return {
        "store": store,
        "table": kind,
        "keys": count,
        "steps": len(steps),
        "step_ms_median": 1000 * statistics.median(steps),
        "step_ms_max": 1000 * max(steps),
        "pass_s": wall,
        "pass_cpu_s": cpu,
        "clean_pass_s": sum(again),
        "us_per_key": 1e6 * wall / count,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--budget", type=int, default=1000, help="keys per step (dedup_sweep_batch)"
    )
    parser.add_argument("--stores", nargs="+", default=["rocksdb", "memory"])
    parser.add_argument("--tables", nargs="+", default=["near_index", "fingerprints"])
    args = parser.parse_args(argv)
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}; budget {args.budget} keys per step\n"
    )
    columns: list[tuple[str, str, Callable[[Any], str]]] = [
        ("store", "store", str),
        ("table", "table", str),
        ("keys", "keys", "{:,}".format),
        ("steps", "steps", "{:,}".format),
        ("step_ms_median", "step ms, median", "{:.1f}".format),
        ("step_ms_max", "step ms, max", "{:.1f}".format),
        ("pass_s", "pass s (half deleted)", "{:.2f}".format),
        ("pass_cpu_s", "pass CPU s", "{:.2f}".format),
        ("us_per_key", "µs per key", "{:.1f}".format),
        ("clean_pass_s", "pass s, nothing to delete", "{:.2f}".format),
    ]
    print("| " + " | ".join(title for _, title, _ in columns) + " |")
    print("|" + "---|" * len(columns))
    for store in args.stores:
        for kind in args.tables:
            for count in args.keys:
                row = measure(store, kind, count, args.budget)
                print(
                    "| " + " | ".join(fmt(row[name]) for name, _, fmt in columns) + " |", flush=True
                )


if __name__ == "__main__":
    main()
