"""Builds a ready ToolExecutor from plain values; the composition root calls this.

(``tools/`` never imports ``agent_core``: the caller maps its config onto these arguments.)
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence

from tools.audit import AuditLog
from tools.base import ToolRegistry
from tools.builtins import build_builtin_tools, read_roots
from tools.builtins.files import DEFAULT_MAX_FILE_BYTES, TextExtractor
from tools.builtins.knowledge import SearchFn
from tools.confirm import ConfirmationHandler
from tools.executor import ToolExecutor
from tools.policy import PermissionPolicy
from tools.rules import RuleStore


def build_tool_executor(
    memory: sqlite3.Connection,
    *,
    notes_folder: str | os.PathLike[str],
    watched_folders: Sequence[str | os.PathLike[str]] = (),
    allowed_paths: Sequence[str | os.PathLike[str]] = (),
    search: SearchFn | None = None,
    extract_text: TextExtractor | None = None,
    confirmer: ConfirmationHandler | None = None,
    confirm_timeout_s: float = 60.0,
    tool_timeout_s: float = 30.0,
    run_python_timeout_s: float = 10.0,
    run_python_memory_mb: int = 512,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> ToolExecutor:
    """The built-in tools behind the permission policy (rules in ``memory``, a migrated
    memory.db) and the audit log. ``confirmer=None`` denies whatever asks: pass the CLI's or
    the GUI's handler (or swap it later with ``executor.with_confirmer``)."""
    registry = ToolRegistry(
        build_builtin_tools(
            watched_folders=watched_folders,
            allowed_paths=allowed_paths,
            notes_folder=notes_folder,
            search=search,
            extract_text=extract_text,
            max_file_bytes=max_file_bytes,
            run_python_timeout_s=run_python_timeout_s,
            run_python_memory_mb=run_python_memory_mb,
        )
    )
    policy = PermissionPolicy(
        read_roots(watched_folders, allowed_paths, notes_folder), RuleStore(memory)
    )
    return ToolExecutor(
        registry,
        policy,
        confirmer,
        AuditLog(memory),
        confirm_timeout_s=confirm_timeout_s,
        tool_timeout_s=tool_timeout_s,
    )
