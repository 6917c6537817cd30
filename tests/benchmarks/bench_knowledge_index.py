"""Indexing throughput against the embedder's own, re-scan of an unchanged tree, and
freshness (save -> searchable) under the watcher, with the real default embedder.

    .venv/bin/python tests/benchmarks/bench_knowledge_index.py [--files 40] [--tree 5000]

Throughput: a corpus of Markdown files is indexed (parse, chunk, embed, write), then the
very same chunk texts are embedded again directly; the ratio is the share of indexing
time that is embedding. Re-scan: a tree of ``--tree`` small files, indexed, then scanned
again unchanged. Freshness: files saved in that watched tree, time until a search finds them.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from knowledge import IngestResult, open_knowledge_base
from knowledge.watcher import FolderWatcher
from models.llama_embedder import LlamaCppEmbedder
from models.minilm_gguf import default_embedding_gguf

_WORDS_TEXT = """
garden kettle invoice river window budget meeting travel engine cable server folder recipe
flour oven planet winter summer battery network printer ticket museum market doctor lesson
guitar piano bridge harbour island forest mountain coffee letter report project release
version backup storage password account payment contract holiday
"""
WORDS = _WORDS_TEXT.split()


def paragraph(rng: random.Random, n_words: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n_words)]
    return " ".join(words).capitalize() + "."


def make_corpus(folder: Path, files: int, rng: random.Random) -> None:
    for i in range(files):
        sections = [
            f"## Part {j}\n\n" + "\n\n".join(paragraph(rng, 60) for _ in range(3)) for j in range(4)
        ]
        (folder / f"doc{i:03}.md").write_text(f"# Document {i}\n\n" + "\n\n".join(sections))


class TimedEmbedder:
    """Delegates to the real embedder and adds up the time spent inside ``embed``."""

    def __init__(self, inner: LlamaCppEmbedder) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self.max_tokens = inner.max_tokens
        self.count_tokens = inner.count_tokens

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        started = time.perf_counter()
        try:
            return self.inner.embed(texts)
        finally:
            self.seconds += time.perf_counter() - started


def throughput(embedder: LlamaCppEmbedder, root: Path, files: int) -> dict[str, object]:
    corpus = root / "corpus"
    corpus.mkdir()
    make_corpus(corpus, files, random.Random(0))
    timed = TimedEmbedder(embedder)
    kb = open_knowledge_base(root / "throughput.db", timed)
    kb.add_folder(corpus)
    started = time.perf_counter()
    result = kb.index()
    index_s = time.perf_counter() - started
    rows = kb.store.conn.execute("SELECT heading, text FROM chunks ORDER BY id").fetchall()
    texts = [f"{h}\n\n{t}" if h else t for h, t in rows]
    tokens = [embedder.count_tokens(t) for t in texts]
    started = time.perf_counter()
    for i in range(0, len(texts), 16):
        embedder.embed(texts[i : i + 16])
    embed_s = time.perf_counter() - started
    query_ms = []
    for q in ["where is the invoice for the garden?", "printer network problem", "holiday"] * 10:
        t = time.perf_counter()
        embedder.embed([q])
        query_ms.append((time.perf_counter() - t) * 1000)
    kb.close()
    indexing = result.chunks_embedded / index_s
    own = len(texts) / embed_s
    return {
        "files": result.added,
        "chunks": result.chunks_embedded,
        "mean_tokens_per_chunk": round(float(np.mean(tokens)), 1),
        "indexing_chunks_per_s": round(indexing, 2),
        "embedder_chunks_per_s": round(own, 2),
        "ratio": round(indexing / own, 3),
        # The same question asked within the indexing run itself (robust to a busy machine):
        "share_of_indexing_time_in_embed": round(timed.seconds / index_s, 3),
        "query_embed_ms_p50": round(float(np.percentile(query_ms, 50)), 1),
    }


def freshness(
    embedder: LlamaCppEmbedder, root: Path, n_files: int, saves: int
) -> dict[str, object]:
    tree = root / "tree"
    rng = random.Random(1)
    for i in range(n_files):
        folder = tree / f"d{i // 100:02}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"note{i:05}.txt").write_text(f"Note {i}: {paragraph(rng, 12)}")
    kb = open_knowledge_base(root / "tree.db", embedder)
    kb.add_folder(tree)
    started = time.perf_counter()
    first = kb.index()
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    again = kb.index()
    rescan_s = time.perf_counter() - started

    batch_done = threading.Event()

    def on_batch(paths: list[str], result: IngestResult) -> None:
        batch_done.set()

    latencies = []
    watcher = FolderWatcher(kb, on_batch=on_batch, reconcile_on_start=False)
    settle = watcher.settle_seconds
    watcher.start()
    try:
        for i in range(saves):
            path = tree / f"d{i % 50:02}" / f"fresh{i:03}.txt"
            marker = f"zebracode{i:03}"
            t0 = time.perf_counter()
            path.write_text(f"Fresh note {marker} about {paragraph(rng, 10)}")
            while True:
                if not batch_done.wait(60):
                    raise RuntimeError(f"{path} never became searchable")
                batch_done.clear()
                hits = kb.search(marker, k=1)
                if hits and hits[0].path == str(path):
                    break
            latencies.append(time.perf_counter() - t0)
    finally:
        watcher.stop()
        kb.close()
    return {
        "tree_files": n_files,
        "first_index_s": round(first_s, 1),
        "first_index_chunks": first.chunks_embedded,
        "rescan_unchanged_s": round(rescan_s, 2),
        "rescan_embedded": again.chunks_embedded,
        "settle_seconds": settle,
        "save_to_searchable_p50_s": round(float(np.percentile(latencies, 50)), 2),
        "save_to_searchable_p95_s": round(float(np.percentile(latencies, 95)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--tree", type=int, default=5000)
    parser.add_argument("--saves", type=int, default=20)
    parser.add_argument("--models-dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        embedder = LlamaCppEmbedder(default_embedding_gguf(args.models_dir or root / "models"))
        if args.files:
            print(json.dumps({"throughput": throughput(embedder, root, args.files)}), flush=True)
        if args.tree:
            print(
                json.dumps({"freshness": freshness(embedder, root, args.tree, args.saves)}),
                flush=True,
            )
        embedder.close()


if __name__ == "__main__":
    main()
