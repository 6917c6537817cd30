"""Incremental indexing of watched folders.

A run has two phases. *Plan*: list and stat every file in scope and compare with the
documents table; a file whose size and mtime are unchanged is done without being opened.
*Work*: each remaining file is read once and hashed; same hash as before -> only the
timestamp is updated; same hash as a document that has disappeared -> a rename, which keeps
its chunks and vectors; otherwise it is parsed, chunked and embedded (reusing the vector of
any chunk text already in the index) and written in one transaction. Documents whose files
are gone are deleted last, after renames have claimed theirs.

Every file's outcome is recorded on its row; an exception in one file never stops the run.
A kill at any point leaves whole documents only; the next run redoes the rest.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from knowledge.chunker import Chunk, Chunker
from knowledge.parsers import (
    ParseError,
    fallback_parser,
    looks_binary,
    parser_for,
)
from knowledge.scan import FileEntry, IgnoreRules, scan_tree, stat_entry, watched_root
from knowledge.store import DocumentRecord, KnowledgeStore
from knowledge.types import Document, IngestResult, Progress, Status
from models.embedding import Embedder

ProgressCallback = Callable[[Progress], None]
FileReader = Callable[[str], bytes]


def read_file(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


@dataclass(frozen=True)
class IndexSettings:
    rules: IgnoreRules = field(default_factory=IgnoreRules)
    chunk_tokens: int = 256
    overlap_tokens: int = 32
    # Chunks per embed call. Chunks of several small files share a call (the embedder
    # packs short texts into one decode, much faster than one call per note); a cancel
    # waits for at most one call.
    embed_batch: int = 16


@dataclass(frozen=True)
class Scope:
    """Index ``path`` (a folder or a file, present or gone) inside watched folder ``root``."""

    root: str
    path: str


class _Cancelled(Exception):
    pass


@dataclass
class _Outcome:
    """What became of one file's content."""

    status: str
    reason: str | None
    warning: str | None = None
    chunks: list[Chunk] = field(default_factory=list)
    vectors: np.ndarray | None = None
    retry: bool = False  # the failure was not the file's: try again next run


@dataclass
class _Job:
    """A parsed and chunked file waiting for the vectors of its new chunk texts."""

    root: str
    entry: FileEntry
    is_new: bool
    digest: str
    file_type: str
    outcome: _Outcome
    missing: dict[str, str]  # text hash -> text, for chunks not embedded before


class _Tracker:
    """Turns counters into :class:`Progress` snapshots for the callback."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.started = time.monotonic()
        self.work_started: float | None = None
        self.files_total = 0
        self.files_done = 0
        self.bytes_total = 0
        self.bytes_done = 0
        self.chunks = 0
        self.current: str | None = None

    def file_done(self, size: int) -> None:
        self.files_done += 1
        self.bytes_done += size
        self.emit("indexing")

    def emit(self, phase: str) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        work_elapsed = now - self.work_started if self.work_started else 0.0
        rate = self.chunks / work_elapsed if work_elapsed > 0 else 0.0
        eta = None
        if phase == "indexing" and self.bytes_done and work_elapsed > 0:
            eta = (self.bytes_total - self.bytes_done) * work_elapsed / self.bytes_done
        elif phase in ("done", "cancelled"):
            eta = 0.0
        self.callback(
            Progress(
                phase=phase,
                files_done=self.files_done,
                files_total=self.files_total,
                chunks_embedded=self.chunks,
                chunks_per_s=round(rate, 2),
                eta_s=None if eta is None else round(eta, 1),
                current_file=self.current,
                elapsed_s=round(now - self.started, 3),
            )
        )


class Indexer:
    def __init__(
        self,
        store: KnowledgeStore,
        embedder: Embedder,
        settings: IndexSettings | None = None,
        reader: FileReader = read_file,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings or IndexSettings()
        # Never ask for more than the model takes, whatever the settings say.
        limit = min(self.settings.chunk_tokens, embedder.max_tokens)
        self.chunker = Chunker(embedder.count_tokens, limit, self.settings.overlap_tokens)
        self.reader = reader
        self._lock = threading.Lock()  # one run at a time per indexer

    # -- the run --------------------------------------------------------------------------

    def run(
        self,
        scopes: Sequence[Scope],
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> IngestResult:
        with self._lock:
            started = time.monotonic()
            result = IngestResult()
            tracker = _Tracker(on_progress)
            cancel = cancel or threading.Event()
            try:
                self._run(scopes, result, tracker, cancel)
            except _Cancelled:
                result.cancelled = True
            if result.added or result.updated:
                self.store.recenter_if_grown()
            result.seconds = time.monotonic() - started
            tracker.current = None
            tracker.emit("cancelled" if result.cancelled else "done")
            return result

    def _run(
        self,
        scopes: Sequence[Scope],
        result: IngestResult,
        tracker: _Tracker,
        cancel: threading.Event,
    ) -> None:
        tracker.emit("scanning")
        entries, known, scanned_roots = self._plan(scopes, result)
        gone = {path: doc for path, doc in known.items() if path not in entries}
        tracker.files_total = len(entries)
        work: list[tuple[str, FileEntry]] = []
        for path, (root, entry) in entries.items():
            if self._settle_quickly(root, entry, known.get(path), result):
                tracker.files_done += 1
            else:
                work.append((root, entry))
        tracker.bytes_total = sum(e.size for _, e in work)
        tracker.work_started = time.monotonic()
        tracker.emit("indexing")

        gone_by_hash: dict[str, list[Document]] = {}
        for doc in gone.values():
            if doc.content_hash:
                gone_by_hash.setdefault(doc.content_hash, []).append(doc)
        pending: list[_Job] = []
        for root, entry in work:  # in path order
            if cancel.is_set():
                raise _Cancelled
            tracker.current = entry.path
            job = self._prepare(root, entry, known.get(entry.path), gone, gone_by_hash, result)
            if job is None:  # settled without embedding anything
                tracker.file_done(entry.size)
                continue
            pending.append(job)
            if sum(len(j.missing) for j in pending) >= self.settings.embed_batch:
                self._flush(pending, result, tracker, cancel)
                pending = []
        self._flush(pending, result, tracker, cancel)
        if cancel.is_set():
            raise _Cancelled
        # Only now: a rename found later in the run may still have claimed one of these.
        result.deleted += self.store.delete_documents(sorted(gone))
        for root in scanned_roots:
            self.store.mark_scanned(root)

    def _plan(
        self, scopes: Sequence[Scope], result: IngestResult
    ) -> tuple[dict[str, tuple[str, FileEntry]], dict[str, Document], list[str]]:
        rules = self.settings.rules
        entries: dict[str, tuple[str, FileEntry]] = {}
        known: dict[str, Document] = {}
        scanned_roots: list[str] = []
        all_roots = sorted(set(self.store.folder_paths()) | {s.root for s in scopes})

        def mine(root: str, path: str) -> bool:
            # With nested watched folders a file belongs to the deepest one only.
            return watched_root(path, all_roots) == root

        for scope in scopes:
            root, path = scope.root, scope.path
            if path == root:
                offline = self._offline_reason(root)
                if offline:
                    self.store.set_folder_status(root, "offline", offline)
                    result.offline_folders.append(root)
                    continue
                scanned_roots.append(root)
            if os.path.isdir(path) and not os.path.islink(path):
                scan = scan_tree(path, root, rules)
                for entry in scan.files:
                    if mine(root, entry.path):
                        entries[entry.path] = (root, entry)
                for skipped_path, reason in scan.skipped_dirs:
                    result.note_problem(skipped_path, Status.SKIPPED, reason)
            elif not self._inside_ignored_folder(root, path) and path not in rules.excluded_paths:
                single = stat_entry(path, rules, rules.path_reason(root, path))
                if single is not None:
                    entries[path] = (root, single)
            doc = self.store.document(path)
            if doc is not None and mine(root, path):
                known[path] = doc
            known.update(
                (p, d) for p, d in self.store.documents_under(path).items() if mine(root, p)
            )
        return dict(sorted(entries.items())), known, scanned_roots

    def _offline_reason(self, root: str) -> str | None:
        if not os.path.isdir(root):
            return "folder not found (unplugged drive or unmounted share?); index kept"
        try:
            empty = not any(os.scandir(root))
        except OSError as exc:
            return f"folder cannot be listed ({exc.strerror or exc}); index kept"
        if empty and self.store.documents_under(root):
            # An unmounted mount point is an empty folder: do not take it for mass deletion.
            return "folder is empty but the index holds files (an unmounted drive?); index kept"
        return None

    def _inside_ignored_folder(self, root: str, path: str) -> bool:
        rel = os.path.relpath(path, root).split(os.sep)
        return any(self.settings.rules.dir_reason(part) for part in rel[:-1])

    def _settle_quickly(
        self, root: str, entry: FileEntry, doc: Document | None, result: IngestResult
    ) -> bool:
        """Handle what needs no reading: stat errors, ignore rules, unchanged files."""
        result.seen += 1
        if entry.error:
            self._record(root, entry, None, Status.FAILED, entry.error)
            result.failed += 1
            result.note_problem(entry.path, Status.FAILED, entry.error)
            return True
        if entry.skip_reason:
            if not (
                doc
                and doc.status == Status.SKIPPED
                and doc.error == entry.skip_reason
                and doc.size == entry.size
                and doc.mtime_ns == entry.mtime_ns
            ):
                self._record(root, entry, None, Status.SKIPPED, entry.skip_reason)
            result.skipped += 1
            result.note_problem(entry.path, Status.SKIPPED, entry.skip_reason)
            return True
        if (
            doc is not None
            and doc.content_hash is not None
            and doc.folder == root
            and doc.size == entry.size
            and doc.mtime_ns == entry.mtime_ns
        ):
            result.unchanged += 1
            return True
        return False

    # -- one file ---------------------------------------------------------------------------

    def _prepare(
        self,
        root: str,
        entry: FileEntry,
        doc: Document | None,
        gone: dict[str, Document],
        gone_by_hash: dict[str, list[Document]],
        result: IngestResult,
    ) -> _Job | None:
        """Read, hash and parse one file. Returns a job when new chunk texts need vectors;
        everything else (unchanged, moved, failed, empty ...) is written here and now."""
        path = entry.path
        try:
            data = self.reader(path)
        except FileNotFoundError:
            # Deleted between the scan and now: its row (if any) goes with the others.
            if doc is not None:
                gone[path] = doc
            result.failed += 1
            result.note_problem(path, "vanished", "deleted while being indexed")
            return None
        except OSError as exc:
            why = f"cannot read: {exc.strerror or exc}"
            # No hash: a read error may be passing (a lock, a permission), so retry next run.
            self._record(root, entry, None, Status.FAILED, why)
            result.failed += 1
            result.note_problem(path, Status.FAILED, why)
            return None
        digest = hashlib.sha256(data).hexdigest()
        file_type = self._type_of(path)

        if doc is not None and doc.content_hash == digest and doc.folder == root:
            self.store.touch(path, entry.size, entry.mtime_ns)
            result.unchanged += 1
            return None
        if doc is None:
            moved_from = self._moved_from(digest, file_type, gone, gone_by_hash)
            if moved_from is not None:
                self.store.move_document(moved_from, path, root, entry.size, entry.mtime_ns)
                result.renamed += 1
                return None
        outcome = self._parse(path, data)
        job = _Job(root, entry, doc is None, digest, file_type, outcome, {})
        if outcome.status == Status.INDEXED:
            dim = self.embedder.dimension
            hashes = [c.text_hash for c in outcome.chunks]
            known = self.store.known_vectors(hashes, dim)
            outcome.vectors = np.zeros((len(hashes), dim), dtype=np.float32)
            for i, (chunk, h) in enumerate(zip(outcome.chunks, hashes, strict=True)):
                if h in known:
                    outcome.vectors[i] = known[h]
                else:
                    job.missing[h] = chunk.embed_text
            result.chunks_reused += len(hashes) - len(job.missing)
            if job.missing:
                return job
        self._finish(job, result)
        return None

    def _flush(
        self,
        jobs: list[_Job],
        result: IngestResult,
        tracker: _Tracker,
        cancel: threading.Event,
    ) -> None:
        """Embed the new chunk texts of ``jobs`` together, then write each file in its own
        transaction. If embedding fails, files are retried one by one so that the failure
        lands on the file that caused it."""
        if not jobs:
            return
        texts: dict[str, str] = {}
        for job in jobs:
            texts.update(job.missing)
        try:
            vectors = self._embed(texts, result, tracker, cancel)
        except _Cancelled:
            raise
        except Exception as exc:
            if len(jobs) > 1:
                for job in jobs:
                    self._flush([job], result, tracker, cancel)
                return
            job = jobs[0]
            reason = f"embedding failed: {type(exc).__name__}: {exc}"
            job.outcome = _Outcome(Status.FAILED, reason, job.outcome.warning, retry=True)
            self._finish(job, result)
            tracker.file_done(job.entry.size)
            return
        # Texts shared by files of this batch were embedded once.
        result.chunks_reused += sum(len(j.missing) for j in jobs) - len(texts)
        for job in jobs:
            outcome = job.outcome
            assert outcome.vectors is not None
            for i, chunk in enumerate(outcome.chunks):
                if chunk.text_hash in job.missing:
                    outcome.vectors[i] = vectors[chunk.text_hash]
            self._finish(job, result)
            tracker.current = job.entry.path
            tracker.file_done(job.entry.size)

    def _finish(self, job: _Job, result: IngestResult) -> None:
        """Write one file's outcome (one transaction) and count it."""
        out, path = job.outcome, job.entry.path
        # A failure that may pass (the model, not the file) is stored without the hash, so
        # the unchanged file is tried again next run.
        self._record(
            job.root,
            job.entry,
            None if out.retry else job.digest,
            out.status,
            out.reason,
            job.file_type,
            out.warning,
            out.chunks,
            out.vectors,
        )
        if out.status in (Status.INDEXED, Status.EMPTY):
            if job.is_new:
                result.added += 1
            else:
                result.updated += 1
        elif out.status == Status.SKIPPED:
            result.skipped += 1
            result.note_problem(path, out.status, out.reason or "")
        else:
            result.failed += 1
            result.note_problem(path, out.status, out.reason or "")

    def _moved_from(
        self,
        digest: str,
        file_type: str,
        gone: dict[str, Document],
        gone_by_hash: dict[str, list[Document]],
    ) -> str | None:
        """The path of a vanished document with this content: the file was moved here.

        First among the documents this run saw disappear; then among all documents whose
        file no longer exists, because a watcher batch may hold only the destination of a
        move (watchdog reports a move up to half a second after the folder it went into).
        A document on an offline folder does not count: its file is away, not moved.
        """
        for candidate in gone_by_hash.get(digest, []):
            if candidate.type == file_type and candidate.path in gone:
                del gone[candidate.path]
                gone_by_hash[digest].remove(candidate)
                return candidate.path
        for candidate in self.store.documents_with_hash(digest):
            if (
                candidate.type == file_type
                and not os.path.lexists(candidate.path)
                and os.path.isdir(candidate.folder)
            ):
                gone.pop(candidate.path, None)
                return candidate.path
        return None

    def _type_of(self, path: str) -> str:
        parser = parser_for(Path(path))
        return parser.name if parser is not None else fallback_parser().name

    def _parse(self, path: str, data: bytes) -> _Outcome:
        """Parse and chunk; no embedding yet."""
        if not data:
            return _Outcome(Status.EMPTY, "empty file")
        parser = parser_for(Path(path))
        if parser is None:
            if looks_binary(data):
                return _Outcome(Status.SKIPPED, "binary content (not text)")
            parser = fallback_parser()
        try:
            parsed = parser.parse(data, Path(path))
        except ParseError as exc:
            return _Outcome(exc.status, str(exc))
        except Exception as exc:  # a parser bug or a library choking on odd input
            return _Outcome(Status.FAILED, f"parser error: {type(exc).__name__}: {exc}")
        warning = "; ".join(parsed.warnings) or None
        if not parsed.has_text:
            return _Outcome(Status.EMPTY, "no text", warning)
        return _Outcome(Status.INDEXED, None, warning, self.chunker.chunk(parsed.sections))

    def _embed(
        self,
        texts: dict[str, str],
        result: IngestResult,
        tracker: _Tracker,
        cancel: threading.Event,
    ) -> dict[str, np.ndarray]:
        """Vectors for ``texts`` (hash -> text), ``embed_batch`` texts per call."""
        dim = self.embedder.dimension
        items = list(texts.items())
        out: dict[str, np.ndarray] = {}
        batch = max(1, self.settings.embed_batch)
        for start in range(0, len(items), batch):
            if cancel.is_set():
                raise _Cancelled
            part = items[start : start + batch]
            embedded = np.asarray(self.embedder.embed([t for _, t in part]), dtype=np.float32)
            if embedded.shape != (len(part), dim):
                raise ValueError(f"embedder returned shape {embedded.shape}")
            for (h, _), vector in zip(part, embedded, strict=True):
                out[h] = vector
            result.chunks_embedded += len(part)
            tracker.chunks += len(part)
            tracker.emit("indexing")
        return out

    def _record(
        self,
        root: str,
        entry: FileEntry,
        digest: str | None,
        status: str,
        reason: str | None,
        file_type: str | None = None,
        warning: str | None = None,
        chunks: Sequence[Chunk] = (),
        vectors: np.ndarray | None = None,
    ) -> None:
        if file_type is None:
            parser = parser_for(Path(entry.path))
            file_type = parser.name if parser else ""
        record = DocumentRecord(
            path=entry.path,
            folder=root,
            content_hash=digest,
            size=entry.size,
            mtime_ns=entry.mtime_ns,
            type=file_type,
            status=status,
            error=reason,
            warning=warning,
        )
        self.store.write_document(record, list(chunks), vectors)
