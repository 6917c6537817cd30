"""Value types of the knowledge base: what callers get back and can serialise."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


class Status:
    """A document's state (``documents.status``)."""

    INDEXED = "indexed"  # chunks, vectors and FTS rows are present
    EMPTY = "empty"  # read fine, but there is no text (zero bytes, whitespace only)
    NO_TEXT = "no_text"  # a PDF without a text layer (a scan): needs OCR, which we do not do
    ENCRYPTED = "encrypted"  # a password-protected PDF
    SKIPPED = "skipped"  # left out by a rule (binary, minified, hidden, outside ...)
    FAILED = "failed"  # reading or parsing raised; ``error`` says what
    # Indexed in part: past the size limit, or the time budget ran out (``error`` says which;
    # a file stopped by the time budget carries on from where it was on the next run).
    TRUNCATED = "truncated"
    # Being written in parts (a big file), or its run was interrupted: the chunks so far are
    # searchable and the next run carries on, reusing their vectors.
    PARTIAL = "partial"

    ALL = (INDEXED, EMPTY, NO_TEXT, ENCRYPTED, SKIPPED, FAILED, TRUNCATED, PARTIAL)
    # Worth showing the user: not (fully) indexed, and why.
    PROBLEMS = (FAILED, SKIPPED, NO_TEXT, ENCRYPTED, TRUNCATED, PARTIAL)


def _to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


@dataclass(frozen=True)
class Document:
    id: int
    path: str
    folder: str
    content_hash: str | None
    size: int
    mtime_ns: int
    type: str
    status: str
    error: str | None = None
    warning: str | None = None
    chunk_count: int = 0
    indexed_at: float | None = None

    @classmethod
    def from_row(cls, row: Any) -> Document:
        return cls(
            id=row["id"],
            path=row["path"],
            folder=row["folder"],
            content_hash=row["content_hash"],
            size=row["size"],
            mtime_ns=row["mtime_ns"],
            type=row["type"],
            status=row["status"],
            error=row["error"],
            warning=row["warning"],
            chunk_count=row["chunk_count"],
            indexed_at=row["indexed_at"],
        )

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Document:
        return cls(**data)


@dataclass(frozen=True)
class Hit:
    """One search result: a chunk, where it comes from, and why it ranked."""

    chunk_id: int
    document_id: int
    path: str
    folder: str
    type: str
    page: int | None
    heading: str
    snippet: str
    text: str
    score: float  # fused (weighted reciprocal rank fusion); higher is better
    vector_score: float | None = None  # cosine similarity, when the vector side found it
    bm25_score: float | None = None  # FTS5 bm25 (lower is better, as SQLite reports it)
    vector_rank: int | None = None  # 1-based rank on each side, None when absent
    bm25_rank: int | None = None

    @property
    def source(self) -> str:
        """``path`` plus page or heading: how an answer cites this hit."""
        if self.page is not None:
            return f"{self.path} (page {self.page})"
        if self.heading:
            return f"{self.path} ({self.heading})"
        return self.path

    def to_dict(self) -> dict[str, Any]:
        data = _to_dict(self)
        data["source"] = self.source
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hit:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class SearchFilters:
    """Restrict a search. ``folder`` is a watched folder (or any folder under one);
    ``types`` are document types (``markdown``, ``pdf`` ...); ``path_glob`` is matched with
    SQLite GLOB against the absolute path (``*`` crosses ``/``)."""

    folder: str | None = None
    types: tuple[str, ...] = ()
    path_glob: str | None = None

    @property
    def empty(self) -> bool:
        return self.folder is None and not self.types and self.path_glob is None

    def to_dict(self) -> dict[str, Any]:
        data = _to_dict(self)
        data["types"] = list(self.types)
        return data


@dataclass(frozen=True)
class Progress:
    """A snapshot of an indexing run, cheap to make and safe to hand to another thread."""

    phase: str  # scanning | indexing | done | cancelled
    files_done: int
    files_total: int
    chunks_embedded: int
    chunks_per_s: float
    eta_s: float | None
    current_file: str | None
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)


@dataclass(frozen=True)
class FileProblem:
    """A file that was not indexed, and why."""

    path: str
    status: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)


@dataclass
class IngestResult:
    """Counts of one indexing run. ``problems`` lists failed and skipped files (capped)."""

    seen: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    renamed: int = 0
    deleted: int = 0
    failed: int = 0
    skipped: int = 0
    truncated: int = 0  # counted among added/updated too: indexed, but only in part
    chunks_embedded: int = 0
    chunks_reused: int = 0  # chunks whose text was already embedded (moved, copied, edited)
    seconds: float = 0.0
    cancelled: bool = False
    offline_folders: list[str] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)

    MAX_PROBLEMS = 200

    def note_problem(self, path: str, status: str, reason: str) -> None:
        if len(self.problems) < self.MAX_PROBLEMS:
            self.problems.append(FileProblem(path, status, reason))

    def merge(self, other: IngestResult) -> None:
        for name in (
            "seen",
            "added",
            "updated",
            "unchanged",
            "renamed",
            "deleted",
            "failed",
            "skipped",
            "truncated",
            "chunks_embedded",
            "chunks_reused",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.seconds += other.seconds
        self.cancelled = self.cancelled or other.cancelled
        self.offline_folders.extend(
            f for f in other.offline_folders if f not in self.offline_folders
        )
        room = self.MAX_PROBLEMS - len(self.problems)
        self.problems.extend(other.problems[: max(room, 0)])

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.renamed or self.deleted)

    def to_dict(self) -> dict[str, Any]:
        data = _to_dict(self)
        data["seconds"] = round(self.seconds, 3)
        return data


@dataclass(frozen=True)
class FolderInfo:
    path: str
    status: str  # online | offline
    documents: int
    chunks: int
    last_scan_at: float | None
    problems: int = 0  # files not (fully) indexed; see KnowledgeBase.problems
    note: str | None = None  # why offline, when it is

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)


@dataclass(frozen=True)
class IndexState:
    """Which embedding model the vectors were made with."""

    model_id: str
    dimension: int

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)


@dataclass(frozen=True)
class RebuildPlan:
    """What changing the embedding model costs: every chunk is embedded again."""

    old_model_id: str
    new_model_id: str
    documents: int
    chunks: int
    estimated_seconds: float | None

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)


@dataclass(frozen=True)
class IndexRun:
    """One indexing run as recorded in knowledge.db (``jackdaw folders status``)."""

    id: int
    pid: int
    started_at: float
    finished_at: float | None
    status: str  # running | done | cancelled | failed | interrupted
    scope: str  # "all" or the paths given
    summary: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)
