"""The agent loop: observe -> decide -> act -> observe, within a step budget.

Each model turn is one JSON action (a final answer or a tool call) constrained by a schema.
A mistake of the model (bad JSON from a server, an unknown tool, invalid arguments) is
recorded on the step and fed back as an observation so it can retry; a fault of ours raises,
after the trace so far has been saved. Every run is saved as a :class:`Trace`.

The learning loop joins through one seam, :class:`Learning`: before a run it *recalls* what
the user taught (verified facts from corrections, workflows of similar tasks, a script to
replay); after the run it sees the trace. A strong match with a correction answers with the
corrected answer, citing it, without a model call. A replay plan stands in for the model's
planning calls while its checks hold; on the first failed check the model takes over, with
the workflow already in its prompt.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent_core.actions import (
    CALL,
    FINAL,
    Action,
    ActionError,
    AnswerStream,
    action_schema,
    parse_action,
)
from agent_core.prompting import (
    Guidance,
    Passage,
    PromptBuilder,
    SystemPrompt,
    Turn,
    VerifiedFact,
    final_answer_json,
    observation_message,
)
from agent_core.traces import Step, Trace, TraceStore
from models.chat import ChatBackend, GenerationSettings
from tools.executor import ToolExecutor, ToolOutcome


class Retriever(Protocol):
    """Finds passages for a question (the knowledge base, later experiences)."""

    def retrieve(self, question: str) -> list[Passage]: ...


@dataclass(frozen=True)
class AgentEvent:
    """Progress of a run, for a UI: a step started, a tool is being called, a step ended."""

    kind: str  # step_started | tool_call | tool_result | step_finished
    step: int
    data: dict[str, Any] = field(default_factory=dict)


EventCallback = Callable[[AgentEvent], None]


@dataclass(frozen=True)
class PlannedCall:
    """The next call of a replay plan, or why its preconditions failed (``failure``)."""

    tool: str = ""
    arguments: Any = None
    failure: str | None = None


class ReplayPlan(Protocol):
    """A recorded script adapted to this task; it replaces the model's planning calls."""

    @property
    def info(self) -> dict[str, Any]:
        """What the trace records about the replay (experience id, slots ...)."""
        ...

    def next_call(self) -> PlannedCall | None:
        """The next call with its preconditions checked; None when the script is done."""
        ...

    def check(self, outcome: ToolOutcome) -> str | None:
        """The postconditions of the call just made: None when they hold, else why not."""
        ...


@dataclass
class Recall:
    """What the learning loop brings to one question."""

    facts: list[VerifiedFact] = field(default_factory=list)  # into the prompt, best first
    answer: VerifiedFact | None = None  # a strong match: answer with it, citing it
    guidance: list[Guidance] = field(default_factory=list)
    plan: ReplayPlan | None = None
    # For the trace: e.g. "learning_calls", model calls the learning loop made for this run.
    extra: dict[str, Any] = field(default_factory=dict)


class Learning(Protocol):
    def recall(
        self, question: str, *, history: Sequence[Turn], executor: ToolExecutor
    ) -> Recall: ...

    def after_run(self, trace: Trace, recall: Recall) -> None:
        """Called once the trace is saved (counters, new experiences)."""
        ...


class Agent:
    def __init__(
        self,
        backend: ChatBackend,
        executor: ToolExecutor,
        traces: TraceStore,
        builder: PromptBuilder,
        settings: GenerationSettings,
        *,
        max_steps: int = 6,
        retriever: Retriever | None = None,
        lessons: Callable[[], Sequence[str]] = lambda: (),
        learning: Learning | None = None,
        system_prompt: Callable[[], SystemPrompt | None] | None = None,
    ) -> None:
        """``system_prompt`` gives the prompt version in force (text and lessons), looked up
        on every run so an adopted or rolled-back version applies at once; when it gives
        None, the builder's own text and ``lessons`` are used."""
        self.backend = backend
        self.executor = executor
        self.traces = traces
        self.builder = builder
        self.settings = settings
        self.max_steps = max_steps
        self.retriever = retriever
        self.lessons = lessons
        self.learning = learning
        self.system_prompt = system_prompt

    def run(
        self,
        question: str,
        *,
        history: Sequence[Turn] = (),
        conversation_id: str | None = None,
        on_text: Callable[[str], None] | None = None,
        on_event: EventCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> Trace:
        started = time.perf_counter()
        tools = list(self.executor.registry)
        trace = Trace(
            question=question,
            model=self.backend.info.to_dict(),
            settings=self.settings.to_dict(),
            conversation_id=conversation_id,
        )
        recall: Recall | None = None
        try:
            recall = self._recall(trace, history, cancel)
            self._run(trace, tools, history, recall, on_text, on_event, cancel)
        except BaseException as exc:
            trace.status = "error"
            trace.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            trace.duration_ms = (time.perf_counter() - started) * 1000
            trace.prompt_tokens = sum(s.prompt_tokens for s in trace.steps)
            trace.completion_tokens = sum(s.completion_tokens for s in trace.steps)
            # Calls the agent made, plus any the learning loop made for this run.
            trace.extra["model_calls"] = sum(1 for s in trace.steps if s.response_schema) + len(
                trace.extra.get("learning_calls", [])
            )
            self.traces.save(trace)
        if self.learning is not None and recall is not None:
            self.learning.after_run(trace, recall)
        return trace

    def _recall(
        self, trace: Trace, history: Sequence[Turn], cancel: threading.Event | None
    ) -> Recall:
        if self.learning is None or (cancel is not None and cancel.is_set()):
            return Recall()
        recall = self.learning.recall(trace.question, history=history, executor=self.executor)
        trace.extra.update(recall.extra)
        if recall.answer is not None:
            trace.extra["correction"] = recall.answer.to_dict()
        if recall.plan is not None:
            trace.extra["replayed_from"] = recall.plan.info.get("experience_id")
            trace.extra["replay"] = {**recall.plan.info, "replayed_steps": [], "fell_back": None}
        return recall

    def _answer_from_correction(
        self,
        trace: Trace,
        fact: VerifiedFact,
        on_text: Callable[[str], None] | None,
        emit: EventCallback,
    ) -> None:
        """A strong match with a correction: say the corrected answer and where it is from."""
        answer = fact.cited_answer
        emit(AgentEvent("step_started", 0))
        trace.steps.append(
            Step(
                idx=0,
                kind="final",
                messages=[],
                response_schema=None,  # no model call
                settings=self.settings.to_dict(),
                started_at=time.time(),
                raw_output=final_answer_json(answer),
                action=Action(FINAL, answer=answer).to_dict(),
            )
        )
        if on_text is not None:
            on_text(answer)
        trace.status = "ok"
        trace.final_answer = answer
        emit(AgentEvent("step_finished", 0, {"kind": "final", "correction": fact.correction_id}))

    def _run(
        self,
        trace: Trace,
        tools: list[Any],
        history: Sequence[Turn],
        recall: Recall,
        on_text: Callable[[str], None] | None,
        on_event: EventCallback | None,
        cancel: threading.Event | None,
    ) -> None:
        emit = on_event or (lambda event: None)
        system = self.system_prompt() if self.system_prompt is not None else None
        if recall.answer is not None:
            trace.prompt_version = system.version if system else self.builder.version
            if cancel is not None and cancel.is_set():
                trace.status = "cancelled"
                return
            self._answer_from_correction(trace, recall.answer, on_text, emit)
            return
        passages = self.retriever.retrieve(trace.question) if self.retriever else []
        built = self.builder.build(
            trace.question,
            tools=tools,
            lessons=list(self.lessons()),
            history=history,
            passages=passages,
            facts=recall.facts,
            guidance=recall.guidance,
            system=system,
        )
        trace.prompt_version = built.prompt_version
        trace.prompt_blocks = built.block_tokens
        trace.dropped_history = built.dropped_turns
        if built.passages:
            trace.extra["sources"] = [p.to_dict() for p in built.passages]
        if built.dropped_passages:
            trace.extra["dropped_passages"] = built.dropped_passages
        if built.facts:
            trace.extra["corrections"] = [f.to_dict() for f in built.facts]
        if built.guidance:
            trace.extra["guidance"] = [g.experience_id for g in built.guidance]
        if built.dropped_facts or built.dropped_guidance:
            trace.extra["dropped_learning"] = {
                "facts": built.dropped_facts,
                "guidance": built.dropped_guidance,
            }
        messages = list(built.messages)
        any_action = action_schema(tools)
        answer_only = action_schema([])
        must_answer = False
        script_done = False  # a replayed script ran to its end: only the answer is left
        calls_seen: dict[str, str] = {}  # (tool, arguments) -> observation, to stop loops
        plan = recall.plan
        replay = trace.extra.get("replay")

        for idx in range(self.max_steps):
            if cancel is not None and cancel.is_set():
                trace.status = "cancelled"
                return
            emit(AgentEvent("step_started", idx))
            planned = plan.next_call() if plan is not None and idx < self.max_steps - 1 else None
            if plan is not None and (planned is None or planned.failure):
                if planned is not None and replay is not None:
                    replay["fell_back"] = {"step": idx, "reason": planned.failure}
                # Done, the recorded run answered next: so does the model. Broken: the
                # model takes over (the workflow is in its prompt) and may call tools.
                script_done = planned is None
                plan, planned = None, None
            if plan is not None and planned is not None:
                step = Step(
                    idx=idx,
                    kind="",
                    messages=list(messages),
                    response_schema=None,  # no model call: the step comes from the script
                    settings=self.settings.to_dict(),
                    started_at=time.time(),
                )
                trace.steps.append(step)
                action = Action(CALL, tool=planned.tool, arguments=planned.arguments)
                step.raw_output = json.dumps(
                    {"action": CALL, "tool": action.tool, "arguments": action.arguments},
                    ensure_ascii=False,
                )
                step.action = action.to_dict()
                outcome = self._call_tool(trace, step, action, messages, calls_seen, emit)
                if replay is not None:
                    replay["replayed_steps"].append(idx)
                failure = plan.check(outcome) if outcome is not None else "a repeated call"
                if failure is not None:
                    if replay is not None:
                        replay["fell_back"] = {"step": idx, "reason": failure}
                    plan = None
                must_answer = outcome is None
                continue
            # Small models can call tools forever: the last step, and the step after a
            # repeated call, may only answer (from what has been gathered so far).
            last = idx == self.max_steps - 1
            schema = answer_only if must_answer or script_done or last else any_action
            must_answer = False
            stream = AnswerStream()
            step = Step(
                idx=idx,
                kind="",
                messages=list(messages),
                response_schema=schema,
                settings=self.settings.to_dict(),
                started_at=time.time(),
            )
            trace.steps.append(step)

            def on_piece(piece: str, stream: AnswerStream = stream) -> None:
                text = stream.feed(piece)
                if text and on_text is not None:
                    on_text(text)

            result = self.backend.chat(
                messages, self.settings, response_schema=schema, on_text=on_piece, cancel=cancel
            )
            step.raw_output = result.text
            step.prompt_tokens = result.prompt_tokens
            step.completion_tokens = result.completion_tokens
            step.duration_ms = result.duration_ms
            step.first_token_ms = result.first_token_ms
            step.finish_reason = result.finish_reason

            if result.cancelled:
                step.kind = "cancelled"
                trace.status = "cancelled"
                trace.final_answer = stream.answer or None
                emit(AgentEvent("step_finished", idx, {"kind": step.kind}))
                return
            try:
                action = parse_action(result.text)
            except ActionError as exc:
                if result.finish_reason == "length" and stream.answer:
                    # The answer ran past max_tokens: keep what was said, and say it was cut.
                    step.kind = "truncated"
                    trace.status = "ok"
                    trace.final_answer = stream.answer + " [...]"
                    trace.extra["truncated"] = True
                    emit(AgentEvent("step_finished", idx, {"kind": step.kind}))
                    return
                step.kind = "mistake"
                step.error = str(exc)
                step.observation = str(exc)
                messages += [
                    {"role": "assistant", "content": result.text},
                    {"role": "user", "content": f"Error: {exc}"},
                ]
                emit(AgentEvent("step_finished", idx, {"kind": step.kind, "error": str(exc)}))
                continue
            step.action = action.to_dict()

            if action.kind == FINAL:
                step.kind = "final"
                trace.status = "ok"
                trace.final_answer = action.answer
                emit(AgentEvent("step_finished", idx, {"kind": step.kind}))
                return

            assert action.kind == CALL
            if self._call_tool(trace, step, action, messages, calls_seen, emit) is None:
                must_answer = True

        trace.status = "budget_exhausted"
        trace.final_answer = (
            f"I could not finish within {self.max_steps} steps. "
            "Try a simpler question, or raise [agent] max_steps in config.toml."
        )

    def _call_tool(
        self,
        trace: Trace,
        step: Step,
        action: Action,
        messages: list[dict[str, str]],
        calls_seen: dict[str, str],
        emit: EventCallback,
    ) -> ToolOutcome | None:
        """Run the step's call through the executor (validation, permission, audit) and feed
        the observation back; None when it repeats an earlier call (which is not run again)."""
        idx = step.idx
        step.tool_name, step.tool_args = action.tool, action.arguments
        call_key = json.dumps([action.tool, action.arguments], sort_keys=True, default=str)
        if call_key in calls_seen:
            step.kind = "repeat"
            step.observation = (
                f"You already called {action.tool} with these arguments; its result was:\n"
                f"{calls_seen[call_key]}\nUse it to answer now."
            )
            messages += [
                {"role": "assistant", "content": step.raw_output},
                observation_message(action.tool, step.observation),
            ]
            emit(AgentEvent("step_finished", idx, {"kind": step.kind}))
            return None
        emit(AgentEvent("tool_call", idx, {"tool": action.tool, "arguments": action.arguments}))
        outcome: ToolOutcome = self.executor.call(action.tool, action.arguments, trace_id=trace.id)
        step.tool_outcome = outcome.to_dict()
        step.observation = outcome.observation
        step.duration_ms = step.duration_ms or outcome.duration_ms
        calls_seen[call_key] = outcome.observation
        step.kind = (
            "tool_call"
            if outcome.status not in ("unknown_tool", "invalid_arguments")
            else "mistake"
        )
        if step.kind == "mistake":
            step.error = outcome.observation
        emit(AgentEvent("tool_result", idx, {"tool": action.tool, "status": outcome.status}))
        messages += [
            {"role": "assistant", "content": step.raw_output},
            observation_message(action.tool, outcome.observation),
        ]
        emit(AgentEvent("step_finished", idx, {"kind": step.kind}))
        return outcome
