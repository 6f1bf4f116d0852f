import io

import orjson
import pytest

from pipeline.ingest import IngestError, records_from_path, records_from_stream
from tests.conftest import SEED_PATH, TEST_DATA

MAX_BYTES = 900_000  # max_message_bytes' default

RSS = b"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>Wire</title>
<item><title>Budget vote</title><link>https://news.test/a</link><guid>a-1</guid>
<pubDate>Mon, 04 Sep 2023 10:00:00 GMT</pubDate>
<description>&lt;p&gt;Parliament voted the budget on Monday.&lt;/p&gt;</description></item>
<item><title>No body</title><link>https://news.test/b</link></item>
</channel></rss>"""


def values(records):
    return [orjson.loads(r.value) for r in records]


def test_txt_file_keeps_its_stem_as_id_and_its_body():
    (record,) = records_from_path(SEED_PATH, MAX_BYTES)
    doc = orjson.loads(record.value)
    assert record.key == SEED_PATH.stem.encode() and doc["id"] == SEED_PATH.stem
    assert doc["text"].startswith("Le dirigeant nord-coréen")


def test_txt_title_line_is_split_off(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text("Kim to meet Putin\n\nThe North Korean leader is expected in Vladivostok.\n")
    (doc,) = values(records_from_path(path, MAX_BYTES))
    assert doc["title"] == "Kim to meet Putin"
    assert doc["text"].strip() == "The North Korean leader is expected in Vladivostok."


def test_json_array_and_jsonl(tmp_path):
    array = tmp_path / "a.json"
    array.write_bytes(orjson.dumps([{"id": "1", "text": "One"}, {"id": "2", "html": "<p>Two</p>"}]))
    lines = tmp_path / "b.jsonl"
    lines.write_text('{"id": "3", "text": "Three"}\n\n{"id": "4", "text": "Four"}\n')
    assert [d["id"] for d in values(records_from_path(array, MAX_BYTES))] == ["1", "2"]
    assert [r.key for r in records_from_path(lines, MAX_BYTES)] == [b"3", b"4"]


def test_html_pages_get_content_ids_not_their_file_name():
    pages = [TEST_DATA / "html" / name / "source.html" for name in ("bbc-1", "lemonde-1")]
    records = [r for page in pages for r in records_from_path(page, MAX_BYTES)]
    assert len(records) == 2
    assert all(r.key is None for r in records)
    assert all("html" in d and "id" not in d for d in values(records))


def test_rss_items_with_a_body_become_articles(tmp_path):
    feed = tmp_path / "feed.xml"
    feed.write_bytes(RSS)
    warnings: list[str] = []
    (doc,) = values(records_from_path(feed, MAX_BYTES, warnings))
    # The item without a body is named, not dropped silently; strict callers get an error.
    assert warnings == [f"{feed}#2 (https://news.test/b): left out, no content or summary"]
    with pytest.raises(IngestError, match="no content or summary"):
        records_from_path(feed, MAX_BYTES)
    assert doc["id"] == "a-1" and doc["url"] == "https://news.test/a"
    assert doc["source"] == "Wire" and doc["published_at"] == "2023-09-04T10:00:00+00:00"
    assert "Parliament voted" in doc["html"]


def test_an_atom_title_of_type_html_becomes_text(tmp_path):
    feed = tmp_path / "feed.atom"
    feed.write_bytes(
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>Wire</title><entry><id>u1</id>'
        b'<title type="html">Vote &lt;b&gt;passed&lt;/b&gt; &amp;amp; signed</title>'
        b'<content type="html">&lt;p&gt;Parliament voted.&lt;/p&gt;</content></entry></feed>'
    )
    (doc,) = values(records_from_path(feed, MAX_BYTES))
    assert doc["title"] == "Vote passed & signed"


def test_stdin_json_lines():
    stream = io.BytesIO(b'{"id": "s1", "text": "Hello"}\n\n{"id": "s2", "text": "World"}\n')
    assert [r.key for r in records_from_stream(stream, MAX_BYTES)] == [b"s1", b"s2"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.json", b'{"text": "cut', "invalid JSON"),
        ("bad.jsonl", b'{"text": "ok"}\n[1]\n', "expected a JSON object"),
        ("notext.json", b'{"id": "x"}', "needs a 'text' or an 'html'"),
        ("wrongtype.json", b'{"text": 5}', "text"),
        ("latin1.txt", "caf\xe9".encode("latin-1"), "not UTF-8"),
        ("photo.png", b"\x89PNG", "unknown file type"),
        ("catalog.xml", b"<catalog><book>One</book></catalog>", "not an RSS/Atom feed"),
        ("empty.rss", b"", "not an RSS/Atom feed"),
        (
            "bodiless.xml",
            b"<rss version='2.0'><channel><item><title>Only a title</title></item></channel></rss>",
            "no content or summary",
        ),
        ("big.json", orjson.dumps({"text": "x" * 900_001}), "more than max_message_bytes"),
    ],
)
def test_bad_files_raise_a_message_naming_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(IngestError) as caught:
        records_from_path(path, MAX_BYTES)
    assert name in str(caught.value) and message in str(caught.value)


def test_a_feed_with_xml_errors_is_read_leniently_and_says_so(tmp_path):
    feed = tmp_path / "broken.xml"
    feed.write_bytes(RSS.replace(b"</channel></rss>", b"<item><title>cut"))
    warnings: list[str] = []
    (doc,) = values(records_from_path(feed, MAX_BYTES, warnings))
    assert doc["id"] == "a-1"
    assert any("malformed XML, read leniently" in w for w in warnings)


def test_a_record_over_the_workers_limit_is_refused_like_bad_input(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text("word " * 200_000)  # 1 MB of text: the worker would dead-letter it
    with pytest.raises(IngestError, match="more than max_message_bytes"):
        records_from_path(path, MAX_BYTES)
    stream = io.BytesIO(orjson.dumps({"text": "x" * 1_000}) + b"\n")
    with pytest.raises(IngestError, match=r"<stdin>:1: .* more than max_message_bytes"):
        list(records_from_stream(stream, 1_000))


def test_an_html_page_in_the_charset_its_meta_declares_is_decoded(tmp_path):
    page = tmp_path / "latin1.html"
    page.write_bytes(
        '<html><head><meta charset="iso-8859-1"></head><body><p>Le café de la gare.</p></body></html>'
        .encode("latin-1")
    )
    (doc,) = values(records_from_path(page, MAX_BYTES))
    assert "Le café de la gare." in doc["html"]
    page.write_bytes("<html><body><p>café</p></body></html>".encode("latin-1"))
    with pytest.raises(IngestError, match="no charset declared"):
        records_from_path(page, MAX_BYTES)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(IngestError, match="cannot read"):
        records_from_path(tmp_path / "nope.txt", MAX_BYTES)


def test_cli_exits_non_zero_with_the_reason_and_produces_nothing(tmp_path):
    import subprocess
    import sys

    good = tmp_path / "good.json"
    good.write_bytes(b'{"text": "fine"}')
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"text": ')
    big = tmp_path / "big.txt"
    big.write_text("word " * 200_000)
    def ingest(*paths):
        # A broker address nobody listens on: validation must fail before any connection.
        return subprocess.run(
            [sys.executable, "-m", "pipeline", "ingest", *map(str, paths)],
            capture_output=True, timeout=60, check=False,
            env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "PATH": "/usr/bin:/bin"},
        )  # fmt: skip

    done = ingest(good, bad)
    assert done.returncode == 2
    assert "bad.json" in done.stderr.decode() and "invalid JSON" in done.stderr.decode()
    done = ingest(good, big)
    assert done.returncode == 2
    assert "big.txt" in done.stderr.decode() and "max_message_bytes" in done.stderr.decode()
