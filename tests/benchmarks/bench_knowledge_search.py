"""Hybrid search latency at 1k / 10k / 100k chunks, against numpy brute force, in one run.

    .venv/bin/python tests/benchmarks/bench_knowledge_search.py [--sizes 1000 10000 100000]

Vectors are synthetic but shaped like MiniLM's (384-d, unit length, a shared mean direction
of norm ~0.38 and clustered topics); chunk texts are drawn from a Zipf vocabulary. Each
query is the whole hybrid query minus embedding the query text (reported separately by
bench_knowledge_index.py): coarse pass, exact re-scoring, FTS5 BM25, fusion, and building
the hits (rows, snippets). recall@10 compares the vector side with exact brute force.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from knowledge import SearchFilters, SearchSettings
from knowledge.chunker import Chunk
from knowledge.db import open_db
from knowledge.search import HybridSearcher
from knowledge.store import DocumentRecord, KnowledgeStore

DIM = 384
CHUNKS_PER_DOC = 10
N_QUERIES = 200


def synthetic_vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    mean = rng.standard_normal(DIM).astype(np.float32)
    mean *= 0.38 / np.linalg.norm(mean)
    topics = rng.standard_normal((max(n // 50, 20), DIM)).astype(np.float32)
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    which = rng.integers(0, len(topics), n)
    x = mean + 0.6 * topics[which] + 0.045 * rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def synthetic_texts(n: int, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    vocab = [f"w{i}" for i in range(20000)]
    ranks = np.arange(1, len(vocab) + 1)
    p = (1 / ranks) / (1 / ranks).sum()
    texts = [" ".join(rng.choice(vocab, 120, p=p)) for _ in range(n)]
    stop = ["the", "what", "is", "how", "do", "i", "my"]
    queries = [
        " ".join(list(rng.choice(stop, 3)) + list(rng.choice(vocab[:5000], 5)))
        for _ in range(N_QUERIES)
    ]
    return texts, queries


def build(path: Path, vectors: np.ndarray, texts: list[str]) -> KnowledgeStore:
    store = KnowledgeStore(open_db(path))
    store.set_index_state("synthetic", DIM)
    store.add_folder("/bench")
    for d in range(0, len(vectors), CHUNKS_PER_DOC):
        rows = range(d, min(d + CHUNKS_PER_DOC, len(vectors)))
        chunks = [Chunk(i - d, texts[i], "", None, 0, len(texts[i]), 120) for i in rows]
        record = DocumentRecord(
            f"/bench/d{d // CHUNKS_PER_DOC:06}.md", "/bench", f"h{d}", 1, 1, "markdown", "indexed"
        )
        store.write_document(record, chunks, vectors[d : d + len(chunks)])
    return store


def percentiles(ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
    }


def bench(n: int, tmp: Path, rng: np.random.Generator) -> dict[str, object]:
    vectors = synthetic_vectors(n, rng)
    texts, queries = synthetic_texts(n, rng)
    started = time.monotonic()
    store = build(tmp / f"bench-{n}.db", vectors, texts)
    build_s = time.monotonic() - started
    # Queries: near an existing chunk, as a question is near the passage answering it.
    qv = vectors[rng.integers(0, n, N_QUERIES)] + 0.03 * rng.standard_normal(
        (N_QUERIES, DIM)
    ).astype(np.float32)
    qv /= np.linalg.norm(qv, axis=1, keepdims=True)
    ids = np.array(
        [r[0] for r in store.conn.execute("SELECT id FROM chunks ORDER BY id")], dtype=np.int64
    )
    exact_top = [set(ids[np.argsort(-(vectors @ q))[:10]].tolist()) for q in qv]

    out: dict[str, object] = {"chunks": n, "build_s": round(build_s, 1)}
    for mode in ("memory", "vec0"):
        searcher = HybridSearcher(store, None, SearchSettings(coarse=mode))
        searcher.search(queries[0], k=10, query_vector=qv[0])  # warm caches (coarse load)
        hybrid_ms, vector_ms, recall = [], [], []
        for q, text, truth in zip(qv, queries, exact_top, strict=True):
            t = time.perf_counter()
            searcher.search(text, k=10, query_vector=q)
            hybrid_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            ranked = searcher.vector_ranking_for(q, 10, SearchFilters())
            vector_ms.append((time.perf_counter() - t) * 1000)
            recall.append(len({r.chunk_id for r in ranked} & truth) / 10)
        out[f"hybrid_{mode}"] = percentiles(hybrid_ms)
        out[f"vector_{mode}"] = {
            **percentiles(vector_ms),
            "recall@10": round(float(np.mean(recall)), 4),
        }
    brute_ms = []
    for q in qv:
        t = time.perf_counter()
        scores = vectors @ q
        top = np.argpartition(-scores, 10)[:10]
        top[np.argsort(-scores[top])]
        brute_ms.append((time.perf_counter() - t) * 1000)
    out["numpy_brute_force"] = percentiles(brute_ms)
    bm25_ms = []
    searcher = HybridSearcher(store, None)
    for text in queries:
        t = time.perf_counter()
        searcher.bm25_ranking(text, 50, SearchFilters())
        bm25_ms.append((time.perf_counter() - t) * 1000)
    out["bm25_only"] = percentiles(bm25_ms)
    t = time.perf_counter()
    store._coarse = None
    store.coarse_index()
    out["coarse_cache_load_ms"] = round((time.perf_counter() - t) * 1000, 1)
    store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", nargs="*", type=int, default=[1000, 10000, 100000])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            print(json.dumps(bench(n, Path(tmp), rng)), flush=True)


if __name__ == "__main__":
    main()
