"""The built-in tools, built from configuration values (never from agent_core's objects)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tools.base import Tool
from tools.builtins.calculator import make_calculator
from tools.builtins.clock import make_current_datetime
from tools.builtins.files import (
    DEFAULT_MAX_FILE_BYTES,
    TextExtractor,
    make_list_folder,
    make_read_file,
)
from tools.builtins.knowledge import SearchFn, make_search_knowledge
from tools.builtins.notes import make_write_note
from tools.builtins.python_runner import make_run_python
from tools.paths import PathGuard, resolve_path, resolve_roots

__all__ = ["build_builtin_tools", "read_roots"]


def read_roots(
    watched_folders: Sequence[str | os.PathLike[str]],
    allowed_paths: Sequence[str | os.PathLike[str]],
    notes_folder: str | os.PathLike[str],
) -> tuple[Path, ...]:
    """Where read tools may go without asking: the watched folders, the paths the user allowed
    in config, and the notes folder (Jackdaw's own notes are the user's too)."""
    return resolve_roots([*watched_folders, *allowed_paths, notes_folder])


def build_builtin_tools(
    *,
    watched_folders: Sequence[str | os.PathLike[str]] = (),
    allowed_paths: Sequence[str | os.PathLike[str]] = (),
    notes_folder: str | os.PathLike[str],
    search: SearchFn | None = None,
    extract_text: TextExtractor | None = None,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    run_python_timeout_s: float = 10.0,
    run_python_memory_mb: int = 512,
) -> list[Tool]:
    """All built-ins; ``search_knowledge`` only when a search callable is given."""
    guard = PathGuard(read_roots(watched_folders, allowed_paths, notes_folder))
    tools: list[Tool] = []
    if search is not None:
        tools.append(make_search_knowledge(search))
    tools += [
        make_read_file(guard, max_bytes=max_file_bytes, extract_text=extract_text),
        make_list_folder(guard),
        make_write_note(resolve_path(notes_folder)),
        make_calculator(),
        make_current_datetime(),
        make_run_python(timeout_s=run_python_timeout_s, memory_mb=run_python_memory_mb),
    ]
    return tools
