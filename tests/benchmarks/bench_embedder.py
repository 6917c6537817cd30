"""Benchmark (a script, not a test): embedding throughput of the default model, flash
attention on vs off.

    .venv/bin/python tests/benchmarks/bench_embedder.py [--chunks 200] [--tokens 250]
        [--batch 8] [--threads 0] [--model PATH]

Prints the conversion time (first run converts into a temp folder) and chunks/s for each
setting. Chunks are ~250-token pieces of varied English prose, the size the chunker makes.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from models.llama_embedder import LlamaCppEmbedder
from models.minilm_gguf import default_embedding_gguf

PROSE = (
    "the knowledge base keeps every folder fresh while the user works on notes reports "
    "invoices letters source code meeting minutes and research papers about climate energy "
    "markets biology history music software architecture databases retrieval embeddings "
    "vectors tokens models local privacy desktop agent plans lessons corrections ratings "
    "quarterly revenue rose sharply in europe while costs fell; analysts expected a slowdown."
)


def make_chunks(embedder: LlamaCppEmbedder, n_chunks: int, n_tokens: int) -> list[str]:
    """Random prose trimmed word by word until each chunk has at most ``n_tokens`` tokens."""
    rng = random.Random(42)
    words_pool = PROSE.split()
    chunks = []
    for _ in range(n_chunks):
        words = [rng.choice(words_pool) for _ in range(n_tokens)]
        while embedder.count_tokens(" ".join(words)) > n_tokens:
            words.pop()
        chunks.append(" ".join(words))
    return chunks


def chunks_per_second(embedder: LlamaCppEmbedder, chunks: list[str], batch: int) -> float:
    embedder.embed(chunks[:batch])  # warm-up: first decode allocates compute buffers
    start = time.perf_counter()
    for i in range(0, len(chunks), batch):
        embedder.embed(chunks[i : i + batch])
    return len(chunks) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=250)
    parser.add_argument("--batch", type=int, default=8, help="texts per embed() call")
    parser.add_argument("--threads", type=int, default=0, help="0 = llama.cpp's choice")
    parser.add_argument("--model", type=Path, help="a GGUF embedding model (default: MiniLM)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            start = time.perf_counter()
            model = default_embedding_gguf(Path(tmp))
            print(f"converted {model.name} in {time.perf_counter() - start:.2f} s")
        for flash_attn in (True, False):
            with LlamaCppEmbedder(model, n_threads=args.threads, flash_attn=flash_attn) as emb:
                chunks = make_chunks(emb, args.chunks, args.tokens)
                mean_tokens = sum(emb.count_tokens(c) for c in chunks) / len(chunks)
                rate = chunks_per_second(emb, chunks, args.batch)
                print(
                    f"flash_attn={'on ' if flash_attn else 'off'}  {len(chunks)} chunks of "
                    f"~{mean_tokens:.0f} tokens, batch {args.batch}: {rate:.1f} chunks/s"
                )


if __name__ == "__main__":
    main()
