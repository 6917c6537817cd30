"""``KnowledgeStore``: the rows of knowledge.db, each change in one transaction.

A document's row, its chunks, their FTS rows (kept by triggers) and their vector rows are
written or removed together, so a crash at any point leaves either the old state or the new
state of that document, never a mixture.

One connection is shared by the indexer (writes) and searches (reads) of one process; an
``RLock`` serialises them. Other processes (the CLI while the GUI runs) rely on WAL and the
busy timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from knowledge.chunker import Chunk
from knowledge.coarse import CoarseIndex
from knowledge.db import Connection, transaction
from knowledge.types import Document, FolderInfo, IndexRun, IndexState, Status
from knowledge.vectors import from_blobs, sign_bits, to_blob

VEC_TABLE = "vec_chunks"
_BATCH = 500  # keeps IN (...) lists well under SQLite's variable limit
# Re-derive the sign-bit center while the index is small and growing fast (see vectors.py).
RECENTER_GROWTH = 4
RECENTER_MAX_SAMPLE = 20_000


@dataclass(frozen=True)
class DocumentRecord:
    """What the indexer knows about a file, to be written as its ``documents`` row."""

    path: str
    folder: str
    content_hash: str | None
    size: int
    mtime_ns: int
    type: str
    status: str
    error: str | None = None
    warning: str | None = None


def _under(prefix: str) -> tuple[str, str]:
    """Bounds for ``path >= lo AND path < hi``: every path strictly inside folder ``prefix``."""
    base = prefix.rstrip("/") + "/"
    return base, base[:-1] + chr(ord("/") + 1)


class KnowledgeStore:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = threading.RLock()
        self._center: np.ndarray | None = None
        self._center_loaded = False
        self._coarse: CoarseIndex | None = None
        # Edits to the in-memory coarse index, applied only once their transaction commits.
        self._changes: list[Callable[[CoarseIndex], None]] = []

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.lock:
            self._changes = []
            try:
                with transaction(self.conn) as conn:
                    yield conn
            except BaseException:
                self._changes = []
                raise
            if self._coarse is not None:
                for change in self._changes:
                    change(self._coarse)
            self._changes = []

    def _chunk_ids(self, conn: Connection, where: str, args: tuple[Any, ...]) -> list[int]:
        return [
            r[0]
            for r in conn.execute(
                f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id WHERE {where}",
                args,
            )
        ]

    def _note_removed(self, ids: list[int]) -> None:
        if ids:
            self._changes.append(lambda coarse: coarse.remove(ids))

    def coarse_index(self) -> CoarseIndex | None:
        """The in-memory codes, loaded on first use and reloaded after another process
        wrote to the DB. None before any vectors exist."""
        state = self.index_state()
        if state is None:
            return None
        with self.lock:
            version = self.conn.execute("PRAGMA data_version").fetchone()[0]
            coarse = self._coarse
            if coarse is None or coarse.data_version != version:
                coarse = CoarseIndex(state.dimension)
                coarse.load(
                    (
                        (r[0], r[1], r[2], r[3])
                        for r in self.conn.execute(
                            "SELECT c.id, c.embedding, d.folder, d.type FROM chunks c "
                            "JOIN documents d ON d.id = c.document_id"
                        )
                    ),
                    self.center(),
                )
                coarse.data_version = version
                self._coarse = coarse
            return coarse

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    def reopen(self, conn: Connection) -> None:
        """Switch to a new connection (after the DB file was replaced by a rebuild)."""
        with self.lock:
            self.conn = conn
            self._center, self._center_loaded = None, False
            self._coarse = None

    # -- index state (which model made the vectors) -----------------------------------

    def _state(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM index_state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def index_state(self) -> IndexState | None:
        with self.lock:
            model_id = self._state("model_id")
            dimension = self._state("dimension")
        if model_id is None or dimension is None:
            return None
        return IndexState(model_id=model_id, dimension=int(dimension))

    def set_index_state(self, model_id: str, dimension: int) -> None:
        """Create the vector table for this model. Refuses to overwrite another model's."""
        if dimension % 8:
            raise ValueError(f"embedding dimension {dimension} is not a multiple of 8")
        with self._write() as conn:
            current = self._state("model_id")
            if current is not None:
                if current != model_id:
                    raise ValueError(f"index holds vectors of {current}, not {model_id}")
                return
            conn.execute(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS {VEC_TABLE} USING vec0("
                f"chunk_id INTEGER PRIMARY KEY, coarse bit[{dimension}], "
                "folder TEXT, type TEXT)"
            )
            # Chunks go by FK cascade when their document goes; their vector rows follow.
            conn.execute(
                "CREATE TRIGGER IF NOT EXISTS chunks_vec_delete AFTER DELETE ON chunks BEGIN "
                f"DELETE FROM {VEC_TABLE} WHERE chunk_id = old.id; END"
            )
            conn.executemany(
                "INSERT OR REPLACE INTO index_state (key, value) VALUES (?, ?)",
                [
                    ("model_id", model_id),
                    ("dimension", str(dimension)),
                    ("created_at", str(time.time())),
                ],
            )

    def drop_vectors(self) -> None:
        """Forget the vector table and which model made it (only sensible when empty)."""
        with self._write() as conn:
            conn.execute("DROP TRIGGER IF EXISTS chunks_vec_delete")
            conn.execute(f"DROP TABLE IF EXISTS {VEC_TABLE}")
            conn.execute(
                "DELETE FROM index_state WHERE key IN "
                "('model_id', 'dimension', 'created_at', 'center', 'center_sample')"
            )
            self._center, self._center_loaded, self._coarse = None, False, None

    def center(self) -> np.ndarray | None:
        with self.lock:
            if not self._center_loaded:
                raw = self.conn.execute(
                    "SELECT value FROM index_state WHERE key = 'center'"
                ).fetchone()
                self._center = (
                    np.frombuffer(bytes.fromhex(raw[0]), dtype=np.float32) if raw else None
                )
                self._center_loaded = True
            return self._center

    # -- folders ------------------------------------------------------------------------

    def add_folder(self, path: str) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO folders (path, status, added_at) VALUES (?, 'online', ?) "
                "ON CONFLICT(path) DO NOTHING",
                (path, time.time()),
            )

    def remove_folder(self, path: str) -> int:
        """Forget a folder and every document indexed from it; return how many."""
        with self._write() as conn:
            self._note_removed(self._chunk_ids(conn, "d.folder = ?", (path,)))
            n = conn.execute("DELETE FROM documents WHERE folder = ?", (path,)).rowcount
            conn.execute("DELETE FROM folders WHERE path = ?", (path,))
        return n

    def set_folder_status(self, path: str, status: str, note: str | None = None) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE folders SET status = ?, note = ? WHERE path = ?", (status, note, path)
            )

    def mark_scanned(self, path: str) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE folders SET last_scan_at = ?, status = 'online', note = NULL "
                "WHERE path = ?",
                (time.time(), path),
            )

    def folder_paths(self) -> list[str]:
        with self.lock:
            return [r[0] for r in self.conn.execute("SELECT path FROM folders ORDER BY path")]

    def folders(self) -> list[FolderInfo]:
        marks = ",".join("?" * len(Status.PROBLEMS))
        with self.lock:
            rows = self.conn.execute(
                f"""
                SELECT f.path, f.status, f.last_scan_at, f.note,
                       (SELECT count(*) FROM documents d WHERE d.folder = f.path) AS documents,
                       (SELECT coalesce(sum(chunk_count), 0) FROM documents d
                         WHERE d.folder = f.path) AS chunks,
                       (SELECT count(*) FROM documents d WHERE d.folder = f.path
                         AND d.status IN ({marks})) AS problems
                FROM folders f ORDER BY f.path
                """,
                Status.PROBLEMS,
            ).fetchall()
        return [
            FolderInfo(
                r["path"],
                r["status"],
                r["documents"],
                r["chunks"],
                r["last_scan_at"],
                r["problems"],
                r["note"],
            )
            for r in rows
        ]

    def problems(self, folder: str | None = None, limit: int | None = None) -> list[Document]:
        """Documents not (fully) indexed, with why: kept until their file changes."""
        marks = ",".join("?" * len(Status.PROBLEMS))
        sql = f"SELECT * FROM documents WHERE status IN ({marks})"
        args: list[Any] = list(Status.PROBLEMS)
        if folder is not None:
            sql += " AND folder = ?"
            args.append(folder)
        sql += " ORDER BY path"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self.lock:
            return [Document.from_row(r) for r in self.conn.execute(sql, args)]

    # -- indexing runs --------------------------------------------------------------------

    def start_run(self, pid: int, scope: str) -> int:
        with self._write() as conn:
            row = conn.execute(
                "INSERT INTO index_runs (pid, started_at, status, scope) "
                "VALUES (?, ?, 'running', ?) RETURNING id",
                (pid, time.time(), scope),
            ).fetchone()
        return int(row[0])

    def finish_run(self, run_id: int, status: str, summary: str | None) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE index_runs SET status = ?, finished_at = ?, summary = ? WHERE id = ?",
                (status, time.time(), summary, run_id),
            )
            # Keep the recent history only.
            conn.execute(
                "DELETE FROM index_runs WHERE id <= (SELECT max(id) FROM index_runs) - 100"
            )

    def heal_runs(self, alive: Callable[[int], bool]) -> int:
        """Mark runs left 'running' by a process that is gone as interrupted."""
        with self.lock:
            rows = self.conn.execute(
                "SELECT id, pid FROM index_runs WHERE status = 'running'"
            ).fetchall()
        stale = [r[0] for r in rows if not alive(r[1])]
        if stale:
            with self._write() as conn:
                conn.executemany(
                    "UPDATE index_runs SET status = 'interrupted', "
                    "summary = coalesce(summary, 'the process ended before the run did') "
                    "WHERE id = ? AND status = 'running'",
                    [(i,) for i in stale],
                )
        return len(stale)

    def runs(self, limit: int = 10) -> list[IndexRun]:
        with self.lock:
            rows = self.conn.execute(
                "SELECT * FROM index_runs ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [
            IndexRun(
                r["id"],
                r["pid"],
                r["started_at"],
                r["finished_at"],
                r["status"],
                r["scope"],
                r["summary"],
            )
            for r in rows
        ]

    # -- documents ----------------------------------------------------------------------

    def document(self, path: str) -> Document | None:
        with self.lock:
            row = self.conn.execute("SELECT * FROM documents WHERE path = ?", (path,)).fetchone()
        return Document.from_row(row) if row else None

    def documents_under(self, folder: str) -> dict[str, Document]:
        """Every document whose path lies inside ``folder`` (at any depth), by path."""
        lo, hi = _under(folder)
        with self.lock:
            rows = self.conn.execute(
                "SELECT * FROM documents WHERE path >= ? AND path < ?", (lo, hi)
            ).fetchall()
        return {r["path"]: Document.from_row(r) for r in rows}

    def documents_with_hash(self, content_hash: str) -> list[Document]:
        with self.lock:
            rows = self.conn.execute(
                "SELECT * FROM documents WHERE content_hash = ?", (content_hash,)
            ).fetchall()
        return [Document.from_row(r) for r in rows]

    def documents(self, status: str | None = None) -> list[Document]:
        sql = "SELECT * FROM documents"
        args: tuple[Any, ...] = ()
        if status:
            sql += " WHERE status = ?"
            args = (status,)
        with self.lock:
            return [Document.from_row(r) for r in self.conn.execute(sql + " ORDER BY path", args)]

    def known_vectors(self, text_hashes: Iterable[str], dimension: int) -> dict[str, np.ndarray]:
        """Vectors already computed for these chunk texts (by any document).

        One row per text (``LIMIT 1``): 20,000 files with the same text must not make each
        look-up read every copy (quadratic)."""
        wanted = list(dict.fromkeys(text_hashes))
        found: dict[str, np.ndarray] = {}
        with self.lock:
            for text_hash in wanted:
                row = self.conn.execute(
                    "SELECT embedding FROM chunks WHERE text_hash = ? LIMIT 1", (text_hash,)
                ).fetchone()
                if row is not None:
                    found[text_hash] = from_blobs([row[0]], dimension)[0]
        return found

    def write_document(
        self, record: DocumentRecord, chunks: Sequence[Chunk], vectors: np.ndarray | None
    ) -> int:
        """Replace a document's row and all its chunks, FTS and vector rows; return its id.

        ``vectors[i]`` belongs to ``chunks[i]``. With no chunks (a skipped, failed or empty
        file) the document keeps only its row, so the reason is on record.
        """
        if chunks and (vectors is None or len(vectors) != len(chunks)):
            raise ValueError("one vector per chunk is required")
        with self._write() as conn:
            doc_id = self._upsert_document(conn, record, len(chunks))
            self._note_removed(self._chunk_ids(conn, "d.id = ?", (doc_id,)))
            conn.execute("DELETE FROM chunks WHERE document_id = ?", (doc_id,))
            if chunks:
                assert vectors is not None
                self._insert_chunks(conn, doc_id, record, chunks, vectors)
        return doc_id

    def write_documents(
        self, items: Sequence[tuple[DocumentRecord, Sequence[Chunk], np.ndarray | None]]
    ) -> None:
        """:meth:`write_document` for several files in one transaction (small files)."""
        for _, chunks, vectors in items:
            if chunks and (vectors is None or len(vectors) != len(chunks)):
                raise ValueError("one vector per chunk is required")
        with self._write() as conn:
            for record, chunks, vectors in items:
                doc_id = self._upsert_document(conn, record, len(chunks))
                self._note_removed(self._chunk_ids(conn, "d.id = ?", (doc_id,)))
                conn.execute("DELETE FROM chunks WHERE document_id = ?", (doc_id,))
                if chunks:
                    assert vectors is not None
                    self._insert_chunks(conn, doc_id, record, chunks, vectors)

    # A big file is written in parts, each its own transaction, so a kill or a cancel keeps
    # the work done: start_document, append_chunks ..., finish_document. Until it finishes,
    # the row says PARTIAL without a hash (the next run redoes the file, reusing the vectors
    # of the chunks already stored); the chunks of the file's previous version stay until
    # the end, so their vectors can be reused too, and go in the last transaction.

    def start_document(self, record: DocumentRecord) -> tuple[int, int]:
        """Returns the document's id and the highest id of its chunks so far (0: none)."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT id, chunk_count FROM documents WHERE path = ?", (record.path,)
            ).fetchone()
            count = row[1] if row else 0
            doc_id = self._upsert_document(conn, record, count)
            old = conn.execute(
                "SELECT coalesce(max(id), 0) FROM chunks WHERE document_id = ?", (doc_id,)
            ).fetchone()[0]
        return doc_id, int(old)

    def append_chunks(
        self, doc_id: int, record: DocumentRecord, chunks: Sequence[Chunk], vectors: np.ndarray
    ) -> None:
        if len(vectors) != len(chunks):
            raise ValueError("one vector per chunk is required")
        if not chunks:
            return
        with self._write() as conn:
            self._insert_chunks(conn, doc_id, record, chunks, vectors)
            conn.execute(
                "UPDATE documents SET chunk_count = chunk_count + ?, model_id = ? WHERE id = ?",
                (len(chunks), self._state("model_id"), doc_id),
            )

    def finish_document(self, doc_id: int, record: DocumentRecord, old_max_id: int) -> None:
        """Drop the chunks of the previous version and write the final row."""
        with self._write() as conn:
            where = "d.id = ? AND c.id <= ?"
            self._note_removed(self._chunk_ids(conn, where, (doc_id, old_max_id)))
            conn.execute(
                "DELETE FROM chunks WHERE document_id = ? AND id <= ?", (doc_id, old_max_id)
            )
            count = conn.execute(
                "SELECT count(*) FROM chunks WHERE document_id = ?", (doc_id,)
            ).fetchone()[0]
            self._upsert_document(conn, record, count)

    def _upsert_document(self, conn: Connection, record: DocumentRecord, chunk_count: int) -> int:
        row = conn.execute(
            """
            INSERT INTO documents (path, folder, content_hash, size, mtime_ns, type, status,
                                   error, warning, chunk_count, model_id, indexed_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(path) DO UPDATE SET
                folder = excluded.folder, content_hash = excluded.content_hash,
                size = excluded.size, mtime_ns = excluded.mtime_ns, type = excluded.type,
                status = excluded.status, error = excluded.error, warning = excluded.warning,
                chunk_count = excluded.chunk_count, model_id = excluded.model_id,
                indexed_at = excluded.indexed_at
            RETURNING id
            """,
            (
                record.path,
                record.folder,
                record.content_hash,
                record.size,
                record.mtime_ns,
                record.type,
                record.status,
                record.error,
                record.warning,
                chunk_count,
                self._state("model_id") if chunk_count else None,
                time.time(),
            ),
        ).fetchone()
        return int(row[0])

    def _insert_chunks(
        self,
        conn: Connection,
        doc_id: int,
        record: DocumentRecord,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
    ) -> None:
        center = self._ensure_center(conn, vectors)
        codes = sign_bits(vectors, center)
        ids: list[int] = []
        for chunk, vector, code in zip(chunks, vectors, codes, strict=True):
            chunk_id = conn.execute(
                """
                INSERT INTO chunks (document_id, seq, text, heading, page, start_char, end_char,
                                    token_count, text_hash, embedding)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id
                """,
                (
                    doc_id,
                    chunk.seq,
                    chunk.text,
                    chunk.heading,
                    chunk.page,
                    chunk.start_char,
                    chunk.end_char,
                    chunk.token_count,
                    chunk.text_hash,
                    to_blob(vector),
                ),
            ).fetchone()[0]
            conn.execute(
                f"INSERT INTO {VEC_TABLE} (chunk_id, coarse, folder, type) "
                "VALUES (?, vec_bit(?), ?, ?)",
                (chunk_id, code.tobytes(), record.folder, record.type),
            )
            ids.append(chunk_id)
        self._changes.append(
            lambda coarse: coarse.add(ids, vectors, codes, record.folder, record.type)
        )

    def _ensure_center(self, conn: Connection, vectors: np.ndarray) -> np.ndarray:
        center = self.center()
        if center is None:
            center = np.asarray(vectors, dtype=np.float32).mean(axis=0)
            conn.execute(
                "INSERT OR REPLACE INTO index_state (key, value) VALUES ('center', ?)",
                (center.astype(np.float32).tobytes().hex(),),
            )
            conn.execute(
                "INSERT OR REPLACE INTO index_state (key, value) VALUES ('center_sample', ?)",
                (str(len(vectors)),),
            )
            self._center, self._center_loaded = center, True
        return center

    def recenter_if_grown(self) -> bool:
        """Re-derive the sign-bit center from a larger sample and re-encode every code.

        The first center comes from the first document alone; while the index is small this
        is cheap, so it is redone each time the index has grown ``RECENTER_GROWTH``-fold,
        up to ``RECENTER_MAX_SAMPLE`` vectors. Returns True when codes were rewritten.
        """
        state = self.index_state()
        if state is None:
            return False
        with self.lock:
            sample = int(self._state("center_sample") or 0)
            total = self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        if sample >= RECENTER_MAX_SAMPLE or total < max(sample * RECENTER_GROWTH, 1) or not total:
            return False
        try:
            with self._write() as conn:
                rows = conn.execute(
                    "SELECT embedding FROM chunks ORDER BY random() LIMIT ?",
                    (RECENTER_MAX_SAMPLE,),
                ).fetchall()
                center = from_blobs([r[0] for r in rows], state.dimension).mean(axis=0)
                self._center, self._center_loaded = center.astype(np.float32), True
                self._coarse = None  # every code changes: reload on next use
                self._rewrite_vectors(conn, "1", ())
                conn.executemany(
                    "INSERT OR REPLACE INTO index_state (key, value) VALUES (?, ?)",
                    [
                        ("center", center.astype(np.float32).tobytes().hex()),
                        ("center_sample", str(len(rows))),
                    ],
                )
        except BaseException:
            self._center_loaded = False  # rolled back: read the stored center again
            raise
        return True

    def _rewrite_vectors(self, conn: Connection, where: str, args: tuple[Any, ...]) -> None:
        """Re-encode the vec0 rows of the chunks selected by ``where`` (over ``c``/``d``).

        vec0 cannot UPDATE a row holding a bit vector (sqlite-vec issue #53: the subtype is
        lost on UPDATE), not even to change a metadata column, so rows are deleted and
        inserted again, codes recomputed from the exact vectors with the current center.
        """
        state = self.index_state()
        assert state is not None
        center = self.center()
        rows = conn.execute(
            "SELECT c.id, c.embedding, d.folder, d.type FROM chunks c "
            f"JOIN documents d ON d.id = c.document_id WHERE {where}",
            args,
        ).fetchall()
        for i in range(0, len(rows), _BATCH):
            part = rows[i : i + _BATCH]
            codes = sign_bits(from_blobs([r[1] for r in part], state.dimension), center)
            conn.execute(
                f"DELETE FROM {VEC_TABLE} WHERE chunk_id IN ({','.join('?' * len(part))})",
                [r[0] for r in part],
            )
            conn.executemany(
                f"INSERT INTO {VEC_TABLE} (chunk_id, coarse, folder, type) "
                "VALUES (?, vec_bit(?), ?, ?)",
                [(r[0], code.tobytes(), r[2], r[3]) for r, code in zip(part, codes, strict=True)],
            )

    def touch(self, path: str, size: int, mtime_ns: int) -> None:
        """Same content, new timestamp (e.g. ``touch`` or a save without changes)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE documents SET size = ?, mtime_ns = ? WHERE path = ?", (size, mtime_ns, path)
            )

    def move_document(
        self, old_path: str, new_path: str, folder: str, size: int, mtime_ns: int
    ) -> None:
        """A renamed or moved file keeps its chunks and vectors; only where it lives changes."""
        with self._write() as conn:
            # A stale row at the destination (a file replaced by the move) goes first.
            self._note_removed(self._chunk_ids(conn, "d.path = ?", (new_path,)))
            conn.execute("DELETE FROM documents WHERE path = ?", (new_path,))
            row = conn.execute(
                "UPDATE documents SET path = ?, folder = ?, size = ?, mtime_ns = ? "
                "WHERE path = ? RETURNING id, type",
                (new_path, folder, size, mtime_ns, old_path),
            ).fetchone()
            if row is None:
                raise KeyError(old_path)
            if self._has_vec_table(conn):
                self._rewrite_vectors(conn, "c.document_id = ?", (row[0],))
                moved = self._chunk_ids(conn, "d.id = ?", (row[0],))
                self._changes.append(lambda coarse: coarse.set_folder(moved, folder))

    def _has_vec_table(self, conn: Connection) -> bool:
        return (
            conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (VEC_TABLE,)).fetchone()
            is not None
        )

    def delete_documents(self, paths: Iterable[str]) -> int:
        n = 0
        for path in paths:
            # One transaction each: a long delete must not hold the write lock for long.
            with self._write() as conn:
                self._note_removed(self._chunk_ids(conn, "d.path = ?", (path,)))
                n += conn.execute("DELETE FROM documents WHERE path = ?", (path,)).rowcount
        return n

    # -- figures ------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        with self.lock:
            docs = self.conn.execute("SELECT count(*) FROM documents").fetchone()[0]
            chunks = self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
            by_status = dict(
                self.conn.execute(
                    "SELECT status, count(*) FROM documents GROUP BY status"
                ).fetchall()
            )
        return {"documents": docs, "chunks": chunks, **{s: by_status.get(s, 0) for s in Status.ALL}}
