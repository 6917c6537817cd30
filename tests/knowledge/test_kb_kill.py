"""SIGKILL the indexer mid-run in a real subprocess; the DB stays sound and converges."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from knowledge import KnowledgeSettings, db, open_knowledge_base
from tests.knowledge.conftest import write
from tests.knowledge.fakes import FakeEmbedder

CHILD = Path(__file__).with_name("indexer_child.py")


def make_tree(root: Path) -> None:
    for i in range(40):
        body = "\n\n".join(
            f"## Section {j}\n\n" + " ".join(f"doc{i} sec{j} word{k}" for k in range(40))
            for j in range(4)
        )
        write(root / f"group{i % 4}" / f"doc{i:02}.md", body)


def snapshot(db_path: Path, root: Path) -> tuple[list[tuple], list[tuple]]:
    conn = db.connect(db_path)
    try:
        docs = sorted(
            (os.path.relpath(r[0], root), r[1], r[2], r[3])
            for r in conn.execute("SELECT path, content_hash, status, chunk_count FROM documents")
        )
        chunks = sorted(
            (os.path.relpath(r[0], root), r[1], r[2], r[3], bytes(r[4]))
            for r in conn.execute(
                "SELECT d.path, c.seq, c.text, c.text_hash, c.embedding "
                "FROM chunks c JOIN documents d ON d.id = c.document_id"
            )
        )
        return docs, chunks
    finally:
        conn.close()


def check_sound(db_path: Path) -> None:
    conn = db.connect(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")
        n_chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        n_vec = conn.execute("SELECT count(*) FROM vec_chunks").fetchone()[0]
        n_fts = conn.execute("SELECT count(*) FROM chunks_fts").fetchone()[0]
        assert n_chunks == n_vec == n_fts
        assert (
            conn.execute(
                "SELECT count(*) FROM documents d WHERE chunk_count != "
                "(SELECT count(*) FROM chunks WHERE document_id = d.id)"
            ).fetchone()[0]
            == 0
        )
    finally:
        conn.close()


def run_child(db_path: Path, folder: Path, kill_after_files: int | None) -> int:
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(db_path), str(folder)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    done = 0
    for line in proc.stdout:
        if line.startswith("progress"):
            done = int(line.split()[1])
            if kill_after_files is not None and done >= kill_after_files:
                os.kill(proc.pid, signal.SIGKILL)
                break
    proc.wait(timeout=60)
    proc.stdout.close()
    return proc.returncode


def test_sigkill_mid_index_leaves_a_sound_db_that_converges(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    make_tree(tree)
    reference = tmp_path / "reference.db"
    kb = open_knowledge_base(reference, FakeEmbedder())
    kb.add_folder(tree)
    assert kb.index().added == 40
    kb.close()

    killed = tmp_path / "killed.db"
    assert run_child(killed, tree, kill_after_files=7) == -signal.SIGKILL
    check_sound(killed)
    partial, _ = snapshot(killed, tree)
    assert 0 < len(partial) < 40
    assert run_child(killed, tree, kill_after_files=25) == -signal.SIGKILL
    check_sound(killed)
    assert run_child(killed, tree, kill_after_files=None) == 0
    check_sound(killed)
    assert snapshot(killed, tree) == snapshot(reference, tree)


CLI_CHILD = Path(__file__).with_name("cli_child.py")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_in_the_middle_of_a_big_file_keeps_the_work_and_exits_130(
    tmp_path: Path, sig: int
) -> None:
    tree = tmp_path / "tree"
    text = "\n\n".join(f"Paragraph {i} about harbour {i} and its boats." for i in range(3000))
    write(tree / "big.txt", text)
    write(tree / "small.md", "# Small\n\nA small note.")
    db_path = tmp_path / "k.db"
    proc = subprocess.Popen(
        [sys.executable, str(CLI_CHILD), str(db_path), str(tree), "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # wait until the big file is being embedded
        if line.startswith("[indexing]") and not line.split("files, ")[1].startswith("0 "):
            break
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    result = json.loads(out)
    assert result["cancelled"] is True
    check_sound(db_path)
    # The same chunking as the child's, so its chunks are found again.
    kb = open_knowledge_base(db_path, FakeEmbedder(), KnowledgeSettings(chunk_tokens=64))
    doc = kb.document(tree / "big.txt")
    assert doc is not None and doc.status == "partial" and doc.chunk_count > 0
    assert kb.runs()[0].status == "cancelled"
    done = doc.chunk_count
    again = kb.index()
    assert not again.cancelled and again.chunks_reused >= done
    assert kb.document(tree / "big.txt").status == "indexed"  # type: ignore[union-attr]
    check_sound(db_path)
    kb.close()


def test_a_killed_run_is_marked_interrupted_at_the_next_start(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    make_tree(tree)
    db_path = tmp_path / "k.db"
    assert run_child(db_path, tree, kill_after_files=5) == -signal.SIGKILL
    kb = open_knowledge_base(db_path, FakeEmbedder())
    assert kb.runs()[0].status == "interrupted"
    kb.close()
