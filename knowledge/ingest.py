"""Incremental indexing of watched folders.

A run has two phases. *Plan*: list and stat every file in scope and compare with the
documents table; a file whose size and mtime are unchanged is done without being opened.
*Work*: each remaining file is read once (at most the size limit) and hashed; same hash as
before -> only the timestamp is updated; same hash as a document that has disappeared -> a
rename, which keeps its chunks and vectors; otherwise it is parsed, checked for generated
content (minified code, encoded blobs), chunked and embedded (reusing the vector of any chunk
text already in the index). Small files are written together, a transaction per batch; a big
file is written in parts as it is chunked, so memory stays bounded and a kill or a cancel
keeps what was done. Documents whose files are gone are deleted last, after renames have
claimed theirs.

Every file's outcome is recorded on its row, with the reason when it is not (fully) indexed;
an exception in one file never stops the run. A cancel is seen within one embedding call or
one window of text anywhere; a kill at any point leaves a consistent index that the next run
completes.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from knowledge.boundary import read_regular
from knowledge.chunker import Chunk, Chunker
from knowledge.parsers import (
    ParseError,
    Section,
    fallback_parser,
    looks_binary,
    parser_for,
)
from knowledge.parsers.base import normalise_text, stop_when
from knowledge.scan import (
    FileEntry,
    IgnoreRules,
    scan_tree,
    stat_entry,
    storable_path,
    watched_root,
)
from knowledge.store import DocumentRecord, KnowledgeStore
from knowledge.tokens import PieceTokenizer
from knowledge.types import Document, IngestResult, Progress, Status
from models.embedding import Embedder

ProgressCallback = Callable[[Progress], None]
FileReader = Callable[[str], bytes]

# Parsers whose files can be cut at the size limit and still make sense (line-based text).
TRUNCATABLE_TYPES = frozenset({"text", "markdown", "code"})
# File names of generated content, skipped without being read.
GENERATED_NAMES = re.compile(
    r"(\.min\.(js|css|mjs)|\.bundle\.js|\.js\.map|\.css\.map|\.map"
    r"|^package-lock\.json|^yarn\.lock|^pnpm-lock\.yaml|^Cargo\.lock|^poetry\.lock)$",
    re.IGNORECASE,
)
_LONG_RUN = re.compile(r"\S{1024,}")
_SPACE = re.compile(r"\s")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_SAMPLE_CHARS = 1 << 20
EMBED_CALL_TOKENS = 512


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
    # Seconds one file may take; past it the file is kept as far as it got ("truncated")
    # and the next run carries on from there. 0: no limit.
    file_time_budget_s: float = 120.0
    # Chunks written per transaction for a big file (and the most held in memory).
    store_batch: int = 128
    # Skip minified code and encoded blobs (by name and by content).
    skip_generated: bool = True


@dataclass(frozen=True)
class Scope:
    """Index ``path`` (a folder or a file, present or gone) inside watched folder ``root``."""

    root: str
    path: str


class _Cancelled(Exception):
    pass


class _OutOfTime(Exception):
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
    more: Iterator[Chunk] | None = None  # chunks after the first batch (a big file)
    deadline: float | None = None  # when the file's time is up (moved on by a long parse)


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
    deadline: float | None = None


class _Tracker:
    """Turns counters into :class:`Progress` snapshots for the callback."""

    EVERY_S = 0.2  # at most this often while scanning or inside one big file

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.started = time.monotonic()
        self.work_started: float | None = None
        self.files_total = 0
        self.files_done = 0
        self.bytes_total = 0
        self.bytes_done = 0
        self.bytes_partial = 0  # of the big file in progress
        self.chunks = 0
        self.current: str | None = None
        self._last = 0.0

    def file_done(self, size: int) -> None:
        self.files_done += 1
        self.bytes_done += size
        self.bytes_partial = 0
        self.emit("indexing")

    def maybe_emit(self, phase: str) -> None:
        if time.monotonic() - self._last >= self.EVERY_S:
            self.emit(phase)

    def emit(self, phase: str) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        self._last = now
        work_elapsed = now - self.work_started if self.work_started else 0.0
        rate = self.chunks / work_elapsed if work_elapsed > 0 else 0.0
        eta = None
        done = self.bytes_done + self.bytes_partial
        if phase == "indexing" and done and work_elapsed > 0:
            eta = max(0.0, (self.bytes_total - done) * work_elapsed / done)
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


def generated_reason(text: str, file_type: str) -> str | None:
    """Why ``text`` looks machine-made (minified code, one-line data, an encoded blob), from
    its first MiB; None for text people write."""
    sample = text[:_SAMPLE_CHARS]
    n = len(sample)
    if n < 4096:
        return None
    if len(_NON_ASCII.findall(sample)) > n // 4:
        return None  # a script written without spaces (Chinese, Japanese, Thai ...)
    long_runs = sum(m.end() - m.start() for m in _LONG_RUN.finditer(sample))
    if long_runs > n // 2:
        return "encoded data (runs of thousands of characters without a space)"
    lines = sample.count("\n") + 1
    average = n / lines
    if average < 500:
        return None
    spaces = len(_SPACE.findall(sample)) / n
    # Minified code and one-line data have very long lines and almost no spaces; prose
    # written one paragraph per line has ~15% spaces.
    long_line, few_spaces = (500, 0.08) if file_type == "code" else (2000, 0.02)
    if average > long_line and spaces < few_spaces:
        return (
            f"minified or generated (lines of {average:,.0f} characters on average, "
            f"{spaces:.0%} spaces)"
        )
    return None


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
        pieces = embedder.token_pieces if isinstance(embedder, PieceTokenizer) else None
        self.chunker = Chunker(
            embedder.count_tokens, limit, self.settings.overlap_tokens, token_pieces=pieces
        )
        self.reader = reader
        self.clock: Callable[[], float] = time.monotonic  # for the per-file time budget
        self._lock = threading.Lock()  # one run at a time per indexer
        self._db_moved: dict[str, list[Document]] = {}  # per run: see _moved_from
        self._tokens: dict[str, int] = {}  # text hash -> tokens, for texts awaiting a vector

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
            self._db_moved = {}
            self._tokens = {}
            try:
                self._run(scopes, result, tracker, cancel)
            except _Cancelled:
                result.cancelled = True
            if (result.added or result.updated) and not result.cancelled:
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
        entries, known, scanned_roots = self._plan(scopes, result, tracker, cancel)
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
        pending_since = 0.0
        for root, entry in work:  # in path order
            if cancel.is_set():
                raise _Cancelled
            tracker.current = entry.path
            tracker.maybe_emit("indexing")
            job = self._prepare(
                root, entry, known.get(entry.path), gone, gone_by_hash, result, cancel
            )
            if job is None:  # settled without embedding anything
                tracker.file_done(entry.size)
                continue
            if job.outcome.more is not None:  # a big file: written in parts, now
                self._flush(pending, result, tracker, cancel)
                pending = []
                self._stream(job, result, tracker, cancel)
                continue
            if not pending:
                pending_since = time.monotonic()
            pending.append(job)
            # Flush when a call's worth of texts is waiting, or after a second (progress
            # and search stay current while many small files are read).
            if (
                sum(len(j.missing) for j in pending) >= self.settings.embed_batch
                or time.monotonic() - pending_since > 1.0
            ):
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
        self,
        scopes: Sequence[Scope],
        result: IngestResult,
        tracker: _Tracker,
        cancel: threading.Event,
    ) -> tuple[dict[str, tuple[str, FileEntry]], dict[str, Document], list[str]]:
        rules = self.settings.rules
        entries: dict[str, tuple[str, FileEntry]] = {}
        known: dict[str, Document] = {}
        scanned_roots: list[str] = []
        all_roots = sorted(set(self.store.folder_paths()) | {s.root for s in scopes})

        def mine(root: str, path: str) -> bool:
            # With nested watched folders a file belongs to the deepest one only.
            return watched_root(path, all_roots) == root

        def found(n: int) -> None:
            if cancel.is_set():
                raise _Cancelled
            tracker.files_total = len(entries) + n
            tracker.emit("scanning")

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
                scan = scan_tree(path, root, rules, on_found=found)
                for entry in scan.files:
                    if mine(root, entry.path):
                        entries[entry.path] = (root, entry)
                for skipped_path, reason in scan.skipped_dirs:
                    result.note_problem(storable_path(skipped_path), Status.SKIPPED, reason)
            elif not self._inside_ignored_folder(root, path) and path not in rules.excluded_paths:
                single = stat_entry(path, rules, rules.path_reason(root, path), root)
                if single is not None:
                    entries[single.path] = (root, single)
            shown = storable_path(path)
            doc = self.store.document(shown)
            if doc is not None and mine(root, shown):
                known[shown] = doc
            known.update(
                (p, d) for p, d in self.store.documents_under(shown).items() if mine(root, p)
            )
            tracker.files_total = len(entries)
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
        """Handle what needs no reading: stat errors, rules, unchanged files."""
        result.seen += 1
        if entry.error:
            if not (doc and doc.status == Status.FAILED and doc.error == entry.error):
                self._record(root, entry, None, Status.FAILED, entry.error)
            result.failed += 1
            result.note_problem(entry.path, Status.FAILED, entry.error)
            return True
        skip = entry.skip_reason or self._skip_by_name_or_size(entry)
        if skip:
            if not (
                doc
                and doc.status == Status.SKIPPED
                and doc.error == skip
                and doc.size == entry.size
                and doc.mtime_ns == entry.mtime_ns
            ):
                self._record(root, entry, None, Status.SKIPPED, skip)
            result.skipped += 1
            result.note_problem(entry.path, Status.SKIPPED, skip)
            return True
        if (
            doc is not None
            and doc.content_hash is not None
            and doc.folder == root
            and doc.size == entry.size
            and doc.mtime_ns == entry.mtime_ns
        ):
            # A problem is kept until the file changes, and still counted as one.
            if doc.status == Status.SKIPPED:
                result.skipped += 1
            elif doc.status in (Status.FAILED, Status.NO_TEXT, Status.ENCRYPTED):
                result.failed += 1
            else:
                result.unchanged += 1
            if doc.status == Status.TRUNCATED:
                result.truncated += 1
            if doc.status in Status.PROBLEMS:
                result.note_problem(entry.path, doc.status, doc.error or "")
            return True
        return False

    def _skip_by_name_or_size(self, entry: FileEntry) -> str | None:
        name = os.path.basename(entry.path)
        if self.settings.skip_generated and GENERATED_NAMES.search(name):
            return "minified or generated (by its name)"
        too_big = entry.size > self.settings.rules.max_file_bytes
        if too_big and self._type_of(entry.path) not in TRUNCATABLE_TYPES:
            return self.settings.rules.size_reason(entry.size)
        return None

    # -- one file ---------------------------------------------------------------------------

    def _read(self, entry: FileEntry) -> tuple[bytes, bool]:
        """The file's bytes up to the size limit (cut at a line end), and whether it was cut."""
        limit = self.settings.rules.max_file_bytes
        if self.reader is read_file:
            data, cut = read_regular(entry.source, limit)
        else:
            data = self.reader(entry.source)
            cut = len(data) > limit
            data = data[:limit]
        if cut:
            newline = data.rfind(b"\n", max(0, len(data) - (1 << 20)))
            if newline > 0:
                data = data[: newline + 1]
            else:  # do not split a UTF-8 sequence
                end = len(data)
                while end > 0 and len(data) - end < 4 and data[end - 1] & 0xC0 == 0x80:
                    end -= 1
                if end > 0 and data[end - 1] >= 0xC0:
                    end -= 1
                data = data[:end]
        return data, cut

    def _prepare(
        self,
        root: str,
        entry: FileEntry,
        doc: Document | None,
        gone: dict[str, Document],
        gone_by_hash: dict[str, list[Document]],
        result: IngestResult,
        cancel: threading.Event,
    ) -> _Job | None:
        """Read, hash and parse one file. Returns a job when new chunk texts need vectors;
        everything else (unchanged, moved, failed, empty ...) is written here and now."""
        path = entry.path
        budget = self.settings.file_time_budget_s
        deadline = self.clock() + budget if budget > 0 else None
        try:
            data, cut = self._read(entry)
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
        outcome = self._parse(path, data, file_type, cut, entry.size, cancel, deadline)
        del data
        job = _Job(
            root, entry, doc is None, digest, file_type, outcome, {}, outcome.deadline or deadline
        )
        if outcome.status in (Status.INDEXED, Status.TRUNCATED):
            self._fill_known(job)
            if job.missing or outcome.more is not None:
                return job
            result.chunks_reused += len(outcome.chunks)
        self._finish(job, result)
        return None

    def _fill_known(self, job: _Job) -> None:
        """Vectors already in the index for this batch of chunks; the rest go to missing."""
        outcome = job.outcome
        dim = self.embedder.dimension
        hashes = [c.text_hash for c in outcome.chunks]
        known = self.store.known_vectors(hashes, dim)
        outcome.vectors = np.zeros((len(hashes), dim), dtype=np.float32)
        job.missing = {}
        for i, (chunk, h) in enumerate(zip(outcome.chunks, hashes, strict=True)):
            if h in known:
                outcome.vectors[i] = known[h]
            else:
                job.missing[h] = chunk.embed_text
                self._tokens[h] = chunk.token_count

    def _flush(
        self,
        jobs: list[_Job],
        result: IngestResult,
        tracker: _Tracker,
        cancel: threading.Event,
    ) -> None:
        """Embed the new chunk texts of ``jobs`` together, then write the files in one
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
        result.chunks_reused += sum(len(j.outcome.chunks) for j in jobs) - len(texts)
        for job in jobs:
            outcome = job.outcome
            assert outcome.vectors is not None
            for i, chunk in enumerate(outcome.chunks):
                if chunk.text_hash in job.missing:
                    outcome.vectors[i] = vectors[chunk.text_hash]
        self._finish_many(jobs, result)
        for job in jobs:
            tracker.current = job.entry.path
            tracker.file_done(job.entry.size)

    def _stream(
        self, job: _Job, result: IngestResult, tracker: _Tracker, cancel: threading.Event
    ) -> None:
        """Write a big file in parts: each batch of chunks embedded and committed before the
        next is made. A cancel stops between batches (the row stays PARTIAL and the next run
        carries on); the time budget ends the file as TRUNCATED."""
        outcome, entry = job.outcome, job.entry
        record = self._record_of(job, Status.PARTIAL, "being indexed", digest=None)
        doc_id, old_max = self.store.start_document(record)
        total = 0
        out_of_time = False
        chunks = outcome.chunks
        more = outcome.more
        assert more is not None
        text_chars = max(1, getattr(more, "text_chars", 1))
        failure: str | None = None
        while chunks:
            try:
                vectors = self._vectors_for(job, result, tracker, cancel)
            except _Cancelled:
                raise
            except Exception as exc:  # the model, not the file: keep what is done, retry
                failure = f"embedding failed: {type(exc).__name__}: {exc}"
                break
            self.store.append_chunks(doc_id, record, chunks, vectors)
            total += len(chunks)
            tracker.bytes_partial = int(entry.size * min(1.0, chunks[-1].end_char / text_chars))
            tracker.maybe_emit("indexing")
            if cancel.is_set():
                raise _Cancelled
            try:
                chunks = list(itertools.islice(more, self.settings.store_batch))
            except _OutOfTime:
                chunks = []
                out_of_time = True
            if chunks and job.deadline is not None and self.clock() > job.deadline:
                chunks, out_of_time = [], True
            if chunks:
                outcome.chunks = chunks
                self._fill_known(job)
        status, reason = outcome.status, outcome.reason
        digest: str | None = job.digest
        if failure:
            status, reason, digest = Status.FAILED, failure, None
        elif out_of_time:
            status = Status.TRUNCATED
            reason = (
                f"time budget of {self.settings.file_time_budget_s:g} s used up after "
                f"{total} chunks; the next run carries on"
            )
            digest = None  # not done: the next run goes on (reusing these vectors)
        final = self._record_of(job, status, reason, digest=digest)
        self.store.finish_document(doc_id, final, old_max)
        self._count(job, status, reason, result)
        tracker.file_done(entry.size)

    def _vectors_for(
        self, job: _Job, result: IngestResult, tracker: _Tracker, cancel: threading.Event
    ) -> np.ndarray:
        outcome = job.outcome
        assert outcome.vectors is not None
        if job.missing:
            vectors = self._embed(job.missing, result, tracker, cancel)
            for i, chunk in enumerate(outcome.chunks):
                if chunk.text_hash in job.missing:
                    outcome.vectors[i] = vectors[chunk.text_hash]
        result.chunks_reused += len(outcome.chunks) - len(job.missing)
        return outcome.vectors

    def _record_of(
        self, job: _Job, status: str, reason: str | None, digest: str | None
    ) -> DocumentRecord:
        entry = job.entry
        return DocumentRecord(
            path=entry.path,
            folder=job.root,
            content_hash=digest,
            size=entry.size,
            mtime_ns=entry.mtime_ns,
            type=job.file_type,
            status=status,
            error=reason,
            warning=job.outcome.warning,
        )

    def _finish(self, job: _Job, result: IngestResult) -> None:
        """Write one file's outcome (one transaction) and count it."""
        self._finish_many([job], result)

    def _finish_many(self, jobs: list[_Job], result: IngestResult) -> None:
        items = []
        for job in jobs:
            out = job.outcome
            # A failure that may pass (the model, not the file) is stored without the hash,
            # so the unchanged file is tried again next run.
            record = self._record_of(job, out.status, out.reason, None if out.retry else job.digest)
            items.append((record, out.chunks, out.vectors))
        self.store.write_documents(items)
        for job in jobs:
            self._count(job, job.outcome.status, job.outcome.reason, result)

    def _count(self, job: _Job, status: str, reason: str | None, result: IngestResult) -> None:
        path = job.entry.path
        if status in (Status.INDEXED, Status.EMPTY, Status.TRUNCATED):
            if job.is_new:
                result.added += 1
            else:
                result.updated += 1
            if status == Status.TRUNCATED:
                result.truncated += 1
                result.note_problem(path, status, reason or "")
        elif status == Status.SKIPPED:
            result.skipped += 1
            result.note_problem(path, status, reason or "")
        else:
            result.failed += 1
            result.note_problem(path, status, reason or "")

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
        The second look-up is made once per content per run, so many files with the same
        content (20,000 copies of a template) cost linear time, not quadratic.
        """
        candidates = gone_by_hash.get(digest)
        while candidates:
            candidate = candidates.pop()
            if candidate.type == file_type and candidate.path in gone:
                del gone[candidate.path]
                return candidate.path
        moved = self._db_moved.get(digest)
        if moved is None:
            moved = [
                d
                for d in self.store.documents_with_hash(digest)
                if not os.path.lexists(d.path) and os.path.isdir(d.folder)
            ]
            self._db_moved[digest] = moved
        for i, candidate in enumerate(moved):
            if candidate.type == file_type:
                del moved[i]
                gone.pop(candidate.path, None)
                return candidate.path
        return None

    def _type_of(self, path: str) -> str:
        parser = parser_for(Path(path))
        return parser.name if parser is not None else fallback_parser().name

    def _parse(
        self,
        path: str,
        data: bytes,
        file_type: str,
        cut: bool,
        size: int,
        cancel: threading.Event,
        deadline: float | None,
    ) -> _Outcome:
        """Parse and start chunking; no embedding yet. A file with more chunks than one
        batch comes back with the rest still to be made (``more``)."""
        if not data:
            return _Outcome(Status.EMPTY, "empty file")
        parser = parser_for(Path(path))
        if parser is None:
            if looks_binary(data):
                return _Outcome(Status.SKIPPED, "binary content (not text)")
            parser = fallback_parser()

        def stop() -> bool:
            return cancel.is_set() or (deadline is not None and self.clock() > deadline)

        try:
            with stop_when(stop):
                parsed = parser.parse(data, Path(path))
        except ParseError as exc:
            return _Outcome(exc.status, str(exc))
        except Exception as exc:  # a parser bug or a library choking on odd input
            return _Outcome(Status.FAILED, f"parser error: {type(exc).__name__}: {exc}")
        if cancel.is_set():
            raise _Cancelled
        warning = "; ".join(parsed.warnings) or None
        if not parsed.has_text:
            return _Outcome(Status.EMPTY, "no text", warning)
        sections = [
            Section(normalise_text(s.text), normalise_text(s.heading), s.page)
            for s in parsed.sections
        ]
        del parsed
        if self.settings.skip_generated and file_type != "pdf":
            why = generated_reason(sections[0].text if len(sections) == 1 else
                                   "".join(s.text for s in sections[:50]), file_type)  # fmt: skip
            if why:
                return _Outcome(Status.SKIPPED, why, warning)
        status, reason, retry = Status.INDEXED, None, False
        if cut:
            status = Status.TRUNCATED
            limit = self.settings.rules.max_file_bytes
            reason = (
                f"truncated at {limit / 1e6:.0f} MB (the file is {size / 1e6:.0f} MB; "
                "raise [knowledge] max_file_mb to index all of it)"
            )
        elif any(w.startswith("stopped after page") for w in parsed_warnings(warning)):
            # Pages cannot be resumed: kept as far as it got until the file changes. The
            # pages read get their own budget for chunking and embedding.
            status = Status.TRUNCATED
            reason = (
                f"time budget of {self.settings.file_time_budget_s:g} s used up while "
                "reading the pages"
            )
            if deadline is not None:
                deadline = self.clock() + self.settings.file_time_budget_s

        def checkpoint() -> None:
            if cancel.is_set():
                raise _Cancelled
            if deadline is not None and self.clock() > deadline:
                raise _OutOfTime

        chunks = _ChunkStream(self.chunker.iter_chunks(sections, checkpoint), sections)
        first: list[Chunk] = []
        try:
            first.extend(itertools.islice(chunks, self.settings.store_batch))
            more = None if chunks.exhausted() else chunks
        except _OutOfTime:
            more = None
            status, retry = Status.TRUNCATED, True
            reason = (
                f"time budget of {self.settings.file_time_budget_s:g} s used up after "
                f"{len(first)} chunks; the next run carries on"
            )
        if not first:
            return _Outcome(Status.EMPTY if not retry else Status.FAILED, reason or "no text",
                            warning, retry=retry)  # fmt: skip
        return _Outcome(status, reason, warning, first, retry=retry, more=more, deadline=deadline)

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
        for part in self._calls(items):
            if cancel.is_set():
                raise _Cancelled
            embedded = np.asarray(self.embedder.embed([t for _, t in part]), dtype=np.float32)
            if embedded.shape != (len(part), dim):
                raise ValueError(f"embedder returned shape {embedded.shape}")
            for (h, _), vector in zip(part, embedded, strict=True):
                out[h] = vector
            result.chunks_embedded += len(part)
            tracker.chunks += len(part)
            tracker.maybe_emit("indexing")
        return out

    def _calls(self, items: list[tuple[str, str]]) -> Iterator[list[tuple[str, str]]]:
        """Texts per embed call: up to ``embed_batch`` texts and ``EMBED_CALL_TOKENS`` tokens
        (one longer text goes alone). A cancel waits for the call in progress (native code
        cannot be interrupted), so a call is kept short: ~500 tokens is 0.05-0.15 s of MiniLM
        on two cores, and as fast in all as bigger calls (the embedder decodes at most 256
        tokens at a time anyway)."""
        part: list[tuple[str, str]] = []
        tokens = 0
        for h, text in items:
            n = self._tokens.pop(h, None) or len(text) // 3 + 2
            if part and (len(part) >= self.settings.embed_batch or tokens + n > EMBED_CALL_TOKENS):
                yield part
                part, tokens = [], 0
            part.append((h, text))
            tokens += n
        if part:
            yield part

    def _record(
        self,
        root: str,
        entry: FileEntry,
        digest: str | None,
        status: str,
        reason: str | None,
    ) -> None:
        parser = parser_for(Path(entry.path))
        record = DocumentRecord(
            path=entry.path,
            folder=root,
            content_hash=digest,
            size=entry.size,
            mtime_ns=entry.mtime_ns,
            type=parser.name if parser else "",
            status=status,
            error=reason,
        )
        self.store.write_document(record, [], None)


def parsed_warnings(warning: str | None) -> list[str]:
    return warning.split("; ") if warning else []


class _ChunkStream:
    """An iterator of chunks that can tell whether it has more without losing one."""

    def __init__(self, chunks: Iterator[Chunk], sections: list[Section]) -> None:
        self._chunks = chunks
        self._peeked: list[Chunk] = []
        self.text_chars = sum(len(s.text) for s in sections)

    def __iter__(self) -> _ChunkStream:
        return self

    def __next__(self) -> Chunk:
        if self._peeked:
            return self._peeked.pop()
        return next(self._chunks)

    def exhausted(self) -> bool:
        if self._peeked:
            return False
        try:
            self._peeked.append(next(self._chunks))
        except StopIteration:
            return True
        return False
