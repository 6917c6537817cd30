"""Shared fixtures for the tools suite: a migrated memory.db and a small real file tree."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent_core.memory_db import open_memory_db
from tools.confirm import ConfirmationHandler
from tools.executor import ToolExecutor
from tools.factory import build_tool_executor


@dataclass
class Workspace:
    root: Path
    watched: Path  # a watched folder, with a few files
    notes: Path  # the notes folder
    outside: Path  # a folder no tool may touch (holds a "secret")

    def executor(
        self,
        memory: sqlite3.Connection,
        confirmer: ConfirmationHandler | None = None,
        **kwargs: object,
    ) -> ToolExecutor:
        return build_tool_executor(
            memory,
            notes_folder=self.notes,
            watched_folders=[self.watched],
            confirmer=confirmer,
            **kwargs,  # type: ignore[arg-type]
        )


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = open_memory_db(tmp_path / "memory.db")
    yield conn
    conn.close()


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    watched, notes, outside = root / "Documents", root / "Notes", root / "private"
    for folder in (watched, notes, outside, watched / "sub"):
        folder.mkdir(parents=True)
    (watched / "hello.txt").write_text("Hello from a watched folder.\n", encoding="utf-8")
    (watched / "sub" / "deep.md").write_text("# Deep\n\nA nested note.\n", encoding="utf-8")
    (outside / "secret.txt").write_text("TOP SECRET\n", encoding="utf-8")
    return Workspace(root, watched, notes, outside)
