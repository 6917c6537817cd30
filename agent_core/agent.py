"""The agent loop: observe -> decide -> act -> observe, within a step budget.

Each model turn is one JSON action (a final answer or a tool call) constrained by a schema.
A mistake of the model (bad JSON from a server, an unknown tool, invalid arguments) is
recorded on the step and fed back as an observation so it can retry; a fault of ours raises,
after the trace so far has been saved. Every run is saved as a :class:`Trace`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent_core.actions import CALL, FINAL, ActionError, AnswerStream, action_schema, parse_action
from agent_core.prompting import Passage, PromptBuilder, Turn, observation_message
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
    ) -> None:
        self.backend = backend
        self.executor = executor
        self.traces = traces
        self.builder = builder
        self.settings = settings
        self.max_steps = max_steps
        self.retriever = retriever
        self.lessons = lessons

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
        try:
            self._run(trace, tools, history, on_text, on_event, cancel)
        except BaseException as exc:
            trace.status = "error"
            trace.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            trace.duration_ms = (time.perf_counter() - started) * 1000
            trace.prompt_tokens = sum(s.prompt_tokens for s in trace.steps)
            trace.completion_tokens = sum(s.completion_tokens for s in trace.steps)
            self.traces.save(trace)
        return trace

    def _run(
        self,
        trace: Trace,
        tools: list[Any],
        history: Sequence[Turn],
        on_text: Callable[[str], None] | None,
        on_event: EventCallback | None,
        cancel: threading.Event | None,
    ) -> None:
        emit = on_event or (lambda event: None)
        passages = self.retriever.retrieve(trace.question) if self.retriever else []
        built = self.builder.build(
            trace.question,
            tools=tools,
            lessons=list(self.lessons()),
            history=history,
            passages=passages,
        )
        trace.prompt_version = built.prompt_version
        trace.prompt_blocks = built.block_tokens
        trace.dropped_history = built.dropped_turns
        if built.passages:
            trace.extra["sources"] = [p.to_dict() for p in built.passages]
        if built.dropped_passages:
            trace.extra["dropped_passages"] = built.dropped_passages
        messages = list(built.messages)
        any_action = action_schema(tools)
        answer_only = action_schema([])
        must_answer = False
        calls_seen: dict[str, str] = {}  # (tool, arguments) -> observation, to stop loops

        for idx in range(self.max_steps):
            if cancel is not None and cancel.is_set():
                trace.status = "cancelled"
                return
            emit(AgentEvent("step_started", idx))
            # Small models can call tools forever: the last step, and the step after a
            # repeated call, may only answer (from what has been gathered so far).
            schema = answer_only if must_answer or idx == self.max_steps - 1 else any_action
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
            step.tool_name, step.tool_args = action.tool, action.arguments
            call_key = json.dumps([action.tool, action.arguments], sort_keys=True, default=str)
            if call_key in calls_seen:
                step.kind = "repeat"
                step.observation = (
                    f"You already called {action.tool} with these arguments; its result was:\n"
                    f"{calls_seen[call_key]}\nUse it to answer now."
                )
                must_answer = True
                messages += [
                    {"role": "assistant", "content": result.text},
                    observation_message(action.tool, step.observation),
                ]
                emit(AgentEvent("step_finished", idx, {"kind": step.kind}))
                continue
            emit(AgentEvent("tool_call", idx, {"tool": action.tool, "arguments": action.arguments}))
            outcome: ToolOutcome = self.executor.call(action.tool, action.arguments)
            step.tool_outcome = outcome.to_dict()
            step.observation = outcome.observation
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
                {"role": "assistant", "content": result.text},
                observation_message(action.tool, outcome.observation),
            ]
            emit(AgentEvent("step_finished", idx, {"kind": step.kind}))

        trace.status = "budget_exhausted"
        trace.final_answer = (
            f"I could not finish within {self.max_steps} steps. "
            "Try a simpler question, or raise [agent] max_steps in config.toml."
        )
