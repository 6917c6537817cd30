"""Files people really have, measured (issues 12 and 15), with the real default embedder.

    .venv/bin/python tests/benchmarks/bench_knowledge_hostile.py [--log-mb 50] [--tiny 20000]

1. Chunking throughput (MB/s, the real MiniLM tokenizer through llama.cpp) on ordinary prose,
   a 5 MB single "word", a 3 MB minified JavaScript line, a 3 MB one-line JSON and
   ``--log-mb`` MB of log lines; the spread (slowest vs fastest) should be within 3x.
2. ``index`` of the 5 MB single-word file (default settings: it is recognised as encoded data).
3. ``index`` of ``--tiny`` identical tiny files, then the re-run (0 embeddings); the same
   count of varied tiny files with the fake embedder (everything but the model).
4. Peak memory (RSS) of indexing the ``--log-mb`` MB log and a 15 MB CSV (fake embedder,
   in a child process each).
5. Save -> searchable and delete -> gone for a folder added while the watcher runs (added by
   "another process": a second connection to knowledge.db, as ``jackdaw folders add`` does).
6. Ctrl-C to exit: ``jackdaw index`` (the real handler, real embedder) interrupted in the
   middle of a big file, time from SIGINT to the process's exit.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from knowledge import open_knowledge_base
from knowledge.chunker import Chunker
from knowledge.parsers.base import Section
from knowledge.watcher import FolderWatcher
from models.llama_embedder import LlamaCppEmbedder
from models.minilm_gguf import default_embedding_gguf

ROOT = Path(__file__).resolve().parents[2]
WORDS = [
    "garden",
    "kettle",
    "invoice",
    "river",
    "window",
    "budget",
    "meeting",
    "travel",
    "engine",
    "cable",
    "server",
    "folder",
    "recipe",
    "flour",
    "oven",
    "planet",
    "winter",
    "summer",
    "battery",
    "network",
    "printer",
    "ticket",
    "museum",
    "market",
]


def prose(rng: random.Random, mb: float) -> str:
    out: list[str] = []
    size = 0
    while size < mb * 1e6:
        para = " ".join(rng.choice(WORDS) for _ in range(80)).capitalize() + ". "
        para += " ".join(rng.choice(WORDS) for _ in range(40)) + ".\n\n"
        out.append(para)
        size += len(para)
    return "".join(out)


def inputs(rng: random.Random, log_mb: float) -> dict[str, str]:
    js = "var a=function(b){return b+1},c=[1,2,3].map(a),d={key:'value',n:42};"
    log = "2024-05-01T12:00:00Z INFO GET /api/v1/items?id={} 200 {}ms user=u{}\n"
    n_log = int(log_mb * 1e6 / 60)
    return {
        "prose (3 MB)": prose(rng, 3),
        "one 5 MB word": "".join(
            rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123456789+/") for _ in range(5_000_000)
        ),
        "minified JS, 3 MB line": js * (3_000_000 // len(js)),
        "one-line JSON, 3 MB": "["
        + ",".join(
            json.dumps({"id": i, "name": f"item {i}", "tags": ["a", "b"]}) for i in range(60_000)
        )
        + "]",
        f"log lines, {log_mb:g} MB": "".join(log.format(i, i % 300, i % 97) for i in range(n_log)),
    }


def bench_chunking(embedder: LlamaCppEmbedder, log_mb: float) -> None:
    print("\n1. chunking throughput (real tokenizer, 256-token chunks)")
    chunker = Chunker(embedder.count_tokens, 256, 32, token_pieces=embedder.token_pieces)
    rates = {}
    for name, text in inputs(random.Random(1), log_mb).items():
        started = time.perf_counter()
        n = sum(1 for _ in chunker.iter_chunks([Section(text)]))
        seconds = time.perf_counter() - started
        rates[name] = len(text) / 1e6 / seconds
        print(f"   {name:<24} {len(text) / 1e6:6.1f} MB  {n:7d} chunks  {seconds:7.1f} s  "
              f"{rates[name]:5.2f} MB/s")  # fmt: skip
    spread = max(rates.values()) / min(rates.values())
    print(f"   spread (fastest / slowest): {spread:.2f}x (target <= 3x)")


def bench_big_word(embedder: LlamaCppEmbedder, tmp: Path) -> None:
    print("\n2. index a 5 MB single-word Markdown file")
    docs = tmp / "word"
    docs.mkdir()
    rng = random.Random(2)
    (docs / "blob.md").write_text("".join(rng.choice("abcdef0123456789") for _ in range(5_000_000)))
    kb = open_knowledge_base(tmp / "word.db", embedder)
    kb.add_folder(docs)
    started = time.perf_counter()
    kb.index()
    doc = kb.document(docs / "blob.md")
    assert doc is not None
    print(f"   {time.perf_counter() - started:.1f} s; {doc.status}: {doc.error}")
    kb.close()


def bench_tiny(embedder: LlamaCppEmbedder, tmp: Path, n: int) -> None:
    from tests.knowledge.fakes import FakeEmbedder

    print(f"\n3. {n:,} tiny files")
    for label, model, same in (("identical, real model", embedder, True),
                               ("varied, fake model", FakeEmbedder(), False)):  # fmt: skip
        docs = tmp / f"tiny-{same}"
        for i in range(n):
            folder = docs / f"d{i // 500:03}"
            if i % 500 == 0:
                folder.mkdir(parents=True)
            text = "TODO: fill in" if same else f"Note {i}: {WORDS[i % len(WORDS)]} {i * 7}"
            (folder / f"n{i:05}.md").write_text(text)
        kb = open_knowledge_base(tmp / f"tiny-{same}.db", model)
        kb.add_folder(docs)
        cpu = time.process_time()
        started = time.perf_counter()
        first = kb.index()
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
        started = time.perf_counter()
        again = kb.index()
        rerun = time.perf_counter() - started
        print(f"   {label:<22} index {wall:6.1f} s ({cpu:.1f} CPU-s, {first.added} added, "
              f"{first.chunks_embedded} embedded); re-run {rerun:.2f} s, "
              f"{again.chunks_embedded} embeddings")  # fmt: skip
        kb.close()


MEMORY_CHILD = """
import resource, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from knowledge import KnowledgeSettings, open_knowledge_base
from tests.knowledge.fakes import FakeEmbedder
kb = open_knowledge_base(Path({db!r}), FakeEmbedder(), KnowledgeSettings(file_time_budget_s=0))
kb.add_folder({folder!r})
started = time.perf_counter()
r = kb.index()
doc = kb.documents()[0]
print(round(time.perf_counter() - started, 1), doc.status, doc.chunk_count,
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def bench_memory(tmp: Path, log_mb: float) -> None:
    print("\n4. peak memory while indexing one big file (fake embedder, no time budget)")
    rng = random.Random(3)
    cases = {}
    log = tmp / "mem-log"
    log.mkdir()
    with open(log / "server.log", "w") as fh:
        line = "2024-05-01T12:00:{:02}Z INFO worker {} handled request {} for {} in {} ms\n"
        for i in range(int(log_mb * 1e6 / 70)):
            fh.write(line.format(i % 60, i % 8, i, rng.choice(WORDS), i % 500))
    cases[f"{log_mb:g} MB log"] = log
    csv = tmp / "mem-csv"
    csv.mkdir()
    with open(csv / "table.csv", "w") as fh:
        fh.write("id,name,city,amount,comment\n")
        for i in range(int(15e6 / 60)):
            fh.write(f"{i},{rng.choice(WORDS)},{rng.choice(WORDS)},{i % 977}.50,"
                     f"{rng.choice(WORDS)} {rng.choice(WORDS)}\n")  # fmt: skip
    cases["15 MB CSV"] = csv
    for name, folder in cases.items():
        code = MEMORY_CHILD.format(root=str(ROOT), db=str(tmp / f"{folder.name}.db"),
                                   folder=str(folder))  # fmt: skip
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        seconds, status, chunks, rss = out.stdout.split()
        print(f"   {name:<12} {seconds} s, {status}, {chunks} chunks, peak RSS {rss} MB")


def bench_added_folder(embedder: LlamaCppEmbedder, tmp: Path, saves: int) -> None:
    print("\n5. a folder added while the watcher runs: save -> searchable, delete -> gone")
    db = tmp / "watch.db"
    kb = open_knowledge_base(db, embedder)
    first = tmp / "first"
    first.mkdir()
    kb.add_folder(first)
    batches = threading.Event()
    watcher = FolderWatcher(kb, settle_seconds=1.0, on_batch=lambda p, r: batches.set())
    watcher.start()
    later = tmp / "added-later"
    later.mkdir()
    added_at = time.perf_counter()
    other = open_knowledge_base(db, embedder)  # as `jackdaw folders add` in another process
    other.add_folder(later)
    other.close()
    while str(later) not in watcher.watched:
        time.sleep(0.01)
    print(f"   watched {time.perf_counter() - added_at:.2f} s after it was added")
    save_lat: list[float] = []
    delete_lat: list[float] = []
    for i in range(saves):
        word = f"zq{i}marker"
        path = later / f"note{i}.md"
        started = time.perf_counter()
        path.write_text(f"# Note {i}\n\nThe code word is {word}.")
        while not any(word in h.text for h in kb.search(word, k=3)):
            time.sleep(0.01)
        save_lat.append(time.perf_counter() - started)
        started = time.perf_counter()
        path.unlink()
        while any(word in h.text for h in kb.search(word, k=3)):
            time.sleep(0.01)
        delete_lat.append(time.perf_counter() - started)
    watcher.stop()
    kb.close()
    for name, values in (("save -> searchable", save_lat), ("delete -> gone", delete_lat)):
        q = statistics.quantiles(values, n=20)
        print(f"   {name:<20} p50 {statistics.median(values):.2f} s, p95 {q[18]:.2f} s "
              f"({len(values)} files, settle 1 s)")  # fmt: skip


def bench_ctrl_c(tmp: Path, model_path: Path, tries: int) -> None:
    print("\n6. Ctrl-C to exit, `jackdaw index` in the middle of a big file (real embedder)")
    docs = tmp / "ctrl-c"
    docs.mkdir()
    (docs / "big.md").write_text(prose(random.Random(4), 1.0))
    latencies = []
    child = ROOT / "tests" / "knowledge" / "cli_child.py"
    for i in range(tries):
        proc = subprocess.Popen(
            [sys.executable, str(child), str(tmp / f"ctrl-c-{i}.db"), str(docs),
             f"real:{model_path}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("[indexing]") and " 0 chunks" not in line:
                break
        time.sleep(random.Random(i).uniform(0.0, 1.0))  # anywhere in the run
        started = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
        latencies.append(time.perf_counter() - started)
        assert code == 130, code
    print(
        f"   SIGINT -> exit: median {statistics.median(latencies):.2f} s, "
        f"max {max(latencies):.2f} s over {tries} runs (target < 1 s); exit status 130"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log-mb", type=float, default=50)
    parser.add_argument("--tiny", type=int, default=20_000)
    parser.add_argument("--saves", type=int, default=20)
    parser.add_argument("--ctrl-c", type=int, default=5)
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--only", default="123456")
    args = parser.parse_args()
    cache = Path.home() / ".cache" / "jackdaw-bench"
    models = args.models_dir or Path(os.environ.get("JACKDAW_TEST_MODELS_DIR", cache))
    model_path = default_embedding_gguf(models)
    embedder = LlamaCppEmbedder(model_path)
    with tempfile.TemporaryDirectory() as raw:
        tmp = Path(raw)
        if "1" in args.only:
            bench_chunking(embedder, args.log_mb)
        if "2" in args.only:
            bench_big_word(embedder, tmp)
        if "3" in args.only:
            bench_tiny(embedder, tmp, args.tiny)
        if "4" in args.only:
            bench_memory(tmp, args.log_mb)
        if "5" in args.only:
            bench_added_folder(embedder, tmp, args.saves)
        if "6" in args.only:
            bench_ctrl_c(tmp, model_path, args.ctrl_c)
    embedder.close()


if __name__ == "__main__":
    main()
