"""``Learning``: the learning loop as one service, for the composition root, the CLI and the
GUI. It owns nothing heavy: the embedder, the chat backend and the tools are handed in as
callables and built only when a piece needs them (``rate`` never loads a model).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_core.config import LearningConfig
from agent_core.learning.errors import ExperienceNotFoundError
from agent_core.learning.evaluation import Evaluator
from agent_core.learning.experiences import Experience, ExperienceStore
from agent_core.learning.export import export_jsonl
from agent_core.learning.feedback import Correction, FeedbackStore, Rating
from agent_core.learning.forget import ForgetReport, Forgetter
from agent_core.learning.judge import JudgeBackend, ModelJudge, judge_model
from agent_core.learning.lessons import Lesson, LessonDistiller, LessonStore
from agent_core.learning.memory import LearningMemory, ModelSlotFiller
from agent_core.learning.refine import RefinementResult, RefinementScheduler, Refiner
from agent_core.learning.replay import LIVE, MODEL, ReplayReport, replay_trace
from agent_core.learning.similarity import EmbedderSource, QuestionEncoder
from agent_core.learning.versions import PromptVersion, PromptVersionStore
from agent_core.prompting import PromptBuilder, SystemPrompt
from agent_core.traces import Trace, TraceStore
from models.chat import ChatBackend, GenerationSettings
from models.errors import JackdawError
from tools.executor import ToolExecutor

log = logging.getLogger("jackdaw.learning")

if TYPE_CHECKING:
    import sqlite3

    from agent_core.services import Services


class Learning:
    def __init__(
        self,
        conn: sqlite3.Connection,
        traces: TraceStore,
        config: LearningConfig,
        *,
        embedder: EmbedderSource = None,
        executor: Callable[[], ToolExecutor] | None = None,
        backend: Callable[[], ChatBackend] | None = None,
        builder: Callable[[], PromptBuilder] | None = None,
        seed: int = 42,
        max_steps: int = 6,
        base_system_text: str | None = None,
        judge: Callable[[], ChatBackend] | None = None,
    ) -> None:
        self.conn = conn
        self.traces = traces
        self.config = config
        self.encoder = QuestionEncoder(embedder)
        self._executor = executor
        self._backend = backend
        self._builder = builder
        self.seed = seed
        self.max_steps = max_steps
        self._base_system_text = base_system_text
        self._judge = judge

    @classmethod
    def from_services(cls, services: Services) -> Learning:
        """Everything from the composition root; the embedder is ``services.embedder`` when
        it has one, else the default MiniLM GGUF, loaded on first use."""

        def embedder() -> Any:
            wired: Any = services  # the knowledge base's embedder, once the root has one
            if hasattr(type(wired), "embedder") or "embedder" in vars(wired):
                return wired.embedder
            from models.llama_embedder import LlamaCppEmbedder
            from models.minilm_gguf import default_embedding_gguf

            own = LlamaCppEmbedder(default_embedding_gguf(services.paths.models_dir))
            learning._own_embedder = own
            return own

        learning = cls(
            services.memory,
            services.traces,
            services.config.learning,
            embedder=embedder,
            executor=lambda: services.tool_executor,
            backend=lambda: services.chat_backend,
            builder=lambda: services.agent.builder,
            seed=services.config.model.seed,
            max_steps=services.config.agent.max_steps,
            judge=_judge_source(services),
        )
        return learning

    _own_embedder: Any = None

    def close(self) -> None:
        if self._own_embedder is not None:
            self._own_embedder.close()
            self._own_embedder = None
        if isinstance(self._judge, JudgeBackend):
            self._judge.close()

    # -- the stores ------------------------------------------------------------------------------
    @cached_property
    def feedback(self) -> FeedbackStore:
        return FeedbackStore(self.conn, self.encoder)

    @cached_property
    def experiences(self) -> ExperienceStore:
        return ExperienceStore(self.conn, self.encoder)

    @cached_property
    def lessons(self) -> LessonStore:
        return LessonStore(self.conn)

    @cached_property
    def versions(self) -> PromptVersionStore:
        return PromptVersionStore(self.conn, self._base_system_text)

    @cached_property
    def memory(self) -> LearningMemory:
        """The agent's hook (``Agent(learning=...)``)."""
        filler = _LazySlotFiller(self._backend, self.seed) if self._backend else None
        judge = ModelJudge(self._judge, self.seed) if self._judge else None
        return LearningMemory(
            self.feedback,
            self.experiences,
            self.encoder,
            self.config,
            slot_filler=filler,
            judge=judge,
        )

    def active_prompt(self) -> SystemPrompt:
        """The agent's ``system_prompt`` hook: the prompt version in force."""
        return self.versions.active_prompt()

    # -- feedback --------------------------------------------------------------------------------
    def rate(self, trace_id: str, up: bool, comment: str = "") -> Rating:
        """Rate a run. Up: the run may teach an experience (even one that did not verify by
        itself). Down: the experiences it taught or replayed are demoted (a failure each,
        once per run; one that failed ``RETIRE_AFTER_FAILURES`` times is retired)."""
        trace = self.traces.get(trace_id)
        already_unhappy = self._unhappy(trace.id)
        rating = self.feedback.rate(trace, up, comment)
        if up:
            if self._executor is not None:
                self.memory.learn_from(trace, self._executor().registry, rated_up=True)
        elif not already_unhappy:
            self._demote(trace)
        if not up:
            self._withdraw_confirmation(trace)
        return rating

    def correct(self, trace_id: str, answer: str, note: str = "") -> Correction:
        """Correct a run's answer; the next similar question gets it at once, and what the
        run taught or replayed is demoted as for a down-rating."""
        trace = self.traces.get(trace_id)
        already_unhappy = self._unhappy(trace.id)
        correction = self.feedback.correct(
            trace, answer, note, same_question=max(0.97, self.config.correction_strong_similarity)
        )
        if not already_unhappy:
            self._demote(trace)
        self._withdraw_confirmation(trace)
        return correction

    def _withdraw_confirmation(self, trace: Trace) -> None:
        """A run answered with an up-rated answer went wrong: that rating no longer holds
        (a down-rating of the confirmed run supersedes it, saying why)."""
        used = trace.extra.get("correction")
        if not isinstance(used, dict) or used.get("kind") != "confirmed":
            return
        for rating in self.feedback.ratings(history=False):
            if rating.id == used.get("correction_id") and rating.up:
                source = self.traces.get(rating.trace_id)
                self.feedback.rate(
                    source, False, f"withdrawn: its answer to run {trace.id} was not right"
                )

    def _unhappy(self, trace_id: str) -> bool:
        """The user already said this run went wrong (a down-rating or a correction)."""
        return any(not r.up for r in self.feedback.ratings(trace_id)) or bool(
            self.feedback.corrections(history=True, trace_id=trace_id)
        )

    def _demote(self, trace: Trace) -> list[Experience]:
        """One failure for each experience ``trace`` taught or replayed."""
        ids = list(self.experiences.from_trace(trace.id))
        replayed = trace.extra.get("replayed_from")
        if replayed and replayed not in ids:
            ids.append(replayed)
        demoted = []
        for experience_id in ids:
            try:
                demoted.append(self.experiences.record_failure(experience_id))
            except ExperienceNotFoundError:
                continue  # forgotten meanwhile
        return demoted

    def corrections(
        self, *, history: bool = False, trace_id: str | None = None
    ) -> list[Correction]:
        return self.feedback.corrections(history=history, trace_id=trace_id)

    def ratings(self, trace_id: str | None = None) -> list[Rating]:
        return self.feedback.ratings(trace_id)

    # -- experiences, lessons --------------------------------------------------------------------
    def experience(self, experience_id: str) -> Experience:
        return self.experiences.get(experience_id)

    def experience_list(self) -> list[Experience]:
        return self.experiences.all()

    def lesson_list(self) -> list[Lesson]:
        return self.lessons.all()

    def retire_lesson(self, lesson_id: str) -> Lesson:
        return self.lessons.retire(lesson_id)

    # -- replay ----------------------------------------------------------------------------------
    def replay(
        self, trace_id: str, *, mode: str = LIVE, allow_side_effects: bool = False
    ) -> ReplayReport:
        trace = self.traces.get(trace_id)
        return replay_trace(
            trace,
            mode=mode,
            executor=self._executor() if mode == LIVE and self._executor else None,
            backend=self._backend() if mode == MODEL and self._backend else None,
            allow_side_effects=allow_side_effects,
        )

    # -- refinement ------------------------------------------------------------------------------
    @cached_property
    def refiner(self) -> Refiner:
        def evaluator() -> Evaluator:
            if self._backend is None or self._executor is None or self._builder is None:
                raise RuntimeError("refinement needs the chat backend, tools and prompt builder")
            settings = GenerationSettings(
                temperature=0.0, seed=self.seed, max_tokens=self.config.eval_max_tokens
            )
            return Evaluator(
                self._backend(),
                self._executor().registry,
                self._builder(),
                settings,
                max_steps=self.max_steps,
            )

        def distiller() -> LessonDistiller | None:
            return LessonDistiller(self._backend(), seed=self.seed) if self._backend else None

        def count_tokens(text: str) -> int:
            if self._backend is None:
                return len(text.split())
            return self._backend().count_tokens(text)

        return Refiner(
            self.conn,
            traces=self.traces,
            feedback=self.feedback,
            lessons=self.lessons,
            versions=self.versions,
            evaluator=evaluator,
            config=self.config,
            count_tokens=count_tokens,
            distiller=distiller,
        )

    def refine(
        self,
        *,
        cancel: threading.Event | None = None,
        candidate: PromptVersion | None = None,
        distill: bool = True,
    ) -> RefinementResult:
        return self.refiner.refine(cancel=cancel, candidate=candidate, distill=distill)

    def scheduler(self, **kwargs: Any) -> RefinementScheduler:
        """The idle-time refinement job (the app calls ``.start()`` and ``.shutdown()``)."""

        def last_activity() -> float | None:
            row = self.conn.execute("SELECT MAX(created_at) FROM traces").fetchone()
            return row[0] if row else None

        self._scheduler = RefinementScheduler(
            self.refiner, self.config, last_activity=last_activity, **kwargs
        )
        return self._scheduler

    _scheduler: RefinementScheduler | None = None

    def refinement_schedule(self) -> dict[str, Any]:
        """The idle refinement schedule for the Learning panel: ``scheduled`` (the app's job
        runs), ``next_run_at``, ``why_not`` (now), ``last_run`` (its status, scores and
        reason; a run a crash stopped shows ``interrupted``)."""
        scheduler = self._scheduler or self.scheduler()
        return scheduler.status()

    def prepare_judge(self) -> None:
        """Join and check the judge's model file ahead of its first judgement (the app calls
        this in a worker once the chat model is loaded): checking 1.1 GB takes ~3 s, joining it
        the first time ~8 s more, which the first judged question would otherwise wait for."""
        if isinstance(self._judge, JudgeBackend):
            self._judge.locate()

    def judge_status(self) -> str:
        """Who judges whether what the user taught answers a question asked in other words,
        in a line for the Learning panel (and what to do when nobody does)."""
        setting = self.config.judge_model.strip().lower()
        if "memory" in vars(self) and self.memory.judge is None and self._judge is not None:
            return "Questions in other words: the judge is off for this session (its model failed)"
        if isinstance(self._judge, JudgeBackend):
            from models.library import name_from_filename

            path = self._judge.path
            return f"Questions in other words: judged by {name_from_filename(path or 'a model')}"
        if self._judge is not None:
            return "Questions in other words: judged by the chat model"
        if setting in ("", "off"):
            return 'Questions in other words: not judged ([learning] judge_model = "off")'
        return (
            "Questions in other words: no judge installed, so what you taught reaches only "
            "questions asked nearly the same way (add one: jackdaw models pull "
            "qwen2.5-coder-1.5b)"
        )

    # -- prompt versions -------------------------------------------------------------------------
    def prompt_versions(self) -> list[PromptVersion]:
        return self.versions.all()

    def prompt_version(self, version_id: str) -> PromptVersion:
        return self.versions.get(version_id)

    def rollback(self, version_id: str) -> PromptVersion:
        return self.versions.rollback(version_id)

    # -- export, forget --------------------------------------------------------------------------
    def export(self, path: str | Path, fmt: str) -> dict[str, Any]:
        return export_jsonl(Path(path), fmt, self.traces, self.feedback)

    def forget(self, kind: str, item_id: str) -> ForgetReport:
        return Forgetter(self.conn, self.traces, self.feedback, self.versions).forget(kind, item_id)


class _LazySlotFiller:
    """The model slot filler over whatever model is loaded now (the GUI may swap it)."""

    def __init__(self, backend: Callable[[], ChatBackend], seed: int) -> None:
        self._backend = backend
        self._seed = seed

    def fill(
        self, task: str, experience: Experience
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        return ModelSlotFiller(self._backend(), seed=self._seed).fill(task, experience)


def _judge_source(services: Services) -> Callable[[], ChatBackend] | None:
    """The model that judges whether a learnt fact answers a question (``[learning]
    judge_model``; :mod:`agent_core.learning.judge`), or None: off, or "auto" without the
    model installed. The chat model itself when it is the same file."""
    setting = services.config.learning.judge_model
    if setting.strip().lower() in ("", "off"):
        return None
    if setting.strip().lower() == "chat":
        return lambda: services.chat_backend
    model = services.config.model
    try:
        found = judge_model(setting, services.paths.models_dir)
    except JackdawError as exc:
        log.warning("no learning judge: %s", exc)
        return None
    if found is None:
        return None
    path, locate = found
    if model.backend == "local" and path.resolve() == _chat_model_path(services):
        return lambda: services.chat_backend  # one model in memory, not two
    return JudgeBackend(locate, n_threads=model.n_threads, gpu_layers=model.gpu_layers, path=path)


def _chat_model_path(services: Services) -> Path | None:
    try:
        return services.chat_model_path.resolve()
    except JackdawError:  # said when a question is asked
        return None
