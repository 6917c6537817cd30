from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from knowledge import KnowledgeBase, KnowledgeSettings, Progress, Status, open_knowledge_base
from knowledge.errors import NotWatchedError
from tests.knowledge.conftest import write
from tests.knowledge.fakes import FakeEmbedder
from tests.knowledge.pdfgen import write_encrypted_pdf, write_pdf, write_textless_pdf


def consistent(kb: KnowledgeBase) -> None:
    """Chunks, FTS rows and vector rows agree, and chunk_count matches."""
    conn = kb.store.conn
    chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    vec = conn.execute("SELECT count(*) FROM vec_chunks").fetchone()[0]
    fts = conn.execute("SELECT count(*) FROM chunks_fts").fetchone()[0]
    assert chunks == vec == fts
    bad = conn.execute(
        "SELECT d.path FROM documents d WHERE d.chunk_count != "
        "(SELECT count(*) FROM chunks c WHERE c.document_id = d.id)"
    ).fetchall()
    assert not bad
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")


def paths_of(kb: KnowledgeBase, query: str, k: int = 5) -> list[str]:
    return [Path(h.path).name for h in kb.search(query, k=k)]


def test_add_modify_rename_delete(kb: KnowledgeBase, docs: Path, embedder: FakeEmbedder) -> None:
    write(docs / "otters.md", "# Otters\n\nOtters hold hands while sleeping in kelp.")
    write(docs / "sub" / "bees.txt", "Bees dance to tell the hive where flowers are.")
    result = kb.index()
    assert (result.seen, result.added, result.chunks_embedded) == (2, 2, 2)
    assert paths_of(kb, "otters kelp")[0] == "otters.md"
    consistent(kb)

    write(docs / "sub" / "bees.txt", "Bees waggle to show the colony where pollen grows.")
    embedder.reset()
    result = kb.index()
    assert (result.updated, result.unchanged, result.chunks_embedded) == (1, 1, 1)
    assert paths_of(kb, "waggle pollen")[0] == "bees.txt"
    assert "dance" not in " ".join(h.text for h in kb.search("dance hive"))

    os.rename(docs / "otters.md", docs / "sub" / "sea-otters.md")
    embedder.reset()
    result = kb.index()
    assert (result.renamed, result.deleted, result.added, result.chunks_embedded) == (1, 0, 0, 0)
    assert embedder.embedded == []
    hits = kb.search("otters kelp")
    assert Path(hits[0].path).name == "sea-otters.md"
    assert kb.document(docs / "otters.md") is None
    consistent(kb)

    (docs / "sub" / "bees.txt").unlink()
    result = kb.index()
    assert result.deleted == 1
    assert "bees.txt" not in paths_of(kb, "waggle pollen")
    consistent(kb)


def test_reindex_of_unchanged_tree_embeds_and_reads_nothing(
    tmp_path: Path, docs: Path, embedder: FakeEmbedder
) -> None:
    reads: list[str] = []

    def reader(path: str) -> bytes:
        reads.append(path)
        return Path(path).read_bytes()

    kb = open_knowledge_base(tmp_path / "k.db", embedder, reader=reader)
    kb.add_folder(docs)
    for i in range(20):
        write(docs / f"d{i // 5}" / f"note{i}.md", f"# Note {i}\n\nThe number {i} is here.")
    assert kb.index().added == 20
    reads.clear()
    embedder.reset()
    again = kb.index()
    assert (again.seen, again.unchanged, again.chunks_embedded) == (20, 20, 0)
    assert reads == [] and embedder.calls == 0
    # touch: new mtime, same bytes -> read and hashed, but not parsed or embedded
    os.utime(docs / "d0" / "note0.md", ns=(1, 1))
    again = kb.index()
    assert (again.unchanged, again.chunks_embedded) == (20, 0)
    assert reads == [str(docs / "d0" / "note0.md")]
    kb.close()


def test_copy_and_partial_edit_reuse_existing_vectors(
    kb: KnowledgeBase, docs: Path, embedder: FakeEmbedder
) -> None:
    body = "\n\n".join(f"## Part {i}\n\nParagraph number {i} about topic {i}." for i in range(6))
    write(docs / "a.md", body)
    kb.index()
    assert kb.document(docs / "a.md").chunk_count == 6  # type: ignore[union-attr]
    embedder.reset()
    write(docs / "copy.md", body)
    result = kb.index()
    assert result.added == 1 and result.chunks_embedded == 0 and result.chunks_reused == 6
    embedder.reset()
    write(docs / "a.md", body.replace("topic 3.", "a changed topic."))
    result = kb.index()
    assert result.updated == 1 and result.chunks_embedded == 1
    assert embedder.embedded == ["Part 3\n\nParagraph number 3 about a changed topic."]
    consistent(kb)


def test_ignore_rules_are_recorded_with_reasons(tmp_path: Path, docs: Path) -> None:
    kb = open_knowledge_base(tmp_path / "k.db", FakeEmbedder(), KnowledgeSettings(max_file_mb=1))
    kb.add_folder(docs)
    write(docs / "ok.txt", "fine")
    write(docs / ".hidden.txt", "hidden")
    write(docs / ".git" / "config", "[core]")
    write(docs / "node_modules" / "x" / "index.js", "module.exports = 1")
    write(docs / ".obsidian" / "workspace.json", "{}")
    (docs / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    big = docs / "huge.log"
    with open(big, "wb") as fh:  # sparse: 200 MB on paper; only the first 1 MB is read
        fh.truncate(200 * 1024 * 1024)
    result = kb.index()
    assert result.added == 1 and result.skipped == 3
    assert kb.document(docs / "huge.log").status == Status.SKIPPED  # type: ignore[union-attr]
    assert "binary content" in kb.document(docs / "huge.log").error  # type: ignore[union-attr, operator]
    assert "hidden" in kb.document(docs / ".hidden.txt").error  # type: ignore[union-attr, operator]
    assert "binary file type" in kb.document(docs / "photo.png").error  # type: ignore[union-attr, operator]
    assert kb.document(docs / ".git" / "config") is None  # ignored folders are not walked
    reasons = {Path(p.path).name: p.reason for p in result.problems}
    assert reasons[".git"].startswith("ignored folder")
    assert reasons["node_modules"].startswith("ignored folder")
    assert reasons[".obsidian"] == "hidden folder"
    # Skipped files stay skipped without being rewritten or read on the next run.
    again = kb.index()
    assert (again.skipped, again.unchanged, again.added) == (3, 1, 0)
    kb.close()


def test_bad_inputs_each_get_a_status_and_the_batch_goes_on(
    tmp_path: Path, docs: Path, embedder: FakeEmbedder
) -> None:
    # tests run as root, so chmod 000 cannot make a file unreadable: the reader raises
    # PermissionError for one path instead, as open() would for a normal user.
    vanishing = docs / "vanishing.txt"

    def reader(path: str) -> bytes:
        if path.endswith("locked.txt"):
            raise PermissionError(13, "Permission denied")
        if path == str(vanishing):
            vanishing.unlink()  # deleted after the scan listed it, before it was read
        with open(path, "rb") as fh:
            return fh.read()

    kb = open_knowledge_base(
        tmp_path / "k.db", embedder, KnowledgeSettings(max_file_mb=1), reader=reader
    )
    kb.add_folder(docs)
    (docs / "corrupt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<>> garbage" * 50)
    write_encrypted_pdf(docs / "locked-pdf.pdf", ["classified"])
    write_textless_pdf(docs / "scan.pdf")
    write_pdf(docs / "good.pdf", ["A readable page about lighthouses."])
    (docs / "empty.md").write_bytes(b"")
    (docs / "blank.txt").write_text("   \n\n  ")
    (docs / "binary.txt").write_bytes(bytes(range(256)) * 64)
    (docs / "latin1.txt").write_bytes(
        "Crème brûlée à la façon de grand-mère. ".encode("latin-1") * 4
    )
    with open(docs / "huge.txt", "wb") as fh:
        fh.truncate(200 * 1024 * 1024)
    write(docs / "locked.txt", "you cannot read me")
    os.symlink(docs / "loop-b", docs / "loop-a")
    os.symlink(docs / "loop-a", docs / "loop-b")
    os.symlink(docs / "missing-target", docs / "dangling.txt")
    write(vanishing, "here for a moment")
    write(docs / "fine.md", "# Fine\n\nThis one is fine.")

    result = kb.index()
    status = {Path(d.path).name: (d.status, d.error, d.warning) for d in kb.documents()}
    assert status["corrupt.pdf"][0] == Status.FAILED
    assert status["locked-pdf.pdf"][0] == Status.ENCRYPTED
    assert status["scan.pdf"][0] == Status.NO_TEXT
    assert status["good.pdf"][0] == Status.INDEXED
    assert status["empty.md"] == (Status.EMPTY, "empty file", None)
    assert status["blank.txt"][0] == Status.EMPTY
    assert status["binary.txt"][:2] == (Status.SKIPPED, "binary content (not text)")
    assert status["latin1.txt"][0] == Status.INDEXED and "not UTF-8" in status["latin1.txt"][2]
    assert status["huge.txt"][0] == Status.SKIPPED
    assert (
        status["locked.txt"][0] == Status.FAILED and "Permission denied" in status["locked.txt"][1]
    )
    assert status["loop-a"][0] == Status.FAILED and "symbolic links" in status["loop-a"][1]
    assert status["dangling.txt"] == (Status.FAILED, "broken symbolic link", None)
    assert "vanishing.txt" not in status
    assert status["fine.md"][0] == Status.INDEXED
    problems = {Path(p.path).name: p for p in result.problems}
    assert problems["vanishing.txt"].status == "vanished"
    assert (
        result.seen
        == result.added
        + result.updated
        + result.unchanged
        + result.renamed
        + result.failed
        + result.skipped
    )
    assert "crème" in kb.search("brûlée grand-mère")[0].text.lower()
    consistent(kb)
    # Content-determined failures are not retried until the file changes; read errors are.
    again = kb.index()
    assert again.chunks_embedded == 0
    assert {p.path for p in again.problems if p.status == Status.FAILED} >= {
        str(docs / "locked.txt")
    }
    kb.close()


def test_a_parser_crash_is_recorded_and_the_batch_goes_on(
    kb: KnowledgeBase, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from knowledge.parsers import markdown

    def explode(self: object, data: bytes, path: Path) -> object:
        raise RuntimeError("parser bug")

    monkeypatch.setattr(markdown.MarkdownParser, "parse", explode)
    write(docs / "a.md", "# boom")
    write(docs / "b.txt", "still indexed")
    result = kb.index()
    assert (result.failed, result.added) == (1, 1)
    doc = kb.document(docs / "a.md")
    assert doc is not None and doc.status == Status.FAILED
    assert doc.error == "parser error: RuntimeError: parser bug"


def test_embedder_failure_is_recorded_and_retried_next_run(
    kb: KnowledgeBase, docs: Path, embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(docs / "a.txt", "alpha")
    real = embedder.embed
    monkeypatch.setattr(embedder, "embed", lambda texts: (_ for _ in ()).throw(OSError("gpu gone")))
    result = kb.index()
    assert result.failed == 1
    doc = kb.document(docs / "a.txt")
    assert doc is not None and doc.status == Status.FAILED and "gpu gone" in (doc.error or "")
    monkeypatch.setattr(embedder, "embed", real)
    assert kb.index().added == 0  # same path: an update of the failed row
    assert kb.document(docs / "a.txt").status == Status.INDEXED  # type: ignore[union-attr]


def test_progress_is_reported_as_data(kb: KnowledgeBase, docs: Path) -> None:
    for i in range(5):
        write(docs / f"n{i}.txt", f"note {i} " * 50)
    seen: list[Progress] = []
    kb.index(on_progress=seen.append)
    assert seen[0].phase == "scanning" and seen[-1].phase == "done"
    indexing = [p for p in seen if p.phase == "indexing"]
    assert indexing[-1].files_done == indexing[-1].files_total == 5
    assert {p.current_file for p in indexing if p.current_file} == {
        str(docs / f"n{i}.txt") for i in range(5)
    }
    assert seen[-1].chunks_embedded == 5
    assert all(p.eta_s is None or p.eta_s >= 0 for p in seen)
    assert seen[-1].to_dict()["files_total"] == 5


def test_cancel_stops_between_files_and_the_next_run_finishes(tmp_path: Path, docs: Path) -> None:
    # One embed call per file, so that a cancel lands between files.
    kb = open_knowledge_base(tmp_path / "k.db", FakeEmbedder(), KnowledgeSettings(embed_batch=1))
    kb.add_folder(docs)
    for i in range(10):
        write(docs / f"n{i:02}.txt", f"note {i}")
    cancel = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.files_done >= 3:
            cancel.set()

    first = kb.index(on_progress=on_progress, cancel=cancel)
    assert first.cancelled and 3 <= first.added < 10
    consistent(kb)
    second = kb.index()
    assert not second.cancelled
    assert first.added + second.added == 10 and second.unchanged == first.added


def test_missing_or_unmounted_folder_goes_offline_and_keeps_its_index(
    kb: KnowledgeBase, docs: Path, tmp_path: Path
) -> None:
    write(docs / "a.txt", "kept while away")
    kb.index()
    os.rename(docs, tmp_path / "elsewhere")
    result = kb.index()
    assert result.offline_folders == [str(docs)] and result.deleted == 0
    assert kb.folders()[0].status == "offline"
    assert paths_of(kb, "kept away") == ["a.txt"]
    docs.mkdir()  # an empty mount point
    result = kb.index()
    assert result.offline_folders == [str(docs)] and result.deleted == 0
    os.rmdir(docs)
    os.rename(tmp_path / "elsewhere", docs)
    result = kb.index()
    assert result.unchanged == 1 and not result.offline_folders
    assert kb.folders()[0].status == "online"


def test_removing_a_folder_drops_its_documents(kb: KnowledgeBase, docs: Path) -> None:
    write(docs / "a.txt", "bye")
    kb.index()
    assert kb.remove_folder(docs) == 1
    assert kb.folders() == [] and kb.documents() == []
    consistent(kb)


def test_index_of_one_path_and_paths_outside_watched_folders(
    kb: KnowledgeBase, docs: Path, tmp_path: Path
) -> None:
    write(docs / "a.txt", "first")
    write(docs / "b.txt", "second")
    result = kb.index([docs / "a.txt"])
    assert (result.seen, result.added) == (1, 1)
    assert kb.document(docs / "b.txt") is None
    with pytest.raises(NotWatchedError):
        kb.index([tmp_path / "elsewhere.txt"])
    # A deleted folder given as a path removes everything that was under it.
    write(docs / "sub" / "c.txt", "third")
    write(docs / "sub" / "deeper" / "d.txt", "fourth")
    kb.index()
    import shutil

    shutil.rmtree(docs / "sub")
    assert kb.index([docs / "sub"]).deleted == 2


def test_a_watched_data_folder_never_indexes_the_db_itself(tmp_path: Path) -> None:
    kb = open_knowledge_base(tmp_path / "knowledge.db", FakeEmbedder())
    kb.add_folder(tmp_path)
    write(tmp_path / "note.txt", "hello")
    result = kb.index()
    names = {Path(d.path).name for d in kb.documents()}
    assert "knowledge.db" not in names and "knowledge.db-wal" not in names
    assert result.added == 1
    kb.close()


def test_nested_watched_folders_own_their_files_once(kb: KnowledgeBase, docs: Path) -> None:
    write(docs / "top.txt", "top level")
    write(docs / "inner" / "deep.txt", "inner level")
    kb.add_folder(docs / "inner")
    kb.index()
    folders = {Path(d.path).name: Path(d.folder).name for d in kb.documents()}
    assert folders == {"top.txt": "docs", "deep.txt": "inner"}
    again = kb.index()
    assert (again.unchanged, again.deleted, again.added) == (2, 0, 0)


def test_small_files_share_embed_calls_and_a_bad_one_fails_alone(
    kb: KnowledgeBase, docs: Path, embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(40):
        write(docs / f"n{i:02}.txt", f"small note number {i}")
    assert kb.index().added == 40
    assert embedder.calls == 3  # 40 one-chunk files in calls of up to 16 chunks
    for i in range(40):
        write(docs / f"n{i:02}.txt", f"small note number {i}, edited")
    write(docs / "n20.txt", "this one is poison")
    embedder.reset()
    real = embedder.embed

    def picky(texts: list[str]) -> object:
        if any("poison" in t for t in texts):
            raise RuntimeError("model rejected the input")
        return real(texts)

    monkeypatch.setattr(embedder, "embed", picky)
    result = kb.index()
    # The shared call failed; its files were retried one by one: only the culprit failed.
    assert (result.updated, result.failed, result.chunks_embedded) == (39, 1, 39)
    bad = kb.document(docs / "n20.txt")
    assert bad is not None and bad.status == Status.FAILED and "rejected" in (bad.error or "")
    consistent(kb)
