"""Scoring a prompt version on a replay set built from the user's own rated and corrected runs.

Each case asks the recorded question again, with the recorded history and passages and the
tools the run was offered, at temperature 0 and a fixed seed; tools answer from the record
(:class:`RecordedToolExecutor`), so scoring never touches the user's files and never has
side effects. The correction memory is *not* consulted: a version is scored on what the
prompt itself makes the model say.

* ``correction`` cases (pinned): the corrected answer must be given;
* ``uprated`` cases: the up-rated answer must not be lost, and the tool plan (the tools
  called, in order) must match;
* ``downrated`` cases without a correction: the rejected answer must not come back;
* ``guard`` cases (pinned): other questions the user asked, close to a corrected one but
  below the similarity at which the correction is shown (``correction_similarity``), must
  not get a corrected answer they did not give before. Corrections become exemplars of a
  candidate prompt, and a small model copies an exemplar's answer into close questions
  (measured: "What time does the library open on Sundays?" answered "at 9 am", the gym's
  corrected hours); nothing else on the replay set would see it.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from agent_core.agent import Agent
from agent_core.learning.feedback import FeedbackStore
from agent_core.learning.similarity import cosine, normalize_question
from agent_core.learning.versions import PromptVersion
from agent_core.memory_db import connect, migrate
from agent_core.prompting import Passage, PromptBuilder, Turn
from agent_core.traces import Trace, TraceNotFoundError, TraceStore
from models.chat import ChatBackend, GenerationSettings
from tools.base import ToolRegistry
from tools.executor import ToolExecutor, ToolOutcome

CORRECTION, UPRATED, DOWNRATED, GUARD = "correction", "uprated", "downrated", "guard"


@dataclass(frozen=True)
class ReplayCase:
    id: str
    kind: str  # correction | uprated | downrated
    trace_id: str
    question: str
    expected: str = ""
    rejected: str = ""
    tools: tuple[str, ...] = ()  # the recorded tool plan
    pinned: bool = False
    history: tuple[Turn, ...] = ()
    passages: tuple[Passage, ...] = ()
    outcomes: tuple[dict[str, Any], ...] = ()  # recorded ToolOutcome dicts, in order
    offered: tuple[str, ...] | None = None  # the tools the run was offered (None: all)
    forbidden: tuple[str, ...] = ()  # guard: corrected answers this question must not get

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["history"] = [asdict(t) for t in self.history]
        data["passages"] = [p.to_dict() for p in self.passages]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReplayCase:
        values = dict(data)
        values["tools"] = tuple(data.get("tools", ()))
        values["history"] = tuple(Turn(**t) for t in data.get("history", ()))
        values["passages"] = tuple(Passage(**p) for p in data.get("passages", ()))
        values["outcomes"] = tuple(data.get("outcomes", ()))
        values["forbidden"] = tuple(data.get("forbidden", ()))
        offered = data.get("offered")
        values["offered"] = tuple(offered) if offered is not None else None
        return cls(**values)


def _history_of(trace: Trace) -> tuple[Turn, ...]:
    """The conversation before the question, as the first model step saw it."""
    first = next((s for s in trace.steps if s.messages), None)
    if first is None:
        return ()
    turns: list[Turn] = []
    body = first.messages[1:-1]  # between the system prompt and this turn's question
    for question, answer in zip(body[0::2], body[1::2], strict=False):
        try:
            text = json.loads(answer["content"]).get("answer", answer["content"])
        except (json.JSONDecodeError, AttributeError):
            text = answer["content"]
        turns.append(Turn(question["content"], text))
    return tuple(turns)


def _offered(trace: Trace) -> tuple[str, ...] | None:
    """The tools the model was offered, read from the response schemas it was given."""
    schemas = [s.response_schema for s in trace.steps if s.response_schema]
    if not schemas:
        return None
    names: list[str] = []
    for schema in schemas:
        # a JSON action (older traces), a decision, or a native tool call's schema
        options = schema.get("anyOf") or (schema.get("decision") or {}).get("anyOf") or []
        call = schema.get("tool_call") or {}
        call = call.get("items", call)
        options = [*options, *(call.get("anyOf") or [call])]
        for option in options:
            props = option.get("properties", {}) if isinstance(option, dict) else {}
            tool = (props.get("tool") or props.get("name") or {}).get("const")
            if tool and tool != "none" and tool not in names:
                names.append(tool)
    return tuple(names)


def _case_from_trace(trace: Trace, kind: str, case_id: str, **values: Any) -> ReplayCase:
    calls = [s for s in trace.steps if s.tool_name and s.tool_outcome]
    plan = tuple(s.tool_name or "" for s in calls if (s.tool_outcome or {}).get("status") == "ok")
    return ReplayCase(
        id=case_id,
        kind=kind,
        trace_id=trace.id,
        question=trace.question,
        tools=plan if kind == UPRATED else (),
        history=_history_of(trace),
        passages=tuple(Passage(**p) for p in trace.extra.get("sources", [])),
        outcomes=tuple(s.tool_outcome for s in calls if s.tool_outcome),
        offered=_offered(trace),
        **values,
    )


def build_replay_set(
    traces: TraceStore,
    feedback: FeedbackStore,
    limit: int = 60,
    *,
    guards: int = 0,
    same_need: float = 0.8,
) -> list[ReplayCase]:
    """Pinned corrections first (newest first), then up-rated and down-rated runs; then up
    to ``guards`` guard cases (:func:`guard_cases`)."""
    cases: list[ReplayCase] = []
    corrected: set[str] = set()
    for correction in sorted(feedback.corrections(), key=lambda c: -c.created_at):
        corrected.add(correction.trace_id)
        try:
            trace = traces.get(correction.trace_id)
        except TraceNotFoundError:
            continue
        cases.append(
            _case_from_trace(
                trace,
                CORRECTION,
                f"correction:{correction.id}",
                expected=correction.answer,
                pinned=True,
            )
        )
    ratings = sorted(feedback.ratings(history=False), key=lambda r: -r.created_at)
    for rating in ratings:
        if rating.trace_id in corrected:
            continue
        try:
            trace = traces.get(rating.trace_id)
        except TraceNotFoundError:
            continue
        if trace.final_answer is None or not any(s.messages for s in trace.steps):
            continue
        if rating.up:
            case = _case_from_trace(
                trace, UPRATED, f"uprated:{trace.id}", expected=trace.final_answer
            )
        else:
            case = _case_from_trace(
                trace, DOWNRATED, f"downrated:{trace.id}", rejected=trace.final_answer
            )
        cases.append(case)
    rated = {r.trace_id for r in ratings}
    return cases[:limit] + guard_cases(traces, feedback, guards, same_need, skip=corrected | rated)


def guard_cases(
    traces: TraceStore,
    feedback: FeedbackStore,
    count: int,
    same_need: float,
    *,
    skip: set[str] = frozenset(),  # type: ignore[assignment]
    scan: int = 300,
) -> list[ReplayCase]:
    """Up to ``count`` of the user's recent unrated runs, closest to a corrected question
    first but less similar than ``same_need`` (what the agent treats as the same question:
    there the corrected answer is right), each pinned to not give a corrected answer its
    recorded answer did not give."""
    corrections = feedback.corrections()
    if count <= 0 or not corrections:
        return []
    encoder = feedback.encoder
    corrected = [(normalize_question(c.question), encoder.vector(c.question)) for c in corrections]
    found: list[tuple[float, str, tuple[str, ...]]] = []
    seen: set[str] = set()
    for row in traces.list(limit=scan):
        answer = row["answer"] or ""
        key = normalize_question(row["question"])
        if row["id"] in skip or row["status"] != "ok" or not answer.strip() or key in seen:
            continue
        vector = encoder.vector(row["question"])
        similarity = max(1.0 if key == same else cosine(vector, other) for same, other in corrected)
        if similarity >= same_need:
            continue
        forbidden = tuple(c.answer for c in corrections if not answer_matches(c.answer, answer))
        if forbidden:
            seen.add(key)
            found.append((similarity, row["id"], forbidden))
    found.sort(key=lambda item: -item[0])
    cases = []
    for _, trace_id, forbidden in found:
        trace = traces.get(trace_id)
        if not any(s.messages for s in trace.steps):
            continue  # answered without the model (from a correction): nothing to score
        cases.append(
            _case_from_trace(trace, GUARD, f"guard:{trace.id}", forbidden=forbidden, pinned=True)
        )
        if len(cases) == count:
            break
    return cases


_NON_WORD = re.compile(r"[^\w]+")


def _normal(text: str) -> str:
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


def answer_matches(expected: str, got: str) -> bool:
    """The answer gives the expected one: contained (ignoring case and punctuation), or
    at least 80% of its words present for longer answers."""
    want, have = _normal(expected), _normal(got)
    if not want:
        return False
    if want in have:
        return True
    words = want.split()
    if len(words) < 4:
        return False
    present = set(have.split())
    return sum(w in present for w in words) / len(words) >= 0.8


class RecordedToolExecutor(ToolExecutor):
    """Serves tool calls from a recorded run: the same call gets the same outcome; any other
    call gets an error observation. Nothing runs, nothing is asked, nothing is audited."""

    def __init__(self, registry: ToolRegistry, outcomes: tuple[dict[str, Any], ...]) -> None:
        super().__init__(registry)
        self._recorded = [ToolOutcome.from_dict(o) for o in outcomes]
        self._used: set[int] = set()

    def call(self, name: str, arguments: Any, *, trace_id: str | None = None) -> ToolOutcome:
        key = json.dumps([name, arguments], sort_keys=True, default=str)
        for i, outcome in enumerate(self._recorded):
            if i in self._used:
                continue
            if json.dumps([outcome.tool, outcome.arguments], sort_keys=True, default=str) == key:
                self._used.add(i)
                return outcome
        tool = self.registry.get(name)
        if tool is None:
            why = f"Error: there is no tool named {name!r}."
            return ToolOutcome(name, arguments, "unknown_tool", why)
        errors = tool.validation_errors(arguments)
        if errors:
            why = f"Error: invalid arguments for {name}: " + "; ".join(errors)
            return ToolOutcome(name, arguments, "invalid_arguments", why)
        why = (
            "Error: this call was not part of the recorded run (tools do not run while "
            "prompt versions are scored)."
        )
        return ToolOutcome(name, arguments, "error", why)


@dataclass
class CaseResult:
    case_id: str
    kind: str
    pinned: bool
    passed: bool
    score: float
    answer: str
    tools: list[str] = field(default_factory=list)
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseResult:
        return cls(**data)


@dataclass
class VersionScore:
    version_id: str
    results: list[CaseResult] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def overall(self) -> float:
        return sum(r.score for r in self.results) / len(self.results) if self.results else 0.0

    def passed(self, case_id: str) -> bool:
        return any(r.case_id == case_id and r.passed for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version_id": self.version_id,
            "overall": round(self.overall, 4),
            "duration_s": round(self.duration_s, 2),
            "results": [r.to_dict() for r in self.results],
        }


def score_case(case: ReplayCase, trace: Trace) -> CaseResult:
    answer = trace.final_answer or ""
    used = [
        s.tool_name or ""
        for s in trace.steps
        if s.tool_name and (s.tool_outcome or {}).get("status") == "ok"
    ]
    if case.kind == CORRECTION:
        ok = answer_matches(case.expected, answer)
        detail = "gives the corrected answer" if ok else "misses the corrected answer"
        return CaseResult(case.id, case.kind, True, ok, float(ok), answer, used, detail)
    if case.kind == UPRATED:
        parts = [answer_matches(case.expected, answer)]
        if case.tools:
            parts.append(tuple(used) == case.tools)
        score = sum(parts) / len(parts)
        detail = "answer kept" if parts[0] else "answer lost"
        if case.tools:
            detail += ", tool plan matched" if parts[-1] else ", tool plan differs"
        return CaseResult(case.id, case.kind, False, score == 1.0, score, answer, used, detail)
    if case.kind == GUARD:
        given = [f for f in case.forbidden if answer_matches(f, answer)]
        detail = f"gives a corrected answer: {given[0]!r}" if given else "no corrected answer"
        return CaseResult(
            case.id, case.kind, True, not given, float(not given), answer, used, detail
        )
    ok = bool(answer.strip()) and not answer_matches(case.rejected, answer)
    detail = "avoids the rejected answer" if ok else "repeats the rejected answer"
    return CaseResult(case.id, case.kind, False, ok, float(ok), answer, used, detail)


class _FixedPassages:
    def __init__(self, passages: tuple[Passage, ...]) -> None:
        self.passages = list(passages)

    def retrieve(self, question: str) -> list[Passage]:
        return list(self.passages)


class Evaluator:
    """Runs the agent (without the learning memory) on each case under a prompt version."""

    def __init__(
        self,
        backend: ChatBackend,
        registry: ToolRegistry,
        builder: PromptBuilder,
        settings: GenerationSettings,
        *,
        max_steps: int = 6,
    ) -> None:
        self.backend = backend
        self.registry = registry
        self.builder = builder
        self.settings = settings
        self.max_steps = max_steps

    def score(
        self,
        version: PromptVersion,
        cases: list[ReplayCase],
        *,
        cancel: threading.Event | None = None,
        on_case: Callable[[CaseResult], None] | None = None,
    ) -> VersionScore:
        started = time.perf_counter()
        conn = connect(":memory:")  # scoring runs are not the user's runs: kept apart
        migrate(conn)
        try:
            traces = TraceStore(conn)
            result = VersionScore(version.id)
            for case in cases:
                if cancel is not None and cancel.is_set():
                    break
                registry = self.registry
                if case.offered is not None:  # the same tools as the recorded run (if alive)
                    registry = ToolRegistry([t for t in self.registry if t.name in case.offered])
                agent = Agent(
                    self.backend,
                    RecordedToolExecutor(registry, case.outcomes),
                    traces,
                    self.builder,
                    self.settings,
                    # What the recorded run needed, and one step to spare: a version is
                    # scored on the run, not on how long a small model can wander.
                    max_steps=min(self.max_steps, len(case.outcomes) + 2),
                    retriever=_FixedPassages(case.passages),
                    system_prompt=lambda: version.system_prompt,
                )
                trace = agent.run(case.question, history=case.history, cancel=cancel)
                scored = score_case(case, trace)
                result.results.append(scored)
                if on_case is not None:
                    on_case(scored)
            result.duration_s = time.perf_counter() - started
            return result
        finally:
            conn.close()
