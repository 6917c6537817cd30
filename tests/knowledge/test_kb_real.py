"""The knowledge base with the real default embedder (all-MiniLM-L6-v2 through llama.cpp)."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from knowledge import IngestResult, KnowledgeBase, open_knowledge_base
from knowledge.watcher import FolderWatcher
from tests.knowledge.conftest import write
from tests.knowledge.quality import (
    build_corpus,
    crowd_questions,
    evaluate,
    keyword_questions,
    questions,
)

pytestmark = pytest.mark.real_model


class Counting:
    """Wraps an embedder and counts what it embeds."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.embedded: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded.extend(texts)
        return self.inner.embed(texts)


@pytest.fixture
def real_kb(tmp_path: Path, real_embedder: Any, docs: Path) -> KnowledgeBase:
    kb = open_knowledge_base(tmp_path / "knowledge.db", Counting(real_embedder))
    kb.add_folder(docs)
    yield kb
    kb.close()


def test_quality_hybrid_is_at_least_as_good_as_either_side(
    real_kb: KnowledgeBase, docs: Path
) -> None:
    paths = build_corpus(docs)
    assert real_kb.index().added == len(paths) >= 40
    for qs in (questions(paths), keyword_questions(paths), crowd_questions(paths)):
        report = evaluate(real_kb, qs)
        for k in ("recall@1", "recall@5"):
            assert report["hybrid"][k] >= max(report["bm25"][k], report["vector"][k]), report
    assert evaluate(real_kb, questions(paths))["vector"]["recall@5"] >= 0.9


def test_chunks_fit_the_real_tokenizer(
    real_kb: KnowledgeBase, docs: Path, real_embedder: Any
) -> None:
    long_words = " ".join(["antidisestablishmentarianism"] * 400)
    cjk = "知識は力なり。" * 300
    body = "\n\n".join(
        [
            "# Long\n",
            "A sentence about lighthouses. " * 200,
            long_words,
            cjk,
            "x" * 5000,
            "## Tail\n\nShort closing paragraph.",
        ]
    )
    write(docs / "long.md", body)
    result = real_kb.index()
    assert result.added == 1 and result.failed == 0
    rows = real_kb.store.conn.execute("SELECT text, heading, token_count FROM chunks").fetchall()
    assert len(rows) > 10
    for text, heading, tokens in rows:
        embedded = f"{heading}\n\n{text}" if heading else text
        # Exact, or an upper bound for text of long runs without a space (the "x" * 5000).
        assert real_embedder.count_tokens(embedded) <= tokens <= 256
        if not re.search(r"\S{100,}", text):
            assert tokens == real_embedder.count_tokens(embedded)


def test_unchanged_and_renamed_files_embed_nothing(real_kb: KnowledgeBase, docs: Path) -> None:
    write(docs / "a.md", "# Kettle\n\nDescale the kettle with vinegar once a month.")
    write(docs / "b.txt", "The spare key is under the blue flower pot.")
    real_kb.index()
    counting: Counting = real_kb.embedder  # type: ignore[assignment]
    counting.embedded.clear()
    assert real_kb.index().unchanged == 2
    os.rename(docs / "b.txt", docs / "where-is-the-key.txt")
    result = real_kb.index()
    assert result.renamed == 1 and counting.embedded == []
    assert real_kb.search("where did I hide the house key?", k=1)[0].path.endswith(
        "where-is-the-key.txt"
    )


def test_watcher_with_real_embedder(real_kb: KnowledgeBase, docs: Path) -> None:
    batch_done = threading.Event()

    def on_batch(paths: list[str], result: IngestResult) -> None:
        batch_done.set()

    def indexed() -> bool:
        doc = real_kb.document(docs / "plants.md")
        return doc is not None and doc.chunk_count > 0

    with FolderWatcher(real_kb, settle_seconds=0.2, on_batch=on_batch):
        write(docs / "plants.md", "# Monstera\n\nWater the monstera when the soil is dry.")
        while not indexed():  # a batch may catch the file half-written: wait for the next
            assert batch_done.wait(30)
            batch_done.clear()
    hit = real_kb.search("how often should the big leafy houseplant get water?", k=1)[0]
    assert hit.path.endswith("plants.md") and hit.heading == "Monstera"


def test_cli_end_to_end(
    tmp_path: Path, jackdaw_home: Path, capsys: pytest.CaptureFixture[str], real_embedder: Any
) -> None:
    """``jackdaw folders add / index / search --json`` through the real entry point."""
    from agent_core.cli import main

    docs = tmp_path / "notes"
    write(docs / "tea.md", "# Tea\n\nGreen tea wants water at 80 degrees, not boiling.")
    # Reuse the session's converted model instead of converting again per test.
    models = jackdaw_home / "models"
    models.mkdir(parents=True, exist_ok=True)
    os.symlink(real_embedder.path, models / real_embedder.path.name)
    assert main(["folders", "add", str(docs), "--json"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["index"]["added"] == 1
    assert main(["index", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unchanged"] == 1
    assert main(["search", "what temperature for brewing green leaves?", "-k", "1", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert hits[0]["path"] == str(docs / "tea.md") and hits[0]["source"].endswith("(Tea)")


def test_watch_command_in_the_foreground(
    tmp_path: Path, jackdaw_home: Path, real_embedder: Any
) -> None:
    """``jackdaw watch`` as a real process: logs what it ingests, stops on Ctrl-C."""
    import signal
    import subprocess
    import sys

    from agent_core.config import Config

    docs = tmp_path / "watched"
    docs.mkdir()
    config = Config()
    config.knowledge.watched_folders = [str(docs)]
    config.knowledge.settle_seconds = 0.2
    config.save(jackdaw_home / "config.toml")
    models = jackdaw_home / "models"
    models.mkdir(parents=True, exist_ok=True)
    os.symlink(real_embedder.path, models / real_embedder.path.name)
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from agent_core.cli import main; sys.exit(main())",
            "watch",
        ],
        cwd=root,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert proc.stderr is not None
    try:
        lines = []
        for line in proc.stderr:  # the start-up reconcile comes first
            lines.append(line)
            if "reconcile scan" in line:
                break
        write(docs / "new.md", "# New\n\nA note written while watching.")
        for line in proc.stderr:
            lines.append(line)
            if "changed path" in line and "1 added" in line:
                break
        else:
            raise AssertionError("".join(lines))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
