"""Retrieval quality on the paraphrased set: recall@1/@5 for BM25, vector and hybrid.

    .venv/bin/python tests/benchmarks/bench_knowledge_quality.py [--weights 1,0.5 ...]

Uses the real default embedder (all-MiniLM-L6-v2 via llama.cpp), converted into a temp dir.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from knowledge import SearchSettings, open_knowledge_base
from models.llama_embedder import LlamaCppEmbedder
from models.minilm_gguf import default_embedding_gguf
from tests.knowledge.quality import (
    build_corpus,
    crowd_questions,
    evaluate,
    keyword_questions,
    questions,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--weights",
        nargs="*",
        default=[],
        help="extra vector,bm25 weight pairs to compare, e.g. 1,0.5",
    )
    parser.add_argument("--models-dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = args.models_dir or root / "models"
        embedder = LlamaCppEmbedder(default_embedding_gguf(models))
        notes = root / "notes"
        notes.mkdir()
        paths = build_corpus(notes)
        kb = open_knowledge_base(root / "knowledge.db", embedder)
        kb.add_folder(notes)
        started = time.monotonic()
        result = kb.index()
        print(
            f"indexed {result.added} notes, {result.chunks_embedded} chunks in "
            f"{time.monotonic() - started:.1f}s",
            file=sys.stderr,
        )
        sets = {
            "paraphrased": questions(paths),
            "keyword": keyword_questions(paths),
            "crowd": crowd_questions(paths),
        }
        report: dict[str, object] = {"notes": len(paths)}
        for name, qs in sets.items():
            report[name] = {"questions": len(qs), **evaluate(kb, qs)}
        variants = [
            (
                "plain RRF, bm25 weight 0.3",
                SearchSettings(score_weighted=False, bm25_full_match_weight=0.3),
            ),
            ("score-weighted RRF, no full-match boost", SearchSettings(bm25_full_match_weight=0.3)),
        ]
        for pair in args.weights:
            v, b = (float(x) for x in pair.split(","))
            variants.append((f"weights {v},{b}", SearchSettings(vector_weight=v, bm25_weight=b)))
        for label, settings in variants:
            kb.searcher.settings = settings
            report[label] = {name: evaluate(kb, qs)["hybrid"] for name, qs in sets.items()}
        print(json.dumps(report, indent=2))
        kb.close()
        embedder.close()


if __name__ == "__main__":
    main()
