"""Fit each language's mean embedding; write pipeline/stages/story_language_means.npz.

    PYTHONPATH=. .venv/bin/python benchmarks/fit_language_means.py --sentences DIR

DIR holds ``<iso639-1>.txt`` files of news-corpus sentences, one a line (the lingua-py test
sentences from the Leipzig corpora, Apache-2.0: tests/data/langid/LICENSE). Sentences are joined
``--group`` at a time into passages about the length of a title and lead, ``--passages`` of them
per language are embedded, and their mean is kept (float16, 384 values a language). The story
stage removes most of an article's language mean before comparing vectors (``language_neutral``
in pipeline/stages/story.py): what is left says what the text is about more than which language
it is written in (docs/STORY_LINKING.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.stages.story import Embedder

MEANS_PATH = Path(__file__).resolve().parents[1] / "pipeline" / "stages" / "story_language_means.npz"


def passages(path: Path, group: int, count: int) -> list[str]:
    with path.open(encoding="utf-8") as lines:
        sentences = [line.strip() for line in lines if line.strip()]
    return [" ".join(sentences[i : i + group]) for i in range(0, min(len(sentences), group * count), group)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=Path, required=True, help="directory of <lang>.txt")
    parser.add_argument("--group", type=int, default=5, help="sentences a passage")
    parser.add_argument("--passages", type=int, default=40, help="passages a language")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=MEANS_PATH)
    args = parser.parse_args(argv)
    embedder = Embedder(num_threads=args.threads)
    means: dict[str, np.ndarray] = {}
    for path in sorted(args.sentences.glob("*.txt")):
        texts = passages(path, args.group, args.passages)
        if texts:
            means[path.stem] = embedder.embed(texts).mean(axis=0).astype(np.float16)
            print(f"{path.stem}: {len(texts)} passages", flush=True)
    np.savez_compressed(args.out, **means)
    print(f"{len(means)} languages written to {args.out}")


if __name__ == "__main__":
    main()
