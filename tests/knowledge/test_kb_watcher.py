"""The real watchdog observer on real folders; every wait is on an event set by a callback,
with a generous timeout only so that a broken watcher fails instead of hanging."""

from __future__ import annotations

import os
import queue
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from knowledge import IngestResult, KnowledgeBase
from knowledge.watcher import FolderWatcher, add_reconcile_job
from tests.knowledge.conftest import write
from tests.knowledge.fakes import FakeEmbedder

TIMEOUT = 15.0
# watchdog warns when a burst of mkdirs races its own recursive watch set-up; harmless.
pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")


class Recorder:
    """Collects batches and status changes from the watcher's thread."""

    def __init__(self) -> None:
        self.batches: queue.Queue[tuple[list[str], IngestResult]] = queue.Queue()
        self.statuses: queue.Queue[tuple[str, str]] = queue.Queue()
        self.errors: list[BaseException] = []

    def on_batch(self, paths: list[str], result: IngestResult) -> None:
        self.batches.put((paths, result))

    def on_status(self, folder: str, status: str) -> None:
        self.statuses.put((folder, status))

    def next_batch(self) -> tuple[list[str], IngestResult]:
        return self.batches.get(timeout=TIMEOUT)

    def batch_until(self, done: Callable[[IngestResult], bool]) -> IngestResult:
        """Batches may split (an editor's create + write can straddle a settle window)."""
        while True:
            _, result = self.next_batch()
            if done(result):
                return result

    def until(self, state: Callable[[], bool]) -> None:
        """Wait batch by batch until ``state()`` holds (a file caught half-written makes
        an extra batch, so counts of one batch are not enough)."""
        while not state():
            self.next_batch()


@pytest.fixture
def watching(kb: KnowledgeBase) -> Iterator[tuple[FolderWatcher, Recorder]]:
    recorder = Recorder()
    watcher = FolderWatcher(
        kb,
        settle_seconds=0.2,
        on_batch=recorder.on_batch,
        on_status=recorder.on_status,
        on_error=recorder.errors.append,
        poll_seconds=0.1,
    )
    watcher.start()
    recorder.next_batch()  # the start-up reconcile
    yield watcher, recorder
    watcher.stop()
    assert recorder.errors == []


def names(kb: KnowledgeBase, query: str) -> list[str]:
    return [Path(h.path).name for h in kb.search(query, k=5)]


def test_search_follows_add_modify_rename_delete(
    kb: KnowledgeBase, docs: Path, embedder: FakeEmbedder, watching: tuple[FolderWatcher, Recorder]
) -> None:
    _, rec = watching
    write(docs / "walrus.md", "# Walrus\n\nWalruses use their tusks to climb onto ice.")
    rec.until(lambda: names(kb, "walrus tusks")[:1] == ["walrus.md"])

    write(docs / "walrus.md", "# Walrus\n\nWalruses dive for clams on the sea floor.")
    rec.until(lambda: "clams" in kb.search("walrus clams", k=1)[0].text)

    embedder.reset()
    (docs / "animals").mkdir()
    os.rename(docs / "walrus.md", docs / "animals" / "walrus-notes.md")
    rec.until(lambda: names(kb, "walrus clams")[:1] == ["walrus-notes.md"])
    assert set(embedder.embedded) <= {"walrus clams"}  # only queries: a move keeps vectors
    assert kb.document(docs / "walrus.md") is None

    (docs / "animals" / "walrus-notes.md").unlink()
    rec.until(lambda: "walrus-notes.md" not in names(kb, "walrus clams"))
    assert kb.documents() == []


def test_a_burst_of_saves_is_one_batch_with_one_embedding(
    kb: KnowledgeBase, docs: Path, embedder: FakeEmbedder, watching: tuple[FolderWatcher, Recorder]
) -> None:
    watcher, rec = watching
    watcher.settle_seconds = 0.5
    embedder.reset()
    path = docs / "draft.txt"
    for i in range(20):  # an editor autosaving while someone types
        write(path, "draft version " + "x" * i)
    _, result = rec.next_batch()
    assert result.added == 1 and result.chunks_embedded == 1
    assert embedder.embedded == ["draft version " + "x" * 19]


def test_moving_a_folder_renames_every_file_inside(
    kb: KnowledgeBase, docs: Path, embedder: FakeEmbedder, watching: tuple[FolderWatcher, Recorder]
) -> None:
    _, rec = watching
    for i in range(3):
        write(docs / "old" / f"f{i}.txt", f"file number {i} about moving")
    rec.batch_until(lambda r: r.added + r.unchanged >= 3 and r.seen >= 3)
    embedder.reset()
    os.rename(docs / "old", docs / "new")
    result = rec.batch_until(lambda r: r.renamed == 3)
    assert result.deleted == 0 and embedder.calls == 0
    assert sorted(Path(d.path).parent.name for d in kb.documents()) == ["new"] * 3


def test_ignored_folders_do_not_trigger_batches(
    kb: KnowledgeBase, docs: Path, watching: tuple[FolderWatcher, Recorder]
) -> None:
    _, rec = watching
    write(docs / ".git" / "objects" / "ab", "blob")
    write(docs / "node_modules" / "pkg" / "index.js", "x")
    write(docs / "real.txt", "a real note")  # the marker that the noise has been processed
    paths, result = rec.next_batch()
    assert result.added == 1
    assert all(".git" not in p and "node_modules" not in p for p in paths)


def test_folder_that_disappears_goes_offline_and_comes_back(
    kb: KnowledgeBase, docs: Path, tmp_path: Path, watching: tuple[FolderWatcher, Recorder]
) -> None:
    watcher, rec = watching
    write(docs / "kept.txt", "kept through an unplug")
    rec.batch_until(lambda r: r.added == 1)
    os.rename(docs, tmp_path / "unplugged")
    assert rec.statuses.get(timeout=TIMEOUT) == (str(docs), "offline")
    assert kb.folders()[0].status == "offline"
    assert names(kb, "kept unplug") == ["kept.txt"]
    assert watcher.watched == []
    os.rename(tmp_path / "unplugged", docs)
    assert rec.statuses.get(timeout=TIMEOUT) == (str(docs), "online")
    rec.batch_until(lambda r: r.unchanged == 1)
    assert kb.folders()[0].status == "online" and watcher.watched == [str(docs)]
    write(docs / "after.txt", "written after the drive came back")
    rec.batch_until(lambda r: r.added == 1)


def test_startup_reconcile_catches_changes_made_while_closed(kb: KnowledgeBase, docs: Path) -> None:
    write(docs / "a.txt", "indexed before closing")
    kb.index()
    write(docs / "b.txt", "written while Jackdaw was closed")
    (docs / "a.txt").unlink()
    done = threading.Event()
    results: list[IngestResult] = []

    def on_batch(paths: list[str], result: IngestResult) -> None:
        results.append(result)
        done.set()

    with FolderWatcher(kb, settle_seconds=0.1, on_batch=on_batch):
        assert done.wait(TIMEOUT)
    assert (results[0].added, results[0].deleted) == (1, 1)


def test_reconcile_job_on_a_scheduler(kb: KnowledgeBase, docs: Path) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    ran = threading.Event()
    watcher = FolderWatcher(kb, on_batch=lambda p, r: ran.set(), reconcile_on_start=False)
    scheduler = BackgroundScheduler()
    job = add_reconcile_job(scheduler, watcher, minutes=30)
    assert job.id == "knowledge-reconcile"
    watcher.start()
    try:
        write(docs / "late.txt", "x")
        shutil.rmtree(docs / "none", ignore_errors=True)
        job.func()  # what the scheduler calls: queue a reconcile on the watcher's worker
        assert ran.wait(TIMEOUT)
        assert kb.document(docs / "late.txt") is not None
    finally:
        watcher.stop()


def test_a_folder_added_while_running_is_watched_at_once(
    kb: KnowledgeBase, tmp_path: Path, embedder: FakeEmbedder
) -> None:
    """Another process (``jackdaw folders add`` while ``watch`` or the app runs) adds a
    folder to knowledge.db: it is watched, and saves and deletions in it arrive."""
    from knowledge import open_knowledge_base

    recorder = Recorder()
    added = threading.Event()
    watcher = FolderWatcher(
        kb, settle_seconds=0.2, on_batch=recorder.on_batch, folders_poll_seconds=0.1
    )
    original_add = watcher.add_folder

    def add_folder(folder: str) -> None:
        original_add(folder)
        added.set()

    watcher.add_folder = add_folder  # type: ignore[method-assign]
    watcher.start()
    try:
        recorder.next_batch()  # the start-up reconcile
        later = tmp_path / "later"
        later.mkdir()
        other = open_knowledge_base(tmp_path / "knowledge.db", FakeEmbedder())
        other.add_folder(later)  # as another process would
        other.close()
        assert added.wait(TIMEOUT)
        assert str(later) in watcher.watched
        write(later / "gulls.md", "# Gulls\n\nGulls steal chips on the pier.")
        recorder.until(lambda: names(kb, "gulls chips pier")[:1] == ["gulls.md"])
        (later / "gulls.md").unlink()
        recorder.until(lambda: "gulls.md" not in names(kb, "gulls chips pier"))
    finally:
        watcher.stop()
    assert watcher.watched == []


def test_watching_is_only_claimed_while_events_flow(
    kb: KnowledgeBase, docs: Path, watching: tuple[FolderWatcher, Recorder]
) -> None:
    watcher, _ = watching
    assert watcher.watched == [str(docs)] and watcher.is_watching(str(docs))
    observer = watcher._observers[str(docs)]
    observer.stop()
    observer.join(5)
    assert not watcher.is_watching(str(docs)) and watcher.watched == []


def test_a_name_that_is_not_utf8_does_not_stop_the_watcher(
    kb: KnowledgeBase, docs: Path, watching: tuple[FolderWatcher, Recorder]
) -> None:
    _, recorder = watching
    (docs / os.fsdecode(b"bad\xffname.txt")).write_text("x")
    write(docs / "fine.md", "# Fine\n\nkingfishers dive for minnows")
    recorder.until(lambda: names(kb, "kingfishers minnows")[:1] == ["fine.md"])
    doc = kb.document(str(docs / "bad\\xffname.txt"))
    assert doc is not None and "not valid UTF-8" in (doc.error or "")
    assert recorder.errors == []
