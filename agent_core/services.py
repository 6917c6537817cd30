"""The composition root: builds every service from config, lazily, in one place.

The CLI and the GUI talk only to :class:`Services`. Heavy things (the model) are built on
first use, so ``jackdaw traces list`` never loads a model.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_core.agent import Agent
from agent_core.config import Config, Paths
from agent_core.conversations import ConversationStore
from agent_core.memory_db import open_memory_db
from agent_core.prompting import PromptBuilder
from agent_core.protocols import protocol_for
from agent_core.retrieval import KnowledgeRetriever
from agent_core.session import ChatSession
from agent_core.traces import TraceStore
from models.chat import ChatBackend, GenerationSettings
from models.discovery import resolve_chat_model
from models.embedding import Embedder
from models.errors import JackdawError
from models.secrets import SecretStore
from tools.base import ToolRegistry
from tools.confirm import ConfirmationHandler
from tools.executor import ToolExecutor

if TYPE_CHECKING:
    from agent_core.learning import Learning
    from knowledge import KnowledgeBase
    from knowledge.watcher import FolderWatcher

log = logging.getLogger("jackdaw")


class Services:
    def __init__(
        self,
        paths: Paths | None = None,
        config: Config | None = None,
        *,
        model_override: str | None = None,
    ) -> None:
        self.paths = paths or Paths.from_env()
        self.config = config or Config.load(self.paths.config_file)
        # Who answers when a tool asks for permission; set by the CLI or the GUI.
        self.confirmer: ConfirmationHandler | None = None
        self.watcher: FolderWatcher | None = None  # see start_watching
        self._watch_schedule: Any = None
        if model_override:
            self.config.model.path = str(Path(model_override).expanduser())
            self.config.model.backend = "local"

    def save_config(self) -> None:
        self.config.save(self.paths.config_file)

    # -- storage -----------------------------------------------------------------------------
    @cached_property
    def memory(self) -> sqlite3.Connection:
        return open_memory_db(self.paths.memory_db)

    @cached_property
    def traces(self) -> TraceStore:
        return TraceStore(self.memory)

    @cached_property
    def conversations(self) -> ConversationStore:
        return ConversationStore(self.memory)

    @cached_property
    def secrets(self) -> SecretStore:
        return SecretStore()

    # -- tools -------------------------------------------------------------------------------
    @property
    def tool_registry(self) -> ToolRegistry:
        return self.tool_executor.registry

    @cached_property
    def tool_executor(self) -> ToolExecutor:
        """Built-in tools behind the permission policy and the audit log.

        Whatever asks goes to ``self.confirmer`` (the CLI's terminal prompt, the GUI's
        dialog); with none set, it is denied.
        """
        from agent_core.tool_wiring import tool_executor_from_config

        return tool_executor_from_config(
            self.config,
            self.paths,
            self.memory,
            confirmer=self.confirmer,
            search=lambda query, k: self.knowledge.search(query, k),
        )

    # -- knowledge ---------------------------------------------------------------------------
    @cached_property
    def embedder(self) -> Embedder:
        """The configured GGUF embedding model, or all-MiniLM-L6-v2 converted once."""
        from models.llama_embedder import LlamaCppEmbedder
        from models.minilm_gguf import default_embedding_gguf

        configured = self.config.knowledge.embedding_model
        path = (
            Path(configured).expanduser()
            if configured
            else default_embedding_gguf(self.paths.models_dir)
        )
        return LlamaCppEmbedder(path)

    @cached_property
    def knowledge(self) -> KnowledgeBase:
        from knowledge import KnowledgeSettings, open_knowledge_base

        kb = open_knowledge_base(
            self.paths.knowledge_db,
            self.embedder,
            KnowledgeSettings.from_config(self.config.knowledge),
        )
        kb.sync_folders(self.config.knowledge.watched_folders)
        return kb

    def start_watching(
        self,
        on_batch: Callable[..., None] | None = None,
        on_status: Callable[[str, str], None] | None = None,
        on_error: Callable[..., None] | None = None,
        reconcile_on_start: bool = True,
    ) -> FolderWatcher:
        """Keep the knowledge base fresh while the app runs: a watchdog observer on every
        watched folder (changes are noted, settled, ingested as a batch), a reconcile scan at
        start and every ``[knowledge] reconcile_minutes``. Idempotent; loads the embedder."""
        if self.watcher is None:
            from apscheduler.schedulers.background import BackgroundScheduler

            from knowledge.watcher import FolderWatcher, add_reconcile_job

            watcher = FolderWatcher(
                self.knowledge,
                settle_seconds=self.config.knowledge.settle_seconds,
                on_batch=on_batch,
                on_status=on_status,
                on_error=on_error,
                reconcile_on_start=reconcile_on_start,
            )
            watcher.start()
            scheduler = BackgroundScheduler(daemon=True)
            add_reconcile_job(scheduler, watcher, self.config.knowledge.reconcile_minutes)
            scheduler.start()
            self.watcher, self._watch_schedule = watcher, scheduler
        return self.watcher

    def stop_watching(self) -> None:
        if self._watch_schedule is not None:
            self._watch_schedule.shutdown(wait=False)
            self._watch_schedule = None
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None

    def _knowledge_if_watching(self) -> KnowledgeBase | None:
        return self.knowledge if self.config.knowledge.watched_folders else None

    # -- models ------------------------------------------------------------------------------
    @property
    def chat_model_path(self) -> Path:
        return resolve_chat_model(self.config.model.path)

    @cached_property
    def chat_backend(self) -> ChatBackend:
        model = self.config.model
        if model.backend == "openai":
            from models.openai_backend import OpenAICompatibleBackend

            server = self.config.server
            api_key = self.secrets.get(server.api_key_name) if server.api_key_name else None
            return OpenAICompatibleBackend(
                server.base_url,
                server.model,
                api_key=api_key,
                timeout_s=server.timeout_s,
                context_size=model.n_ctx,
            )
        if model.backend != "local":
            raise JackdawError(
                f"Unknown model backend {model.backend!r}.",
                hint='Set [model] backend to "local" or "openai" in config.toml.',
            )
        from models.llama_backend import LlamaCppBackend
        from models.prompt_state import seed_folders

        return LlamaCppBackend(
            self.chat_model_path,
            n_ctx=model.n_ctx,
            n_threads=model.n_threads,
            gpu_layers=model.gpu_layers,
            state_dir=self.paths.prompt_states_dir,
            state_seeds=seed_folders(),
        )

    @property
    def generation_settings(self) -> GenerationSettings:
        model = self.config.model
        return GenerationSettings(
            temperature=model.temperature, seed=model.seed, max_tokens=model.max_answer_tokens
        )

    # -- the agent ---------------------------------------------------------------------------
    @cached_property
    def agent(self) -> Agent:
        agent_config = self.config.agent
        builder = PromptBuilder(
            count_tokens=self.chat_backend.count_tokens,
            system_budget=agent_config.system_budget_tokens,
            history_budget=agent_config.history_budget_tokens,
            retrieval_budget=agent_config.retrieval_budget_tokens,
            facts_budget=self.config.learning.facts_budget_tokens,
            guidance_budget=self.config.learning.workflows_budget_tokens,
        )
        return Agent(
            self.chat_backend,
            self.tool_executor,
            self.traces,
            builder,
            self.generation_settings,
            max_steps=agent_config.max_steps,
            retriever=KnowledgeRetriever(self._knowledge_if_watching),
            learning=self.learning.memory,
            system_prompt=self.learning.active_prompt,
            protocol=protocol_for(
                getattr(self.chat_backend, "chat_template", ""), agent_config.protocol
            ),
            answer_from_notes_at=agent_config.answer_from_notes_at,
        )

    # -- learning ----------------------------------------------------------------------------
    @cached_property
    def learning(self) -> Learning:
        """Ratings, corrections, experiences, replay, lessons, prompt versions, refinement."""
        from agent_core.learning import Learning

        return Learning.from_services(self)

    def reload_model(self) -> None:
        """Drop the loaded model and the agent on it; the next use loads the configured one."""
        self.__dict__.pop("agent", None)
        backend = self.__dict__.pop("chat_backend", None)
        if backend is not None:
            backend.close()

    def session(self, conversation_id: str | None = None) -> ChatSession:
        return ChatSession(self.agent, self.conversations, conversation_id)

    def close(self) -> None:
        """Free the model explicitly (llama-cpp-python's finaliser misbehaves at exit)."""
        learning = self.__dict__.pop("learning", None)
        if learning is not None:
            learning.close()
        self.stop_watching()
        self.reload_model()
        for name in ("knowledge", "embedder"):
            close = getattr(self.__dict__.pop(name, None), "close", None)
            if close is not None:  # an Embedder need not hold anything to free
                close()
        memory = self.__dict__.pop("memory", None)
        if memory is not None:
            memory.close()
