"""The one path every tool call takes: look up, validate, (permission), run, report.

The agent and ``jackdaw tools call`` both go through :meth:`ToolExecutor.call`, so a call
from the command line is checked exactly like a call from the model.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from tools.base import ToolRegistry

MAX_OBSERVATION_CHARS = 4000


@dataclass(frozen=True)
class ToolOutcome:
    """What happened to one tool call. ``observation`` is what the model is shown next."""

    tool: str
    arguments: Any
    status: str  # ok | error | unknown_tool | invalid_arguments | denied | timeout
    observation: str
    decision: str | None = None  # allow | ask | deny, once a permission policy is in the path
    rule: str | None = None  # the rule that decided
    duration_ms: float = 0.0
    audit_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToolOutcome:
        return cls(**data)


def render_result(result: Any) -> str:
    """Tool results become text for the model, capped so one result cannot flood the context."""
    text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str)
    if len(text) > MAX_OBSERVATION_CHARS:
        text = text[:MAX_OBSERVATION_CHARS] + f"\n[... truncated, {len(text)} characters in all]"
    return text


class ToolExecutor:
    def __init__(self, registry: ToolRegistry) -> None:
        self.registry = registry

    def call(self, name: str, arguments: Any) -> ToolOutcome:
        started = time.perf_counter()

        def outcome(status: str, observation: str) -> ToolOutcome:
            elapsed = (time.perf_counter() - started) * 1000
            return ToolOutcome(name, arguments, status, observation, duration_ms=elapsed)

        tool = self.registry.get(name)
        if tool is None:
            known = ", ".join(self.registry.names()) or "none"
            return outcome("unknown_tool", f"Error: there is no tool named {name!r}. Tools: {known}.")
        errors = tool.validation_errors(arguments)
        if errors:
            return outcome(
                "invalid_arguments",
                f"Error: invalid arguments for {name}: " + "; ".join(errors),
            )
        try:
            result = tool.function(**arguments)
        except Exception as exc:  # a tool's failure is an observation for the model, not a crash
            return outcome("error", f"Error: {name} failed: {type(exc).__name__}: {exc}")
        return outcome("ok", render_result(result))
