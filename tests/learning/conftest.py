"""A small world for the learning tests: memory.db, a folder of files behind the real
permissioned tools, a scripted model, a deterministic embedder, and the learning loop."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent_core.agent import Agent
from agent_core.config import LearningConfig
from agent_core.learning import Learning
from agent_core.memory_db import open_memory_db
from agent_core.prompting import PromptBuilder
from agent_core.traces import Trace, TraceStore
from models.chat import GenerationSettings
from tests.fakes import ScriptedBackend
from tests.learning.fakes import WordsEmbedder
from tools.confirm import ScriptedConfirmationHandler
from tools.executor import ToolExecutor
from tools.factory import build_tool_executor


def words(text: str) -> int:
    return len(text.split())


@dataclass
class World:
    root: Path
    docs: Path
    notes: Path
    conn: sqlite3.Connection
    traces: TraceStore
    embedder: WordsEmbedder
    confirmer: ScriptedConfirmationHandler
    executor: ToolExecutor
    config: LearningConfig
    backend: Any = None  # the model the learning loop uses offline (set by a test)
    learning: Learning = field(init=False)

    def __post_init__(self) -> None:
        self.learning = Learning(
            self.conn,
            self.traces,
            self.config,
            embedder=self.embedder,
            executor=lambda: self.executor,
            backend=lambda: self.backend,
            builder=lambda: PromptBuilder(count_tokens=words),
            seed=7,
        )

    def agent(
        self, backend: Any, *, learning: bool = True, max_steps: int = 6, retriever: Any = None
    ) -> Agent:
        return Agent(
            backend,
            self.executor,
            self.traces,
            PromptBuilder(count_tokens=words),
            GenerationSettings(temperature=0, seed=7, max_tokens=64),
            max_steps=max_steps,
            retriever=retriever,
            learning=self.learning.memory if learning else None,
            system_prompt=self.learning.active_prompt if learning else None,
        )

    def ask(self, question: str, outputs: list[str], **kw: Any) -> tuple[Trace, ScriptedBackend]:
        backend = ScriptedBackend(list(outputs))
        return self.agent(backend, **kw).run(question), backend


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    root = tmp_path / "ws"
    docs, notes = root / "Documents", root / "Notes"
    docs.mkdir(parents=True)
    notes.mkdir()
    (docs / "todo.md").write_text("Buy milk. Call Anna about the boat.\n", encoding="utf-8")
    (docs / "shop.md").write_text("Eggs, bread, coffee.\n", encoding="utf-8")
    conn = open_memory_db(tmp_path / "memory.db")
    confirmer = ScriptedConfirmationHandler([])
    executor = build_tool_executor(
        conn, notes_folder=notes, watched_folders=[docs], confirmer=confirmer
    )
    config = LearningConfig()
    config.replay_fill_slots_with_model = False
    yield World(
        root, docs, notes, conn, TraceStore(conn), WordsEmbedder(), confirmer, executor, config
    )
    conn.close()
