"""Dedup on the real broker: 2 workers, 4 partitions, copies on any partition, and restarts."""

from __future__ import annotations

import lxml.html
import orjson
import pytest

from tests.conftest import SEED_PATH, TEST_DATA
from tests.integration.conftest import TopicReader

PAGES = ["bbc-1", "guardian-1", "nytimes-1", "telegraph", "lemonde-1", "liberation-1", "heise",
         "folha"]


def page_text(name: str) -> str:
    tree = lxml.html.fromstring((TEST_DATA / "html" / name / "expected.html").read_bytes())
    paragraphs = [" ".join(p.text_content().split()) for p in tree.iter("p")]
    return "\n\n".join(p for p in paragraphs if p)


def originals() -> dict[str, str]:
    texts = {f"orig-{name}": page_text(name) for name in PAGES}
    texts["orig-seed"] = SEED_PATH.read_text(encoding="utf-8")
    return texts


def near_copy(text: str) -> str:
    """Another site's version: new chrome line, last quarter cut."""
    paragraphs = text.split("\n\n")
    kept = paragraphs[: max(2, int(len(paragraphs) * 0.75))]
    return "\n\n".join(["Breaking news from our wire partners", *kept])


def exact_copy(text: str) -> str:
    """Same words, other whitespace and quotes."""
    return "  " + text.replace("\n\n", "\n\n\n").replace("“", '"').replace("”", '"') + "\n"


def send(run, items: dict[str, str]) -> None:
    run.produce(
        [orjson.dumps({"id": key, "text": text}) for key, text in items.items()],
        keys=[key.encode() for key in items],
    )


def wait_ids(reader: TopicReader, ids: set[str]) -> dict[str, dict]:
    reader.wait_for(lambda rs: ids <= {r.get("id") for r in rs}, 180, f"{sorted(ids)}")
    return {r["id"]: r for r in reader.records if r.get("id") in ids}


@pytest.fixture(scope="module")
def run(pipeline_run):
    pipeline_run.start_worker()
    pipeline_run.start_worker()
    return pipeline_run


def test_copies_are_found_whatever_partition_and_worker(run, reader):
    texts = originals()
    send(run, texts)
    first = wait_ids(reader, set(texts))
    assert all(r["dedup"]["status"] == "unique" for r in first.values())

    near = {f"near-{k}": near_copy(t) for k, t in texts.items()}
    exact = {f"exact-{k}": exact_copy(t) for k, t in texts.items()}
    send(run, {**near, **exact})
    copies = wait_ids(reader, set(near) | set(exact))
    for key in texts:
        near_record = copies[f"near-{key}"]["dedup"]
        assert near_record["status"] == "near_duplicate", (key, near_record)
        assert near_record["duplicate_of"] == key
        assert 0.45 <= near_record["similarity"] < 1.0
        assert copies[f"exact-{key}"]["dedup"] == {
            "status": "exact_duplicate", "duplicate_of": key, "similarity": 1.0
        }


def test_memory_survives_a_restart_of_every_worker(run, reader):
    texts = originals()
    for index in range(len(run.workers)):
        run.restart_worker(index)
    again = {f"after-restart-{k}": near_copy(t) for k, t in texts.items()}
    again |= {f"after-restart-exact-{k}": exact_copy(t) for k, t in texts.items()}
    send(run, again)
    copies = wait_ids(reader, set(again))
    for key in texts:
        assert copies[f"after-restart-{key}"]["dedup"]["duplicate_of"] == key
        assert copies[f"after-restart-exact-{key}"]["dedup"]["status"] == "exact_duplicate"
        assert copies[f"after-restart-exact-{key}"]["dedup"]["duplicate_of"] == key
