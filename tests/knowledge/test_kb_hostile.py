"""Files people really have (issues 12 and 15): links out of the folder, pipes, names that are
not UTF-8, minified bundles, blobs, huge logs, thousands of copies, PDF ligatures, failures
that must stay on record. Each test fails on the indexer before those issues were fixed."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from knowledge import KnowledgeBase, KnowledgeSettings, Progress, Status, open_knowledge_base
from knowledge.ingest import generated_reason
from tests.knowledge.conftest import write
from tests.knowledge.fakes import FakeEmbedder
from tests.knowledge.test_kb_ingest import consistent

BAD_NAME = os.fsdecode(b"bad\xffname.txt")


def status_of(kb: KnowledgeBase) -> dict[str, tuple[str, str | None]]:
    return {Path(d.path).name: (d.status, d.error) for d in kb.documents()}


def all_text(kb: KnowledgeBase) -> str:
    return " ".join(r[0] for r in kb.store.conn.execute("SELECT text FROM chunks"))


# -- the folder is the boundary -------------------------------------------------------------


def test_links_out_of_the_folder_are_not_followed(
    kb: KnowledgeBase, docs: Path, tmp_path: Path
) -> None:
    outside = write(tmp_path / "private" / "diary.txt", "my secret plans for the heist")
    write(docs / "inside.txt", "the lighthouse keeper")
    os.symlink(outside, docs / "diary-link.txt")
    os.symlink(docs / "inside.txt", docs / "inside-link.txt")  # stays inside: fine
    os.symlink("/proc/self/status", docs / "status.txt")
    os.symlink("/etc/hostname", docs / "host.txt")
    result = kb.index()
    status = status_of(kb)
    assert status["diary-link.txt"] == (
        Status.SKIPPED,
        "symbolic link to a file outside the watched folder (not followed)",
    )
    assert status["status.txt"][0] == Status.SKIPPED and "pseudo file" in (
        status["status.txt"][1] or ""
    )
    assert status["host.txt"][0] == Status.SKIPPED
    assert status["inside-link.txt"][0] == Status.INDEXED
    assert "heist" not in all_text(kb) and "VmPeak" not in all_text(kb)
    assert not [h for h in kb.search("secret plans heist") if "diary" in h.path]
    assert result.skipped == 3
    # The same path named by a watcher event is judged the same way.
    kb.index([docs / "diary-link.txt"])
    assert "heist" not in all_text(kb)


def test_following_links_out_is_a_choice(tmp_path: Path, docs: Path) -> None:
    outside = write(tmp_path / "shared" / "recipes.txt", "grandmother's plum cake")
    os.symlink(outside, docs / "recipes.txt")
    kb = open_knowledge_base(
        tmp_path / "k.db", FakeEmbedder(), KnowledgeSettings(follow_links_outside=True)
    )
    kb.add_folder(docs)
    kb.index()
    assert status_of(kb)["recipes.txt"][0] == Status.INDEXED
    assert "plum cake" in all_text(kb)
    kb.close()


def test_pipes_and_credential_stores_are_skipped_with_a_reason(tmp_path: Path, docs: Path) -> None:
    os.mkfifo(docs / "pipe.txt")  # reading it would block forever
    write(docs / ".ssh" / "id_ed25519", "PRIVATE KEY")
    write(docs / ".netrc", "machine x password hunter2")
    write(docs / "note.txt", "an ordinary note")
    kb = open_knowledge_base(
        tmp_path / "k.db", FakeEmbedder(), KnowledgeSettings(skip_hidden=False)
    )
    kb.add_folder(docs)
    result = kb.index()
    status = status_of(kb)
    assert status["pipe.txt"] == (Status.SKIPPED, "a named pipe (FIFO; not read)")
    assert status[".netrc"] == (Status.SKIPPED, "a credential store (never read)")
    assert "id_ed25519" not in status
    assert any(p.reason == "a credential store (never read)" for p in result.problems)
    assert "hunter2" not in all_text(kb) and "PRIVATE" not in all_text(kb)
    assert status["note.txt"][0] == Status.INDEXED
    kb.close()


def test_read_file_and_the_indexer_share_one_set_of_rules() -> None:
    from knowledge import boundary
    from tools import paths

    assert paths.SECRET_DIRS is boundary.SECRET_DIRS
    assert paths.SECRET_FILES is boundary.SECRET_FILES
    assert paths.is_inside is boundary.is_inside


# -- names, copies, generated content ---------------------------------------------------------


def test_a_file_name_that_is_not_utf8_does_not_stop_the_folder(
    kb: KnowledgeBase, docs: Path
) -> None:
    (docs / BAD_NAME).write_text("x")
    write(docs / "good.md", "# Good\n\nherons fish in shallow water")
    result = kb.index()
    assert result.added == 1 and result.skipped == 1
    escaped = str(docs / "bad\\xffname.txt")
    doc = kb.document(escaped)
    assert doc is not None and doc.status == Status.SKIPPED and "not valid UTF-8" in doc.error
    assert [p.path for p in result.problems] == [escaped]
    again = kb.index()  # stable: the escaped row is the same file next time
    assert (again.skipped, again.unchanged, again.added, again.deleted) == (1, 1, 0, 0)
    assert kb.index([docs / BAD_NAME]).failed == 0  # a watcher event naming it


def test_many_identical_files_cost_linear_time(
    kb: KnowledgeBase, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rename detection looked every new file's hash up among all documents with that hash:
    quadratic with 20,000 copies of one template."""
    n = 400
    for i in range(n):
        write(docs / f"d{i // 100}" / f"todo{i:04}.md", "TODO: fill in")
    looked_up: list[str] = []
    real = kb.store.documents_with_hash

    def counting(digest: str) -> list[object]:
        looked_up.append(digest)
        return real(digest)

    monkeypatch.setattr(kb.store, "documents_with_hash", counting)
    rows_read = 0

    def progress() -> int:  # SQLite calls this every 100 virtual-machine steps
        nonlocal rows_read
        rows_read += 1
        return 0

    kb.store.conn.set_progress_handler(progress, 100)
    result = kb.index()
    kb.store.conn.set_progress_handler(None, 100)
    assert result.added == n and result.chunks_embedded == 1
    assert len(looked_up) <= 1
    # SQLite work per file stays flat: reading every copy of the text for each new file
    # (the vector look-up) made it grow with the number of copies.
    assert rows_read < 8 * n  # measured: 4.75 per file; 16.6 (and growing) before
    # Renaming all of them is still recognised, one rename each.
    for i in range(n):
        (docs / f"d{i // 100}" / f"todo{i:04}.md").rename(docs / f"d{i // 100}" / f"t{i:04}.md")
    again = kb.index()
    assert (again.renamed, again.added, again.deleted, again.chunks_embedded) == (n, 0, 0, 0)
    consistent(kb)


def test_minified_and_encoded_content_is_skipped_with_a_reason(
    kb: KnowledgeBase, docs: Path
) -> None:
    write(docs / "bundle.js", "var a=function(b){return b+1},c=[1,2,3].map(a);" * 400)
    write(docs / "data.json", '{"id":12,"tags":["x","y"],"name":"value"},' * 400)
    write(docs / "blob.md", "# Image\n\n" + "QUJD" * 5000)
    write(docs / "app.min.css", "a{color:red}")
    write(
        docs / "novel.txt", ("She walked along the shore, thinking of the sea. " * 80 + "\n") * 20
    )
    write(docs / "tokyo.md", "東京は日本の首都です。" * 800)
    kb.index()
    status = status_of(kb)
    assert status["bundle.js"][0] == Status.SKIPPED
    assert status["bundle.js"][1].startswith("minified or generated (lines of")
    assert status["data.json"][0] == Status.SKIPPED
    assert status["blob.md"] == (
        Status.SKIPPED,
        "encoded data (runs of thousands of characters without a space)",
    )
    assert status["app.min.css"] == (Status.SKIPPED, "minified or generated (by its name)")
    assert status["novel.txt"][0] == Status.INDEXED  # long lines of prose are prose
    assert status["tokyo.md"][0] == Status.INDEXED  # a script without spaces is not minified


@pytest.mark.parametrize(
    ("text", "kind", "generated"),
    [
        ("x" * 5000, "text", True),
        ("word " * 2000, "text", False),
        ("a=1;" * 2000, "code", True),
        ("a = 1\n" * 2000, "code", False),
        ("short", "text", False),
    ],
)
def test_generated_reason(text: str, kind: str, generated: bool) -> None:
    assert (generated_reason(text, kind) is not None) is generated


# -- size, time and memory ------------------------------------------------------------------


def test_text_past_the_size_limit_is_indexed_up_to_it(tmp_path: Path, docs: Path) -> None:
    line = "2024-05-01 12:00:00 INFO the pump at station {} reported pressure {} bar\n"
    with open(docs / "big.log", "w") as fh:
        for i in range(40_000):  # ~2.9 MB
            fh.write(line.format(i, i % 7))
    kb = open_knowledge_base(tmp_path / "k.db", FakeEmbedder(), KnowledgeSettings(max_file_mb=1))
    kb.add_folder(docs)
    result = kb.index()
    doc = kb.document(docs / "big.log")
    assert doc is not None and doc.status == Status.TRUNCATED
    assert doc.error is not None and doc.error.startswith("truncated at 1 MB (the file is 3 MB")
    assert result.truncated == 1 and result.added == 1
    assert "station 1 reported" in all_text(kb) and "station 39999" not in all_text(kb)
    assert kb.problems()[0].status == Status.TRUNCATED
    again = kb.index()
    assert (again.unchanged, again.chunks_embedded) == (1, 0)
    consistent(kb)
    kb.close()


class Clock:
    """A clock the embedder moves: each embed call takes one 'second'."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TickingEmbedder(FakeEmbedder):
    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock

    def embed(self, texts):  # type: ignore[no-untyped-def]
        self.clock.now += 1.0
        return super().embed(texts)


def long_note(n_paragraphs: int) -> str:
    return "\n\n".join(
        f"Paragraph {i} tells of harbour {i} and the boats moored there."
        for i in range(n_paragraphs)
    )


def test_the_time_budget_truncates_and_the_next_run_carries_on(tmp_path: Path, docs: Path) -> None:
    clock = Clock()
    embedder = TickingEmbedder(clock)
    kb = open_knowledge_base(
        tmp_path / "k.db",
        embedder,
        KnowledgeSettings(file_time_budget_s=5, embed_batch=4, chunk_tokens=32, overlap_tokens=0),
    )
    kb.indexer.clock = clock
    kb.indexer.settings = type(kb.indexer.settings)(
        **{**kb.indexer.settings.__dict__, "store_batch": 8}
    )
    kb.add_folder(docs)
    write(docs / "long.txt", long_note(300))
    write(docs / "short.txt", "a short note")
    first = kb.index()
    doc = kb.document(docs / "long.txt")
    assert doc is not None and doc.status == Status.TRUNCATED
    assert "time budget of 5 s" in (doc.error or "") and doc.chunk_count > 0
    assert status_of(kb)["short.txt"][0] == Status.INDEXED  # the rest of the folder goes on
    consistent(kb)
    done = doc.chunk_count
    runs = 0
    while kb.document(docs / "long.txt").status != Status.INDEXED:  # type: ignore[union-attr]
        again = kb.index()
        runs += 1
        assert runs < 50
        assert again.chunks_reused >= done  # what was done is not embedded again
        done = kb.document(docs / "long.txt").chunk_count  # type: ignore[union-attr]
    assert first.chunks_embedded > 0
    consistent(kb)
    kb.close()


def test_a_big_file_is_written_in_parts_and_a_cancel_keeps_them(tmp_path: Path, docs: Path) -> None:
    embedder = FakeEmbedder()
    kb = open_knowledge_base(
        tmp_path / "k.db", embedder, KnowledgeSettings(embed_batch=4, chunk_tokens=32)
    )
    kb.indexer.settings = type(kb.indexer.settings)(
        **{**kb.indexer.settings.__dict__, "store_batch": 8}
    )
    kb.add_folder(docs)
    write(docs / "long.txt", long_note(200))
    cancel = threading.Event()
    writes: list[int] = []
    real_append = kb.store.append_chunks

    def append(doc_id, record, chunks, vectors):  # type: ignore[no-untyped-def]
        writes.append(len(chunks))
        real_append(doc_id, record, chunks, vectors)
        if len(writes) == 3:
            cancel.set()

    kb.store.append_chunks = append  # type: ignore[method-assign]
    first = kb.index(cancel=cancel)
    assert first.cancelled and writes == [8, 8, 8]  # never more than a batch in memory
    doc = kb.document(docs / "long.txt")
    assert doc is not None and doc.status == Status.PARTIAL and doc.chunk_count == 24
    assert kb.search("harbour 5 boats")  # what is done is searchable already
    consistent(kb)
    embedder.reset()
    second = kb.index()
    doc = kb.document(docs / "long.txt")
    assert doc is not None and doc.status == Status.INDEXED and doc.content_hash
    assert second.chunks_reused >= 24
    assert second.chunks_embedded == doc.chunk_count - second.chunks_reused
    consistent(kb)
    kb.close()


# -- text normalisation, failures on record, progress, stale runs ---------------------------


def test_ligatures_are_normalised_at_parse_time(kb: KnowledgeBase, docs: Path) -> None:
    write(docs / "terms.md", "# Terms\n\nThe ﬁrst deﬁnition of the ﬂow rate.")
    write(docs / "page.html", "<h1>Ｆｕｌｌ ｗｉｄｔｈ</h1><p>another deﬁnition</p>")
    kb.index()
    text = all_text(kb)
    assert "first definition of the flow" in text and "ﬁ" not in text
    hits = kb.store.conn.execute(
        "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'definition'"
    ).fetchone()[0]
    assert hits == 2
    assert (
        kb.store.conn.execute(
            "SELECT count(*) FROM chunks WHERE heading = 'Full width'"
        ).fetchone()[0]
        == 1
    )


def test_failures_stay_on_record_until_the_file_changes(kb: KnowledgeBase, docs: Path) -> None:
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7\n garbage" * 40)
    write(docs / "ok.txt", "fine")
    kb.index()
    again = kb.index()
    assert [(Path(p.path).name, p.status) for p in again.problems] == [
        ("broken.pdf", Status.FAILED)
    ]
    assert [Path(d.path).name for d in kb.problems()] == ["broken.pdf"]
    assert kb.folders()[0].problems == 1
    from tests.knowledge.pdfgen import write_pdf

    write_pdf(docs / "broken.pdf", ["Repaired at last."])  # changed: tried again
    kb.index()
    assert kb.problems() == [] and kb.folders()[0].problems == 0


def test_progress_counts_files_while_scanning(kb: KnowledgeBase, docs: Path) -> None:
    for i in range(300):
        write(docs / f"s{i // 50}" / f"n{i:03}.txt", f"note {i}")
    seen: list[Progress] = []
    kb.index(on_progress=seen.append)
    scanning = [p for p in seen if p.phase == "scanning"]
    assert scanning[0].files_total == 0
    assert any(0 < p.files_total < 300 for p in scanning)  # found so far, before the end
    indexing = [p for p in seen if p.phase == "indexing"]
    assert indexing[0].files_total == 300
    assert len({p.files_done for p in indexing}) > 10  # moves file by file, not at the end


def test_a_run_whose_process_died_is_marked_interrupted(tmp_path: Path) -> None:
    kb = open_knowledge_base(tmp_path / "k.db", FakeEmbedder())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run_id = kb.store.start_run(dead.pid, "all")
    mine = kb.store.start_run(os.getpid(), "all")
    kb.close()
    kb = open_knowledge_base(tmp_path / "k.db", FakeEmbedder())
    runs = {r.id: r for r in kb.runs()}
    assert runs[run_id].status == "interrupted"
    assert runs[mine].status == "running"  # this process is alive
    kb.index()
    assert kb.runs()[0].status == "done" and "seen" in (kb.runs()[0].summary or "")
    kb.close()


# -- real-world PDFs (generated equivalents of py-pdf/sample-files' tricky ones) --------------


def test_tricky_pdfs_each_get_a_status_without_a_crash_or_hang(tmp_path: Path, docs: Path) -> None:
    from tests.knowledge.pdfgen import (
        pdf_bytes,
        write_encrypted_pdf,
        write_pdf,
        write_textless_pdf,
    )

    good = pdf_bytes(["Page one about tides.", "Page two about currents."])
    write_encrypted_pdf(docs / "encrypted.pdf", ["classified"])
    (docs / "broken-xref.pdf").write_bytes(good.replace(b"xref\n0 ", b"xref\n7 ").replace(
        b"0000000009", b"0000009999"))  # fmt: skip
    (docs / "no-xref.pdf").write_bytes(good[: good.index(b"xref")])
    (docs / "half.pdf").write_bytes(good[: len(good) // 2])
    (docs / "not-a-pdf.pdf").write_bytes(b"PK\x03\x04 a zip file in disguise" * 10)
    write_textless_pdf(docs / "scanned.pdf", n_pages=30)
    write_pdf(docs / "many-pages.pdf", [f"Page {i} of the ledger." for i in range(1500)])

    class TickingClock:
        now = 0.0

        def __call__(self) -> float:
            self.now += 0.001  # every look at the clock costs a millisecond
            return self.now

    kb = open_knowledge_base(
        tmp_path / "k.db", FakeEmbedder(), KnowledgeSettings(file_time_budget_s=0.5)
    )
    kb.indexer.clock = TickingClock()
    kb.add_folder(docs)
    result = kb.index()
    status = status_of(kb)
    assert set(status) == {
        "encrypted.pdf",
        "broken-xref.pdf",
        "no-xref.pdf",
        "half.pdf",
        "not-a-pdf.pdf",
        "scanned.pdf",
        "many-pages.pdf",
    }
    assert status["encrypted.pdf"][0] == Status.ENCRYPTED
    assert status["scanned.pdf"][0] == Status.NO_TEXT
    assert status["not-a-pdf.pdf"][0] == Status.FAILED
    assert status["broken-xref.pdf"][0] in (Status.INDEXED, Status.FAILED)
    assert status["many-pages.pdf"][0] == Status.TRUNCATED
    assert "time budget" in (status["many-pages.pdf"][1] or "")
    many = kb.document(docs / "many-pages.pdf")
    assert many is not None and many.chunk_count > 0
    assert "stopped after page" in (many.warning or "")
    assert result.seen == 7
    consistent(kb)
    kb.close()
