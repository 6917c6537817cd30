"""Replay: (a) an exact replay of a recorded trace, step by step, reporting the first
divergence; (b) :class:`ExperiencePlan`, the script of an experience adapted to a new task,
which the agent runs in place of the model's planning calls.

Exact replay has three modes:

* ``live``: the recorded model outputs against the live tools. Read tools run again and
  their results are compared with the record; tools with side effects are not run again
  (reported ``skipped``) unless ``allow_side_effects`` (then they ask, as always);
* ``record``: nothing runs; the record is checked for consistency (each step's messages
  follow from the one before, each output parses to the recorded action);
* ``model``: the model is asked again with each step's recorded messages and settings, and
  its output compared with the recorded one (a regression test of model and prompt).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from agent_core.actions import ActionError, parse_action
from agent_core.agent import PlannedCall
from agent_core.learning import slots as slotting
from agent_core.learning.checks import (
    postcondition_failure,
    precondition_failure,
    sha256_text,
)
from agent_core.learning.experiences import Experience, passages_sha256
from agent_core.protocols import PROTOCOLS
from agent_core.traces import Step, Trace
from models.chat import ChatBackend, GenerationSettings, Message
from tools.base import Risk
from tools.executor import ToolExecutor, ToolOutcome

LIVE, RECORD, MODEL = "live", "record", "model"
MATCH, DIVERGED, SKIPPED, RECORDED = "match", "diverged", "skipped", "recorded"


# -- (b) experience replay --------------------------------------------------------------------
class ExperiencePlan:
    """Runs an experience's script for one task: fills its slots (and references to earlier
    results), checks preconditions before each call and postconditions after it."""

    def __init__(
        self,
        experience: Experience,
        values: dict[str, Any],
        executor: ToolExecutor,
        *,
        matched_by: str,
        similarity: float,
    ) -> None:
        self.experience = experience
        self.values = dict(values)
        self.executor = executor
        self.matched_by = matched_by
        self.similarity = similarity
        self.results: list[str] = []
        self._next = 0

    @property
    def info(self) -> dict[str, Any]:
        return {
            "experience_id": self.experience.id,
            "matched_by": self.matched_by,  # pattern | same_task | model
            "similarity": round(self.similarity, 4),
            "slots": self.values,
            "script_steps": len(self.experience.script.steps),
            "sources": list(self.experience.sources),
        }

    def next_call(self) -> PlannedCall | None:
        steps = self.experience.script.steps
        if self._next >= len(steps):
            return None
        step = steps[self._next]
        where = f"script step {self._next + 1} ({step.tool})"
        values = {**self.values, **{f"@{j}": r for j, r in enumerate(self.results)}}
        try:
            arguments = slotting.fill(step.arguments, values)
        except (KeyError, ValueError) as exc:
            return PlannedCall(failure=f"{where}: cannot fill {exc}")
        for check in step.pre:
            failure = precondition_failure(
                check,
                executor=self.executor,
                tool_name=step.tool,
                arguments=arguments,
                results=self.results,
            )
            if failure is not None:
                return PlannedCall(failure=f"{where}: {failure}")
        return PlannedCall(step.tool, arguments)

    def recorded_answer(self, passages: Sequence[tuple[str, str]]) -> str | None:
        """The recorded run's answer, when this run saw all it saw: every step replayed with
        the recorded slot values and results, and the same notes ``passages`` (source, text).
        The answer rested on nothing else, so the model need not be asked again."""
        script = self.experience.script
        recorded = script.recorded
        if recorded is None or not recorded.answer or self._next < len(script.steps):
            return None
        if slotting.typed({s.name: s.example for s in script.slots}, script.slots) != (
            self.values or {}
        ):
            return None
        if [sha256_text(r) for r in self.results] != recorded.results_sha256:
            return None
        if passages_sha256(list(passages)) != recorded.context_sha256:
            return None
        return recorded.answer

    def check(self, outcome: ToolOutcome) -> str | None:
        step = self.experience.script.steps[self._next]
        where = f"script step {self._next + 1} ({step.tool})"
        self._next += 1
        self.results.append(outcome.observation)
        for check in step.post:
            failure = postcondition_failure(check, outcome)
            if failure is not None:
                return f"{where}: {failure}"
        return None


# -- (a) exact replay ---------------------------------------------------------------------------
@dataclass
class StepReplay:
    idx: int
    kind: str
    status: str  # match | diverged | skipped | recorded
    tool: str | None = None
    detail: str = ""
    expected: str | None = None
    actual: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepReplay:
        return cls(**data)


@dataclass
class ReplayReport:
    trace_id: str
    mode: str
    steps: list[StepReplay] = field(default_factory=list)

    @property
    def first_divergence(self) -> int | None:
        return next((s.idx for s in self.steps if s.status == DIVERGED), None)

    @property
    def matches(self) -> bool:
        return self.first_divergence is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "mode": self.mode,
            "matches": self.matches,
            "first_divergence": self.first_divergence,
            "steps": [s.to_dict() for s in self.steps],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReplayReport:
        return cls(data["trace_id"], data["mode"], [StepReplay.from_dict(s) for s in data["steps"]])


def _clip(text: str | None, limit: int = 300) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + f"... [{len(text)} characters]"


def _follows(previous: Step, step: Step, fitted: bool) -> bool:
    """Whether ``step``'s messages follow from ``previous``: the same conversation, plus the
    model's call (or mistake) and what was fed back for it. A prompt cut to fit the context
    (``fitted``) may differ in earlier messages."""
    if previous.kind in ("final", "truncated", "cancelled"):
        return False
    n = len(previous.messages)
    added: list[Message] = step.messages[n:]
    if not fitted and step.messages[:n] != previous.messages:
        return False
    if len(added) != 2 or added[0].get("role") != "assistant":
        return False
    # What was fed back is the step's observation (or the start of it, when it was cut).
    fed = str(added[1].get("content") or "").split("\n[... cut:")[0]
    fed = fed.removeprefix(f"Result of {previous.tool_name}:\n")
    return (previous.observation or previous.error or "").startswith(fed)


def _protocol(step: Step) -> Any:
    schema = step.response_schema or {}
    return PROTOCOLS.get(schema.get("protocol", "")) if isinstance(schema, dict) else None


def _parse(step: Step) -> dict[str, Any]:
    protocol = _protocol(step)
    try:
        if protocol is not None:
            schema = step.response_schema or {}
            allowed = bool(schema.get("tool_call") or schema.get("decision"))
            return protocol.parse(step.raw_output, allow_tools=allowed).to_dict()
        return parse_action(step.raw_output).to_dict()  # a JSON action of an older trace
    except (ActionError, ValueError) as exc:
        return {"error": str(exc)}


def replay_trace(
    trace: Trace,
    *,
    mode: str = LIVE,
    executor: ToolExecutor | None = None,
    backend: ChatBackend | None = None,
    allow_side_effects: bool = False,
) -> ReplayReport:
    if mode not in (LIVE, RECORD, MODEL):
        raise ValueError(f"unknown replay mode {mode!r}")
    if mode == LIVE and executor is None:
        raise ValueError("a live replay needs the tool executor")
    if mode == MODEL and backend is None:
        raise ValueError("a model replay needs the chat backend")
    report = ReplayReport(trace.id, mode)
    previous: Step | None = None
    for step in trace.steps:
        fitted = bool(trace.extra.get("fitted"))
        if (
            previous is not None
            and step.messages
            and previous.messages
            and not _follows(previous, step, fitted)
        ):
            why = "the recorded messages do not follow from the step before"
            report.steps.append(StepReplay(step.idx, step.kind, DIVERGED, step.tool_name, why))
            previous = step
            continue
        report.steps.append(_replay_step(step, trace, mode, executor, backend, allow_side_effects))
        previous = step
    return report


def _replay_step(
    step: Step,
    trace: Trace,
    mode: str,
    executor: ToolExecutor | None,
    backend: ChatBackend | None,
    allow_side_effects: bool,
) -> StepReplay:
    result = StepReplay(step.idx, step.kind, MATCH, step.tool_name)
    if not step.messages:
        source = "a correction" if trace.extra.get("correction") else "the record"
        result.status, result.detail = RECORDED, f"answered from {source}, no model call"
        return result

    if mode == MODEL and step.response_schema is not None and backend is not None:
        settings = GenerationSettings.from_dict(step.settings)
        protocol = _protocol(step)
        if protocol is not None:
            schema = step.response_schema
            tools = list(executor.registry) if executor is not None else []
            reply = protocol.turn(
                backend,
                step.messages,
                tools,
                settings,
                allow_tools=bool(schema.get("tool_call") or schema.get("decision")),
            )
            regenerated_text = reply.raw
        else:
            regenerated_text = backend.chat(
                step.messages, settings, response_schema=step.response_schema
            ).text
        if regenerated_text != step.raw_output:
            result.status, result.detail = DIVERGED, "the model's output differs"
            result.expected, result.actual = _clip(step.raw_output), _clip(regenerated_text)
            return result

    # A script step's action came from the script, not from parsing a model's output.
    if step.action is not None and step.response_schema is not None:
        parsed = _parse(step)
        if parsed != step.action and step.kind != "truncated":
            result.status, result.detail = DIVERGED, "the output no longer parses to the action"
            result.expected, result.actual = str(step.action), str(parsed)
            return result

    if not step.tool_name or step.kind == "repeat" or step.tool_outcome is None:
        result.detail = "model output" if step.response_schema is not None else "script step"
        if mode != MODEL:
            result.status = RECORDED if step.kind != "final" else MATCH
        return result

    recorded = ToolOutcome.from_dict(step.tool_outcome)
    if mode != LIVE or executor is None:
        result.status, result.detail = RECORDED, f"tool result from the record ({recorded.status})"
        return result
    tool = executor.registry.get(step.tool_name)
    if tool is not None and tool.risk != Risk.READ and not allow_side_effects:
        result.status = SKIPPED
        result.detail = f"{tool.risk} tool not run again (side effects); result from the record"
        return result
    live = executor.call(step.tool_name, step.tool_args)
    if (live.status, live.observation) == (recorded.status, recorded.observation):
        result.detail = f"tool result unchanged ({live.status})"
        return result
    result.status = DIVERGED
    result.detail = (
        f"tool status {recorded.status} -> {live.status}"
        if live.status != recorded.status
        else "tool result changed"
    )
    result.expected, result.actual = _clip(recorded.observation), _clip(live.observation)
    return result
