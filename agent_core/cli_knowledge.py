"""``jackdaw folders | index | watch | search``: the knowledge base from the command line.

``register(subparsers)`` adds the commands; each handler is ``fn(args, services) -> int``.
``--json`` prints exactly one JSON object on stdout; progress and logs go to stderr.
The watched folders live in config.toml (``[knowledge] watched_folders``); the knowledge
base mirrors them and is brought in line at the start of every command.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent_core.cli_output import print_json
from knowledge import (
    IngestResult,
    KnowledgeBase,
    KnowledgeSettings,
    Progress,
    SearchFilters,
    open_knowledge_base,
)
from knowledge.base import normalise_folder
from knowledge.errors import NotWatchedError

log = logging.getLogger("jackdaw.knowledge")


def register(subparsers: Any) -> None:
    folders = subparsers.add_parser("folders", help="watched folders").add_subparsers(
        dest="folders_command", metavar="ACTION", required=True
    )
    add = folders.add_parser("add", help="watch a folder (and index it now)")
    add.add_argument("path")
    add.add_argument("--no-index", action="store_true", help="add without indexing now")
    add.add_argument("--json", action="store_true", help="print one JSON object")
    add.set_defaults(handler=cmd_folders_add)
    remove = folders.add_parser("remove", help="stop watching a folder; drop its index")
    remove.add_argument("path")
    remove.add_argument("--json", action="store_true", help="print one JSON object")
    remove.set_defaults(handler=cmd_folders_remove)
    listing = folders.add_parser("list", help="watched folders and what is indexed")
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    listing.set_defaults(handler=cmd_folders_list)
    status = folders.add_parser(
        "status", help="files not (fully) indexed and why, and the recent indexing runs"
    )
    status.add_argument("path", nargs="?", help="only this watched folder")
    status.add_argument("--limit", type=int, default=200, help="files listed at most (200)")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(handler=cmd_folders_status)

    index = subparsers.add_parser("index", help="bring the index up to date")
    index.add_argument("path", nargs="?", help="a file or folder inside a watched folder")
    index.add_argument(
        "--rebuild",
        action="store_true",
        help="re-embed everything with the configured embedding model",
    )
    index.add_argument("--json", action="store_true", help="print one JSON object")
    index.set_defaults(handler=cmd_index)

    watch = subparsers.add_parser("watch", help="watch the folders in the foreground")
    watch.set_defaults(handler=cmd_watch)

    search = subparsers.add_parser("search", help="search the indexed folders")
    search.add_argument("query")
    search.add_argument("-k", type=int, default=5, help="number of hits (default 5)")
    search.add_argument("--folder", help="only this folder (or a folder inside one)")
    search.add_argument(
        "--type",
        action="append",
        dest="types",
        metavar="TYPE",
        help="only this document type (markdown, pdf, text, html, code)",
    )
    search.add_argument("--glob", help="only paths matching this glob, e.g. '*/notes/*.md'")
    search.add_argument("--json", action="store_true", help="print one JSON object")
    search.set_defaults(handler=cmd_search)


# -- building the knowledge base ----------------------------------------------------------


@contextmanager
def knowledge_base(services: Any) -> Iterator[KnowledgeBase]:
    """The composition root's knowledge base when it has one; otherwise one built here
    from config and paths (and closed afterwards). Folders are synced from config."""
    kb = getattr(services, "knowledge", None)
    owned: list[Any] = []
    if kb is None:
        embedder = getattr(services, "embedder", None)
        if embedder is None:
            embedder = _default_embedder(services)
            owned.append(embedder)
        config = services.config.knowledge
        kb = open_knowledge_base(
            services.paths.knowledge_db, embedder, KnowledgeSettings.from_config(config)
        )
        owned.insert(0, kb)
    try:
        kb.sync_folders(services.config.knowledge.watched_folders)
        yield kb
    finally:
        for thing in owned:
            thing.close()


def _default_embedder(services: Any) -> Any:
    from models.llama_embedder import LlamaCppEmbedder
    from models.minilm_gguf import default_embedding_gguf

    configured = services.config.knowledge.embedding_model
    path = (
        Path(configured).expanduser()
        if configured
        else default_embedding_gguf(services.paths.models_dir)
    )
    return LlamaCppEmbedder(path)


# -- output --------------------------------------------------------------------------------


class ProgressPrinter:
    """Progress on stderr: one rewritten line on a terminal, a line every few seconds else.

    From the first second: files found while scanning, then files and chunks done of the
    total with an ETA."""

    def __init__(self, stream: Any = None, every_s: float = 2.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every_s = every_s if not self.tty else 0.1
        self._last = 0.0
        self._phase = ""

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        final = p.phase in ("done", "cancelled")
        first_of_phase = p.phase != self._phase
        self._phase = p.phase
        if not final and not first_of_phase and now - self._last < self.every_s:
            return
        self._last = now
        if p.phase == "scanning":
            line = f"[scanning] {p.files_total} files found"
        else:
            eta = f", ETA {p.eta_s:.0f}s" if p.eta_s else ""
            current = f"  {safe_text(Path(p.current_file).name)}" if p.current_file else ""
            line = (
                f"[{p.phase}] {p.files_done}/{p.files_total} files, {p.chunks_embedded} "
                f"chunks ({p.chunks_per_s:.1f}/s{eta}){current}"
            )
        if self.tty:
            self.stream.write("\r\033[K" + line[:200] + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def safe_text(text: str) -> str:
    """For a terminal: control characters (escape sequences in a file name) shown escaped,
    undecodable bytes of a file name shown as \\xNN."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(
        ch if ch.isprintable() or ch in "\t" else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def describe(result: IngestResult) -> str:
    parts = [
        f"{result.seen} seen",
        f"{result.added} added",
        f"{result.updated} updated",
        f"{result.unchanged} unchanged",
        f"{result.renamed} renamed",
        f"{result.deleted} deleted",
        f"{result.failed} failed",
        f"{result.skipped} skipped",
    ]
    text = ", ".join(parts) + f"; {result.chunks_embedded} chunks embedded in {result.seconds:.1f}s"
    if result.cancelled:
        text += " (cancelled: run it again to finish)"
    for folder in result.offline_folders:
        text += f"\n  offline (index kept): {folder}"
    failures = [p for p in result.problems if p.status not in ("skipped",)]
    for problem in failures[:20]:
        text += f"\n  {problem.status}: {safe_text(problem.path)}: {safe_text(problem.reason)}"
    skipped = len(result.problems) - len(failures)
    if skipped or len(failures) > 20:
        text += "\n  (every file not indexed, and why: jackdaw folders status)"
    return text


@contextmanager
def cancel_on_interrupt() -> Iterator[threading.Event]:
    """Ctrl-C or SIGTERM sets the event: the run stops within a second, keeps what is done,
    and the command exits 130. A second Ctrl-C quits at once (the index stays consistent:
    every write is a transaction)."""
    cancel = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield cancel
        return

    def handler(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        sys.stderr.write("\n[stopping: keeping what is done; Ctrl-C again to quit now]\n")

    previous = {sig: signal.signal(sig, handler) for sig in _STOP_SIGNALS}
    try:
        yield cancel
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


_STOP_SIGNALS = tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s is not None)


# -- commands ------------------------------------------------------------------------------


def cmd_folders_add(args: argparse.Namespace, services: Any) -> int:
    with knowledge_base(services) as kb:
        folder = kb.add_folder(args.path)
        folders = services.config.knowledge.watched_folders
        if folder not in {normalise_folder(f) for f in folders}:
            folders.append(folder)
            services.save_config()
        result = None
        if not args.no_index:
            with cancel_on_interrupt() as cancel:
                result = kb.index([folder], on_progress=ProgressPrinter(), cancel=cancel)
    if args.json:
        print_json({"folder": folder, "index": result.to_dict() if result else None})
    else:
        sys.stdout.write(f"watching {safe_text(folder)}\n")
        if result:
            sys.stdout.write(describe(result) + "\n")
    return 130 if result is not None and result.cancelled else 0


def cmd_folders_remove(args: argparse.Namespace, services: Any) -> int:
    folder = normalise_folder(args.path)
    folders = services.config.knowledge.watched_folders
    kept = [f for f in folders if normalise_folder(f) != folder]
    if len(kept) == len(folders):
        raise NotWatchedError(f"{folder} is not a watched folder")
    with knowledge_base(services) as kb:
        removed = kb.remove_folder(folder)
        folders[:] = kept
        services.save_config()
    if args.json:
        print_json({"folder": folder, "removed_documents": removed})
    else:
        sys.stdout.write(f"stopped watching {folder}; {removed} file(s) dropped from the index\n")
    return 0


def _problem_dict(doc: Any) -> dict[str, Any]:
    return {
        "path": doc.path,
        "folder": doc.folder,
        "status": doc.status,
        "reason": doc.error,
        "warning": doc.warning,
        "size": doc.size,
        "chunks": doc.chunk_count,
    }


def cmd_folders_list(args: argparse.Namespace, services: Any) -> int:
    with knowledge_base(services) as kb:
        folders = [f.to_dict() for f in kb.folders()]
        for f in folders:
            f["problem_files"] = [_problem_dict(d) for d in kb.problems(f["path"], limit=200)]
        stats = kb.stats()
    if args.json:
        print_json({"folders": folders, "index": stats})
        return 0
    if not folders:
        sys.stdout.write("no watched folders (add one: jackdaw folders add PATH)\n")
    for f in folders:
        when = (
            time.strftime("%Y-%m-%d %H:%M", time.localtime(f["last_scan_at"]))
            if f["last_scan_at"]
            else "never"
        )
        problems = (
            f", {f['problems']} not indexed (jackdaw folders status)" if f["problems"] else ""
        )
        sys.stdout.write(
            f"{safe_text(f['path'])}  [{f['status']}]  {f['documents']} files, "
            f"{f['chunks']} chunks, last scan {when}{problems}\n"
        )
    return 0


def cmd_folders_status(args: argparse.Namespace, services: Any) -> int:
    """Per-file status for every file not (fully) indexed, kept until the file changes."""
    with knowledge_base(services) as kb:
        folder = normalise_folder(args.path) if args.path else None
        if folder is not None and folder not in kb.folder_paths():
            raise NotWatchedError(f"{folder} is not a watched folder")
        folders = [f for f in kb.folders() if folder is None or f.path == folder]
        files = [_problem_dict(d) for d in kb.problems(folder, limit=args.limit)]
        runs = [r.to_dict() for r in kb.runs(5)]
        watcher = getattr(services, "watcher", None)
    if args.json:
        print_json(
            {
                "folders": [f.to_dict() for f in folders],
                "files": files,
                "runs": runs,
                "watching": watcher.watched if watcher is not None else [],
            }
        )
        return 0
    for f in folders:
        note = f" ({f.note})" if f.note else ""
        sys.stdout.write(
            f"{safe_text(f.path)}  [{f.status}{note}]  {f.documents} files, {f.chunks} chunks, "
            f"{f.problems} not (fully) indexed\n"
        )
    for item in files:
        reason = f": {item['reason']}" if item["reason"] else ""
        sys.stdout.write(f"  {item['status']}{safe_text(reason)}  {safe_text(item['path'])}\n")
    if runs:
        last = runs[0]
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(last["started_at"]))
        sys.stdout.write(f"last run {when}: {last['status']}; {last['summary'] or ''}\n")
    return 0


def cmd_index(args: argparse.Namespace, services: Any) -> int:
    with knowledge_base(services) as kb, cancel_on_interrupt() as cancel:
        progress = ProgressPrinter()
        if args.rebuild:
            plan = kb.rebuild_plan()
            if plan is not None:
                sys.stderr.write(
                    f"rebuilding the index for {plan.new_model_id}: {plan.documents} files, "
                    f"{plan.chunks} chunks (about {plan.estimated_seconds:.0f}s); "
                    "the old index serves until it is done\n"
                )
                result = kb.rebuild(on_progress=progress, cancel=cancel)
            else:
                result = kb.index(on_progress=progress, cancel=cancel)
        else:
            result = kb.index([args.path] if args.path else None, progress, cancel)
    if args.json:
        print_json(result.to_dict())
    else:
        sys.stdout.write(describe(result) + "\n")
    return 130 if result.cancelled else 0


def cmd_watch(args: argparse.Namespace, services: Any) -> int:
    from apscheduler.schedulers.background import BackgroundScheduler

    from knowledge.errors import IndexModelMismatchError
    from knowledge.watcher import FolderWatcher, add_reconcile_job

    config = services.config.knowledge
    with knowledge_base(services) as kb:
        if not kb.folder_paths():
            sys.stderr.write("no watched folders (add one: jackdaw folders add PATH)\n")
            return 1
        if not kb.model_matches:
            raise IndexModelMismatchError("The index was built with another embedding model.")

        def on_batch(paths: list[str], result: IngestResult) -> None:
            what = "reconcile scan" if not paths else f"{len(paths)} changed path(s)"
            sys.stderr.write(f"{time.strftime('%H:%M:%S')} {what}: {describe(result)}\n")

        def on_status(folder: str, status: str) -> None:
            sys.stderr.write(f"{time.strftime('%H:%M:%S')} {folder} is {status}\n")

        def on_error(exc: BaseException) -> None:
            sys.stderr.write(f"{time.strftime('%H:%M:%S')} indexing failed: {exc}\n")

        watcher = FolderWatcher(
            kb,
            settle_seconds=config.settle_seconds,
            on_batch=on_batch,
            on_status=on_status,
            on_error=on_error,
        )
        scheduler = BackgroundScheduler()
        if config.reconcile_minutes > 0:
            add_reconcile_job(scheduler, watcher, config.reconcile_minutes)
        stop = threading.Event()

        def on_signal(signum: int, frame: Any) -> None:
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in _STOP_SIGNALS}
        try:
            watcher.start()
            scheduler.start()
            sys.stderr.write(
                f"watching {len(kb.folder_paths())} folder(s) (folders added meanwhile are "
                f"watched at once), a full re-scan every {config.reconcile_minutes:g} min; "
                "Ctrl-C to stop\n"
            )
            while not stop.wait(0.5):
                pass
            sys.stderr.write("\nstopping (what is indexed is kept)\n")
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
            scheduler.shutdown(wait=False)
            watcher.stop()
    return 0  # stopping is how `watch` ends: not a failure


def cmd_search(args: argparse.Namespace, services: Any) -> int:
    filters = SearchFilters(
        folder=normalise_folder(args.folder) if args.folder else None,
        types=tuple(args.types or ()),
        path_glob=args.glob,
    )
    with knowledge_base(services) as kb:
        hits = kb.search(args.query, k=args.k, filters=filters)
        keyword_only = not kb.model_matches
    if args.json:
        print_json(
            {
                "query": args.query,
                "filters": filters.to_dict(),
                "keyword_only": keyword_only,
                "hits": [h.to_dict() for h in hits],
            }
        )
        return 0
    if keyword_only:
        sys.stderr.write(
            "note: the embedding model changed; keyword search only until "
            "`jackdaw index --rebuild` has run\n"
        )
    if not hits:
        sys.stdout.write("no matches\n")
    for n, hit in enumerate(hits, 1):
        sys.stdout.write(f"{n}. {hit.source}  (score {hit.score:.4f})\n   {hit.snippet}\n")
    return 0
