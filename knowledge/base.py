"""``KnowledgeBase``: the one object the rest of Jackdaw uses for watched folders.

Built by :func:`open_knowledge_base` from a DB path and an :class:`Embedder`; owns the
store, the indexer and the searcher. Thread-safe for one indexing run at a time plus any
number of searches (searches wait at most for one document's write).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from knowledge.db import open_db
from knowledge.errors import (
    FolderNotFoundError,
    IndexModelMismatchError,
    NotAFolderError,
    NotWatchedError,
)
from knowledge.ingest import FileReader, Indexer, IndexSettings, ProgressCallback, Scope, read_file
from knowledge.scan import IgnoreRules, storable_path, watched_root
from knowledge.search import HybridSearcher, SearchSettings
from knowledge.store import KnowledgeStore
from knowledge.types import (
    Document,
    FolderInfo,
    Hit,
    IndexRun,
    IndexState,
    IngestResult,
    RebuildPlan,
    SearchFilters,
)
from models.embedding import Embedder

# Rough rate for the rebuild estimate, on the slow side (MiniLM, 2 busy cores, chunks of
# ~260 tokens: 15-17/s; 40/s measured for ~200-token chunks on an idle machine).
DEFAULT_CHUNKS_PER_SECOND = 15.0


@dataclass(frozen=True)
class KnowledgeSettings:
    max_file_mb: float = 50.0  # text past this is indexed up to it; other files skipped
    chunk_tokens: int = 256
    overlap_tokens: int = 32
    skip_hidden: bool = True
    embed_batch: int = 16
    file_time_budget_s: float = 120.0  # per file; 0: none
    follow_links_outside: bool = False  # follow symlinks that leave their watched folder
    skip_generated: bool = True  # minified code, one-line data, encoded blobs

    @classmethod
    def from_config(cls, config: Any) -> KnowledgeSettings:
        """From ``[knowledge]`` in config.toml (any object with those attributes)."""
        names = {f.name for f in fields(cls)}
        return cls(**{n: getattr(config, n) for n in names if hasattr(config, n)})


def normalise_folder(path: str | os.PathLike[str]) -> str:
    return str(Path(path).expanduser().resolve())


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (on this machine)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # type: ignore[attr-defined]
        if not handle:
            return False
        ctypes.windll.kernel32.CloseHandle(handle)  # type: ignore[attr-defined]
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


class KnowledgeBase:
    def __init__(
        self,
        store: KnowledgeStore,
        embedder: Embedder,
        db_path: Path,
        settings: KnowledgeSettings | None = None,
        search_settings: SearchSettings | None = None,
        reader: FileReader = read_file,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.db_path = db_path
        self.settings = settings or KnowledgeSettings()
        # The DB itself (and a rebuild's side file) may live inside a watched folder.
        real = db_path.resolve()
        excluded = frozenset(
            str(base) + suffix
            for base in (real, real.with_name(real.name + ".rebuild"))
            for suffix in ("", "-wal", "-shm", "-journal")
        )
        rules = IgnoreRules(
            max_file_bytes=int(self.settings.max_file_mb * 1024 * 1024),
            skip_hidden=self.settings.skip_hidden,
            excluded_paths=excluded,
            follow_links_outside=self.settings.follow_links_outside,
        )
        self.rules = rules
        self.indexer = Indexer(
            store,
            embedder,
            IndexSettings(
                rules=rules,
                chunk_tokens=self.settings.chunk_tokens,
                overlap_tokens=self.settings.overlap_tokens,
                embed_batch=self.settings.embed_batch,
                file_time_budget_s=self.settings.file_time_budget_s,
                skip_generated=self.settings.skip_generated,
            ),
            reader=reader,
        )
        # A run left "running" by a process that died (SIGKILL, power cut) is interrupted.
        store.heal_runs(process_alive)
        self.searcher = HybridSearcher(store, embedder, search_settings)
        state = store.index_state()
        if (
            state is not None
            and state.model_id != embedder.model_id
            and not store.counts()["chunks"]
        ):
            store.drop_vectors()  # nothing embedded yet: switching models costs nothing
            state = None
        if state is None:
            store.set_index_state(embedder.model_id, embedder.dimension)

    # -- state -----------------------------------------------------------------------------

    @property
    def index_state(self) -> IndexState | None:
        return self.store.index_state()

    @property
    def model_matches(self) -> bool:
        state = self.store.index_state()
        return state is not None and state.model_id == self.embedder.model_id

    def rebuild_plan(self) -> RebuildPlan | None:
        """What re-embedding everything with the current embedder would take; None when
        the index already uses it."""
        state = self.store.index_state()
        if state is None or state.model_id == self.embedder.model_id:
            return None
        counts = self.store.counts()
        return RebuildPlan(
            old_model_id=state.model_id,
            new_model_id=self.embedder.model_id,
            documents=counts["documents"],
            chunks=counts["chunks"],
            estimated_seconds=round(counts["chunks"] / DEFAULT_CHUNKS_PER_SECOND, 1),
        )

    def stats(self) -> dict[str, object]:
        state = self.store.index_state()
        return {
            **self.store.counts(),
            "model_id": state.model_id if state else None,
            "dimension": state.dimension if state else None,
            "model_matches": self.model_matches,
            "db_path": str(self.db_path),
        }

    # -- folders ---------------------------------------------------------------------------

    def add_folder(self, path: str | os.PathLike[str]) -> str:
        folder = normalise_folder(path)
        if storable_path(folder) != folder:
            raise NotAFolderError(
                f"{storable_path(folder)}: the folder's name is not valid UTF-8; rename it"
            )
        if not os.path.exists(folder):
            raise FolderNotFoundError(f"No such folder: {folder}")
        if not os.path.isdir(folder):
            raise NotAFolderError(f"{folder} is a file")
        self.store.add_folder(folder)
        return folder

    def remove_folder(self, path: str | os.PathLike[str]) -> int:
        """Stop watching a folder and drop its documents from the index."""
        folder = normalise_folder(path)
        if folder not in self.store.folder_paths():
            raise NotWatchedError(f"{folder} is not a watched folder")
        return self.store.remove_folder(folder)

    def sync_folders(self, configured: Sequence[str | os.PathLike[str]]) -> None:
        """Make the watched folders exactly ``configured`` (config.toml is the source of
        truth). A configured folder that is missing right now is kept (offline), not
        refused; one no longer configured is removed with its documents."""
        wanted = {normalise_folder(f) for f in configured}
        have = set(self.store.folder_paths())
        for folder in sorted(wanted - have):
            self.store.add_folder(folder)
        for folder in sorted(have - wanted):
            self.store.remove_folder(folder)

    def folders(self) -> list[FolderInfo]:
        return self.store.folders()

    def problems(self, folder: str | None = None, limit: int | None = None) -> list[Document]:
        """Files not (fully) indexed and why (skipped, failed, truncated ...), kept on
        record until the file changes."""
        return self.store.problems(normalise_folder(folder) if folder else None, limit)

    def runs(self, limit: int = 10) -> list[IndexRun]:
        """Recent indexing runs, newest first (a killed one shows as interrupted)."""
        return self.store.runs(limit)

    def folder_paths(self) -> list[str]:
        return self.store.folder_paths()

    def document(self, path: str | os.PathLike[str]) -> Document | None:
        return self.store.document(storable_path(str(Path(path).absolute())))

    def documents(self, status: str | None = None) -> list[Document]:
        return self.store.documents(status)

    # -- indexing --------------------------------------------------------------------------

    def index(
        self,
        paths: Sequence[str | os.PathLike[str]] | None = None,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> IngestResult:
        """Bring the index up to date with ``paths`` (files or folders inside watched
        folders, present or deleted), or with every watched folder when None: the
        reconcile scan, safe to run at start-up and on a schedule."""
        if not self.model_matches:
            raise IndexModelMismatchError(
                f"The index was built with {self.store.index_state()}, not {self.embedder.model_id}"
            )
        roots = self.store.folder_paths()
        if paths is None:
            scopes = [Scope(root, root) for root in roots]
        else:
            scopes = []
            for raw in paths:
                path = str(Path(raw).expanduser().absolute())
                real = normalise_folder(path) if os.path.exists(path) else path
                root = watched_root(path, roots) or watched_root(real, roots)
                if root is None:
                    raise NotWatchedError(f"{path} is not inside a watched folder")
                scopes.append(Scope(root, path if watched_root(path, roots) else real))
        run_id = self.store.start_run(
            os.getpid(), "all" if paths is None else " ".join(storable_path(s.path) for s in scopes)
        )
        status, summary = "failed", None
        try:
            result = self.indexer.run(scopes, on_progress, cancel)
            status = "cancelled" if result.cancelled else "done"
            summary = (
                f"{result.seen} seen, {result.added} added, {result.updated} updated, "
                f"{result.deleted} deleted, {result.failed} failed, {result.skipped} skipped, "
                f"{result.chunks_embedded} chunks embedded in {result.seconds:.1f} s"
            )
            return result
        except BaseException as exc:
            summary = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            try:
                self.store.finish_run(run_id, status, summary)
            except Exception:  # the DB may be the problem (disk full); the run already failed
                pass

    reconcile = index

    def rebuild(
        self,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> IngestResult:
        """Re-index every watched folder with the current embedder (after a model change).

        The new index is built in a side file (``knowledge.db.rebuild``) while this one
        keeps serving; only when it is complete does it replace this one. Interrupted, the
        side file stays and the next rebuild carries on from it (same hashing as ever).
        Other processes with knowledge.db open must reopen it afterwards.
        """
        side_path = self.db_path.with_name(self.db_path.name + ".rebuild")
        side = open_knowledge_base(
            side_path, self.embedder, self.settings, self.searcher.settings, self.indexer.reader
        )
        try:
            for folder in self.store.folder_paths():
                side.store.add_folder(folder)
            result = side.index(on_progress=on_progress, cancel=cancel)
            if result.cancelled:
                return result
            side.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            side.close()
        with self.store.lock:
            self.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.store.conn.close()
            # A stale -wal next to the new file would be replayed into it: remove first.
            for suffix in ("-wal", "-shm"):
                Path(str(self.db_path) + suffix).unlink(missing_ok=True)
            os.replace(side_path, self.db_path)
            for suffix in ("-wal", "-shm"):
                Path(str(side_path) + suffix).unlink(missing_ok=True)
            self.store.reopen(open_db(self.db_path))
        return result

    # -- search ----------------------------------------------------------------------------

    def search(self, query: str, k: int = 10, filters: SearchFilters | None = None) -> list[Hit]:
        return self.searcher.search(query, k=k, filters=filters)

    def close(self) -> None:
        self.store.close()


def open_knowledge_base(
    db_path: Path | str,
    embedder: Embedder,
    settings: KnowledgeSettings | None = None,
    search_settings: SearchSettings | None = None,
    reader: FileReader = read_file,
) -> KnowledgeBase:
    """Open (creating and migrating if needed) knowledge.db for this embedder."""
    path = Path(db_path)
    conn = open_db(path)
    return KnowledgeBase(KnowledgeStore(conn), embedder, path, settings, search_settings, reader)
