"""The agent loop: observe -> decide -> act -> observe, within a step budget.

Each model turn goes through the model's conversation protocol (agent_core/protocols.py): the
answer is free text, streamed; a tool call is structured and schema-constrained. Passages
from the user's files are retrieved before the first turn, so most questions about the notes
are answered in one model call. Every block, tool results included, fits the context with
room for the answer. A mistake of the model (a bad call, an unknown tool, invalid arguments)
is recorded on the step and fed back so it can retry; a fault of ours raises, after the trace
so far has been saved. Nothing internal is ever shown as the answer. Every run is saved as a
:class:`Trace`.

The learning loop joins through one seam, :class:`Learning`: before a run it *recalls* what
the user taught (verified facts from corrections, workflows of similar tasks, a script to
replay); after the run it sees the trace. A strong match with a correction answers with the
corrected answer, citing it, without a model call. A replay plan stands in for the model's
planning calls while its checks hold; on the first failed check the model takes over, with
the workflow already in its prompt.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent_core.actions import CALL, FINAL, Action
from agent_core.config import AgentConfig
from agent_core.prompting import (
    Guidance,
    Passage,
    PromptBuilder,
    SystemPrompt,
    Turn,
    VerifiedFact,
    without_copied_citations,
    without_echoed_notes,
)
from agent_core.protocols import ConversationProtocol, protocol_for
from agent_core.traces import Step, Trace, TraceStore
from models.chat import ChatBackend, GenerationSettings, Message
from models.errors import ContextTooSmallError
from tools.base import Risk
from tools.builtins import files, knowledge
from tools.executor import ToolExecutor, ToolOutcome


class Retriever(Protocol):
    """Finds passages for a question (the knowledge base, later experiences)."""

    def retrieve(self, question: str) -> list[Passage]: ...


@dataclass(frozen=True)
class AgentEvent:
    """Progress of a run, for a UI: a step started, a tool is being called, a step ended."""

    kind: str  # searched | step_started | tool_call | tool_result | step_finished
    step: int
    data: dict[str, Any] = field(default_factory=dict)


EventCallback = Callable[[AgentEvent], None]


def close_match(passages: Sequence[Passage], at: float) -> bool:
    return any(float(p.meta.get("similarity", 0.0)) >= at for p in passages)


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

    def recorded_answer(self, passages: Sequence[tuple[str, str]]) -> str | None:
        """Once the script is done: the recorded run's answer when this run saw exactly what
        that one saw (the same results and notes ``passages``), else None."""
        ...


@dataclass
class Recall:
    """What the learning loop brings to one question."""

    facts: list[VerifiedFact] = field(default_factory=list)  # into the prompt, best first
    answer: VerifiedFact | None = None  # a strong match: answer with it, citing it
    guidance: list[Guidance] = field(default_factory=list)
    plan: ReplayPlan | None = None
    # The nearest learnt fact when none goes to the model: shown to the person beside the
    # answer, never to the model (a neighbouring need's fact misleads it).
    related: VerifiedFact | None = None
    # For the trace: e.g. "learning_calls", model calls the learning loop made for this run.
    extra: dict[str, Any] = field(default_factory=dict)


class Learning(Protocol):
    def recall(
        self,
        question: str,
        *,
        history: Sequence[Turn],
        executor: ToolExecutor,
        passages: Sequence[Passage] = (),
    ) -> Recall:
        """What was learnt for ``question``; ``passages`` are the notes found for it, best
        first."""
        ...

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
        protocol: ConversationProtocol | None = None,
        answer_from_notes_at: float = AgentConfig.answer_from_notes_at,
    ) -> None:
        """``system_prompt`` gives the prompt version in force (text and lessons), looked up
        on every run so an adopted or rolled-back version applies at once; when it gives
        None, the builder's own text and ``lessons`` are used."""
        self.backend = backend
        self.executor = executor
        self.traces = traces
        # How this model takes tools: its template's native calls, or decide-then-answer.
        self.protocol = protocol or protocol_for(getattr(backend, "chat_template", ""))
        self.builder = (
            builder
            if builder.protocol == self.protocol
            else dataclasses.replace(builder, protocol=self.protocol)
        )
        # Room kept for the answer in every model call.
        self.answer_reserve = max(64, min(settings.max_tokens, backend.context_size // 4))
        self.settings = settings
        self.max_steps = max_steps
        self.retriever = retriever
        self.lessons = lessons
        self.learning = learning
        self.system_prompt = system_prompt
        # A passage this similar to the question: the first turn answers from the notes.
        self.answer_from_notes_at = answer_from_notes_at

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
        tools = self._offered_tools()
        trace = Trace(
            question=question,
            model=self.backend.info.to_dict(),
            settings=self.settings.to_dict(),
            conversation_id=conversation_id,
        )
        if history:
            trace.extra["history_turns"] = len(history)
        recall: Recall | None = None
        try:
            passages = self._retrieve(question, history)
            recall = self._recall(trace, history, passages, cancel)
            self._run(trace, tools, history, passages, recall, on_text, on_event, cancel)
        except BaseException as exc:
            trace.status = "error"
            trace.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            trace.duration_ms = (time.perf_counter() - started) * 1000
            trace.prompt_tokens = sum(s.prompt_tokens for s in trace.steps)
            trace.completion_tokens = sum(s.completion_tokens for s in trace.steps)
            # Calls the agent made, plus any the learning loop made for this run.
            trace.extra["model_calls"] = trace.extra.get("agent_model_calls", 0) + len(
                trace.extra.get("learning_calls", [])
            )
            self.traces.save(trace)
        if self.learning is not None and recall is not None:
            self.learning.after_run(trace, recall)
        return trace

    def _offered_tools(self) -> list[Any]:
        # With a retriever the notes are searched before the first turn, so the model is not
        # offered a search of its own: small models otherwise search instead of answering.
        return [
            t
            for t in self.executor.registry
            if not (self.retriever is not None and t.name in RETRIEVAL_TOOLS)
        ]

    def warm_up(self) -> None:
        """Have the backend read the start every prompt shares (the system message, with the
        tools and without them, as an answer-only turn sees it) so its state is saved for
        later runs. Backends that keep no such state do nothing."""
        prepare = getattr(self.backend, "prepare", None)
        if prepare is None:
            return
        system = self.system_prompt() if self.system_prompt is not None else None
        built = self.builder.build(
            "Hello", tools=self._offered_tools(), lessons=list(self.lessons()), system=system
        )
        prepare(built.messages, built.tool_specs)
        prepare(built.messages, None)

    def _recall(
        self,
        trace: Trace,
        history: Sequence[Turn],
        passages: Sequence[Passage],
        cancel: threading.Event | None,
    ) -> Recall:
        if self.learning is None or (cancel is not None and cancel.is_set()):
            return Recall()
        recall = self.learning.recall(
            trace.question, history=history, executor=self.executor, passages=passages
        )
        trace.extra.update(recall.extra)
        if recall.answer is not None:
            trace.extra["correction"] = recall.answer.to_dict()
        if recall.related is not None:
            trace.extra["related_fact"] = recall.related.to_dict()
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
        emit(AgentEvent("step_started", 0))
        self._answer_without_model(
            trace, 0, fact.cited_answer, on_text, emit, {"correction": fact.correction_id}
        )

    def _answer_without_model(
        self,
        trace: Trace,
        idx: int,
        answer: str,
        on_text: Callable[[str], None] | None,
        emit: EventCallback,
        event: dict[str, Any],
    ) -> None:
        trace.steps.append(
            Step(
                idx=idx,
                kind="final",
                messages=[],
                response_schema=None,  # no model call
                settings=self.settings.to_dict(),
                started_at=time.time(),
                raw_output=answer,
                action=Action(FINAL, answer=answer).to_dict(),
            )
        )
        if on_text is not None:
            on_text(answer)
        trace.status = "ok"
        trace.final_answer = answer
        emit(AgentEvent("step_finished", idx, {"kind": "final", **event}))

    def _run(
        self,
        trace: Trace,
        tools: list[Any],
        history: Sequence[Turn],
        passages: Sequence[Passage],
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
        specs = built.tool_specs
        protocol = self.protocol
        if built.passages:
            emit(
                AgentEvent(
                    "searched",
                    0,
                    {"query": trace.question, "sources": [p.source for p in built.passages]},
                )
            )
        # The notes hold a close match: the first turn answers from them, with no tools
        # offered (offered tools, the 0.5B model read the file it had just been shown).
        must_answer = close_match(built.passages, self.answer_from_notes_at)
        if must_answer:
            trace.extra["answered_from_notes"] = True
        # A question (not a task) with an answer the user gave or confirmed in the prompt:
        # answered from it too. Offered tools, the model read files past the answer ("Which
        # kind of flour ...?" -> the best loaf's oven) or fed the answer to the calculator
        # (measured: 4 of 8 such runs with tool calls went wrong, 2 of 28 without).
        if built.facts and trace.question.rstrip().endswith("?") and not must_answer:
            must_answer = True
            trace.extra["answered_from_facts"] = True
        script_done = False  # a replayed script ran to its end: only the answer is left
        calls_seen: dict[str, str] = {}  # (tool, arguments) -> observation, to stop loops
        plan = recall.plan
        replay = trace.extra.get("replay")
        trace.extra["protocol"] = protocol.name

        for idx in range(self.max_steps):
            if cancel is not None and cancel.is_set():
                trace.status = "cancelled"
                return
            emit(AgentEvent("step_started", idx))
            planned = plan.next_call() if plan is not None and idx < self.max_steps - 1 else None
            if plan is not None and (planned is None or planned.failure):
                if planned is not None and replay is not None:
                    replay["fell_back"] = {"step": idx, "reason": planned.failure}
                # Done, the recorded run answered next: so does the model, unless this run
                # saw exactly what that one saw (then its answer stands). Broken: the model
                # takes over (the workflow is in its prompt) and may call tools.
                script_done = planned is None
                recorded = None
                if script_done and not history:
                    recorded = plan.recorded_answer([(p.source, p.text) for p in built.passages])
                if recorded is not None:
                    if replay is not None:
                        replay["answer"] = "recorded"
                    self._answer_without_model(trace, idx, recorded, on_text, emit, {})
                    return
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
                step.raw_output = protocol.render_call(action.tool, action.arguments)
                step.action = action.to_dict()
                outcome = self._call_tool(trace, step, action, messages, calls_seen, emit, specs)
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
            allow_tools = bool(tools) and not (must_answer or script_done or last)
            must_answer = False
            self._fit(trace, messages, specs)
            step = Step(
                idx=idx,
                kind="",
                messages=list(messages),
                response_schema=protocol.descriptor(tools, allow_tools),
                settings=self.settings.to_dict(),
                started_at=time.time(),
            )
            trace.steps.append(step)
            reply = protocol.turn(
                self.backend,
                messages,
                tools,
                self.settings,
                allow_tools=allow_tools,
                on_text=on_text,
                cancel=cancel,
            )
            trace.extra["agent_model_calls"] = trace.extra.get("agent_model_calls", 0) + len(
                reply.results
            )
            step.raw_output = reply.raw
            step.prompt_tokens = reply.prompt_tokens
            step.completion_tokens = reply.completion_tokens
            step.duration_ms = reply.duration_ms
            step.first_token_ms = reply.first_token_ms
            step.finish_reason = reply.results[-1].finish_reason if reply.results else ""

            if reply.cancelled:
                step.kind = "cancelled"
                trace.status = "cancelled"
                partial = reply.results[-1].text.strip() if reply.results else ""
                trace.final_answer = partial if partial and reply.action is None else None
                emit(AgentEvent("step_finished", idx, {"kind": step.kind}))
                return
            if reply.action is None:
                step.kind = "mistake"
                step.error = step.observation = reply.error
                messages += protocol.mistake_messages(reply.raw, reply.error)
                emit(AgentEvent("step_finished", idx, {"kind": step.kind, "error": reply.error}))
                if not allow_tools:
                    must_answer = True
                continue
            action = reply.action
            step.action = action.to_dict()

            if action.kind == FINAL:
                answer = without_copied_citations(without_echoed_notes(action.answer))
                if answer != action.answer.strip():
                    trace.extra["echo_removed"] = True
                if answer and _one_line(answer) in _failures(trace.steps):
                    # The error of a failed call, copied as the answer (seen: "Error: .../
                    # school.md (School ...): no such file"): that is no answer.
                    answer = ""
                step.kind = "final"
                if reply.truncated and answer:
                    # The answer ran past max_tokens: keep what was said, and say it was cut.
                    step.kind = "truncated"
                    answer += " [...]"
                    trace.extra["truncated"] = True
                if not answer:  # nothing a person can read: say what was found, plainly
                    found = _found(trace.steps)
                    failed = _failed(trace.steps)
                    answer = (
                        f"Here is what I found: {found}"
                        if found
                        else f"I could not get an answer: {failed}"
                        if failed
                        else EMPTY_ANSWER
                    )
                    trace.extra["empty_answer"] = True
                trace.status = "ok"
                trace.final_answer = answer
                emit(AgentEvent("step_finished", idx, {"kind": step.kind}))
                return

            assert action.kind == CALL
            outcome = self._call_tool(trace, step, action, messages, calls_seen, emit, specs)
            # A repeated call, a change to the world that went through (a note written), or
            # a tool whose result is the answer (a sum): the next turn answers. Small models
            # otherwise call again, or write the same thing again.
            tool = self.executor.registry.get(action.tool)
            done = outcome is not None and outcome.status == "ok"
            if outcome is None or (
                done and tool is not None and (tool.risk != Risk.READ or tool.answers)
            ):
                must_answer = True

        trace.status = "budget_exhausted"
        trace.final_answer = _stopped_answer(self.max_steps, trace.steps)

    def _retrieve(self, question: str, history: Sequence[Turn]) -> list[Passage]:
        """Passages for ``question``; in a conversation also for it read with the question
        before (a follow-up such as "how often do I feed it?" names nothing by itself)."""
        if self.retriever is None:
            return []
        found = self.retriever.retrieve(question)
        if history:
            known = {(p.source, p.text) for p in found}
            for passage in self.retriever.retrieve(f"{history[-1].question} {question}"):
                if (passage.source, passage.text) not in known:
                    found.append(passage)
                    known.add((passage.source, passage.text))
        return found

    def _fit(self, trace: Trace, messages: list[Message], specs: Any) -> None:
        """Make the prompt fit the context with room for the answer. Observations are cut as
        they come in; if the prompt still overflows, the longest earlier message is cut
        (with a visible marker) until it fits, and the trace says so."""
        limit = self.backend.context_size - self.answer_reserve
        total = self._prompt_tokens(messages, specs)
        while total > limit:
            candidates = [
                i
                for i in range(1, len(messages) - 1)
                if len(str(messages[i].get("content") or "")) > 200
            ] or [len(messages) - 1]
            longest = max(candidates, key=lambda i: len(str(messages[i].get("content") or "")))
            content = str(messages[longest].get("content") or "")
            if len(content) <= 200:
                raise ContextTooSmallError(
                    f"The system prompt and tool specs alone need {total} tokens; the "
                    f"context holds {self.backend.context_size} with {self.answer_reserve} "
                    "kept for the answer."
                )
            messages[longest] = {**messages[longest], "content": cut_text(content, 0.5)}
            trace.extra["fitted"] = trace.extra.get("fitted", 0) + 1
            total = self._prompt_tokens(messages, specs)

    def _prompt_tokens(self, messages: list[Message], specs: Any) -> int:
        if specs:
            return self.backend.count_prompt_tokens(messages, specs)
        return self.backend.count_prompt_tokens(messages)

    def _observation_for_model(self, text: str, messages: list[Message], specs: Any) -> str:
        """``text`` cut to at most half of the room left in the context, with a marker."""
        room = (
            self.backend.context_size - self.answer_reserve - self._prompt_tokens(messages, specs)
        )
        budget = max(48, room // 2)
        if self.backend.count_tokens(text) <= budget:
            return text
        keep = 1.0
        cut = text
        while keep > 0.01:
            keep *= 0.7
            cut = cut_text(text, keep)
            if self.backend.count_tokens(cut) <= budget:
                break
        return cut

    def _call_tool(
        self,
        trace: Trace,
        step: Step,
        action: Action,
        messages: list[Message],
        calls_seen: dict[str, str],
        emit: EventCallback,
        specs: Any = None,
    ) -> ToolOutcome | None:
        """Run the step's call through the executor (validation, permission, audit) and feed
        the observation back; None when it repeats an earlier call (which is not run, nor
        asked about, again: the model is told so as the call's result)."""
        idx = step.idx
        protocol = self.protocol
        step.tool_name, step.tool_args = action.tool, action.arguments
        call_key = json.dumps([action.tool, action.arguments], sort_keys=True, default=str)

        def feed_back(observation: str) -> None:
            """The call and its result (cut to fit) into the conversation."""
            fitted = self._observation_for_model(observation, messages, specs)
            messages.extend(
                protocol.call_messages(step.raw_output, action.tool, action.arguments, fitted, idx)
            )

        if call_key in calls_seen:
            # The same result again, in plain words: a small model copies whatever it is fed
            # into its answer, so no loop guidance ("you already called ...") goes in here.
            step.kind = "repeat"
            step.observation = calls_seen[call_key]
            feed_back(step.observation)
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
        emit(
            AgentEvent(
                "tool_result",
                idx,
                {
                    "tool": action.tool,
                    "status": outcome.status,
                    "observation": outcome.observation[:2000],
                },
            )
        )
        feed_back(outcome.observation)
        emit(AgentEvent("step_finished", idx, {"kind": step.kind}))
        return outcome


# Tools that search the notes: the retriever does that before the first turn.
RETRIEVAL_TOOLS = frozenset({"search_knowledge"})

EMPTY_ANSWER = (
    "I could not come up with an answer to that. Try asking it another way, or choose a "
    "larger model in Settings."
)


def cut_text(text: str, keep: float) -> str:
    """The first ``keep`` share of ``text``, with a marker saying how much was left out."""
    n = max(1, int(len(text) * keep))
    if n >= len(text):
        return text
    return f"{text[:n]}\n[... cut: {len(text) - n} more characters not shown]"


def _call_failed(step: Step) -> bool:
    return (step.tool_outcome or {}).get("status", "ok") != "ok"


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _last_result(steps: Sequence[Step]) -> Step | None:
    """The last step whose tool ran and gave something back (an error is not a finding)."""
    found = [
        s
        for s in steps
        if s.tool_name and s.kind == "tool_call" and s.observation and not _call_failed(s)
    ]
    return found[-1] if found else None


def _failed(steps: Sequence[Step]) -> str:
    """What the last failed call said, without its "Error:" ("not a valid expression: ...")."""
    failed = [s for s in steps if s.tool_name and _call_failed(s)]
    if not failed:
        return ""
    said = re.sub(r"^Error:\s*", "", _one_line(failed[-1].observation))[:300]
    return said.rstrip(".") + "."


def _failures(steps: Sequence[Step]) -> set[str]:
    """What the failed calls of the run said back, each on one line."""
    return {_one_line(s.observation) for s in steps if s.observation and _call_failed(s)}


# The frame a file's or the notes' text comes in for the model ("[/home/me/family.txt | 226
# characters]" and "(The text below is the file's content: ...)"): not for a person to read.
_FRAME_HEADER = re.compile(r"\A\[(?P<path>[^|\]\n]+) \|[^\]\n]*\]\n")
_FRAME_NOTE = re.compile(
    rf"\A(?:{re.escape(files.UNTRUSTED_NOTE)}|{re.escape(knowledge.UNTRUSTED_NOTE)})\n"
)


def _readable(observation: str) -> str:
    """A tool result as a person reads it: "family.txt: ..." rather than its frame."""
    header = _FRAME_HEADER.match(observation)
    body = _FRAME_NOTE.sub("", observation[header.end() :] if header else observation)
    name = header["path"].replace("\\", "/").rsplit("/", 1)[-1] if header else ""
    return f"{name}: {body}" if name else body


def _found(steps: Sequence[Step]) -> str:
    """The last tool result of the run, in one short line ("" when there is none)."""
    last = _last_result(steps)
    return _one_line(_readable(last.observation or ""))[:300] if last else ""


def _stopped_answer(max_steps: int, steps: Sequence[Step]) -> str:
    """What the user reads when the step budget ran out: what was found, in plain words."""
    text = f"I stopped after {max_steps} steps without a final answer."
    last = _last_result(steps)
    if last is not None:
        text += f" The last thing I found ({last.tool_name}): {_found(steps)}"
    return text + " You can ask again more specifically."
