"""The one path every tool call takes: look up, validate, decide, confirm, run, audit.

The agent and ``jackdaw tools call`` both go through :meth:`ToolExecutor.call`, so a call
from the command line is checked exactly like a call from the model. Nothing a call does
raises out of here: unknown tools, bad arguments, denials, failures and timeouts all become
a :class:`ToolOutcome` whose ``observation`` is fed back to the model (style.md: a mistake
of the model is data; a fault of ours — a broken handler, a database error — still raises).
"""

from __future__ import annotations

import contextvars
import json
import threading
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from tools.audit import AuditLog
from tools.base import Tool, ToolError, ToolRegistry, ToolTimeout
from tools.confirm import Answer, ConfirmationHandler, ConfirmationRequest, DenyAll, confirm_within
from tools.paths import call_grants, resolve_path
from tools.policy import Decision, Effect, PermissionPolicy

MAX_OBSERVATION_CHARS = 4000
DENIED_BY_USER = "denied by the user"
DENIED_BY_POLICY = "denied by policy"


@dataclass(frozen=True)
class ToolOutcome:
    """What happened to one tool call. ``observation`` is what the model is shown next."""

    tool: str
    arguments: Any
    status: str  # ok | error | unknown_tool | invalid_arguments | denied | timeout
    observation: str
    decision: str | None = None  # allow | deny: the final word (after asking, if asked)
    rule: str | None = None  # the rule that decided ("default:...", "rule:ID", "user:...")
    duration_ms: float = 0.0
    audit_id: int | None = None
    answer: str | None = None  # the user's answer when asked (allow_once, deny, ...)

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
    text = (
        result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str)
    )
    if len(text) > MAX_OBSERVATION_CHARS:
        text = text[:MAX_OBSERVATION_CHARS] + f"\n[... truncated, {len(text)} characters in all]"
    return text


def run_with_timeout(tool: Tool, arguments: dict[str, Any], timeout_s: float | None) -> Any:
    """Run ``tool`` in a daemon thread and stop waiting after ``timeout_s``.

    Python cannot kill a thread: a timed-out tool keeps running in the background until it
    returns, its result discarded. Tools that can really hang on something external
    (``run_python``) enforce their own limit by killing a child process.
    """
    if not timeout_s:
        return tool.function(**arguments)
    box: dict[str, Any] = {}
    done = threading.Event()
    context = contextvars.copy_context()  # carries this call's path grants into the thread

    def target() -> None:
        try:
            box["result"] = context.run(tool.function, **arguments)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name=f"tool-{tool.name}", daemon=True).start()
    if not done.wait(timeout_s):
        raise ToolTimeout(f"{tool.name} did not finish within {timeout_s:g} s and was abandoned")
    if "error" in box:
        raise box["error"]
    return box["result"]


class ToolExecutor:
    """Runs tool calls through validation, the permission policy, confirmation and audit.

    ``ToolExecutor(registry)`` alone gives a default policy without user rules or read
    roots and nobody to ask (whatever asks is denied) and keeps no audit: safe for tests.
    """

    def __init__(
        self,
        registry: ToolRegistry,
        policy: PermissionPolicy | None = None,
        confirmer: ConfirmationHandler | None = None,
        audit: AuditLog | None = None,
        *,
        confirm_timeout_s: float = 60.0,
        tool_timeout_s: float | None = 30.0,
    ) -> None:
        self.registry = registry
        self.policy = policy or PermissionPolicy()
        self.confirmer: ConfirmationHandler = confirmer or DenyAll()
        self.audit = audit
        self.confirm_timeout_s = confirm_timeout_s
        self.tool_timeout_s = tool_timeout_s

    def with_confirmer(self, confirmer: ConfirmationHandler) -> ToolExecutor:
        """The same tools, policy (session rules included) and audit, asking someone else."""
        return ToolExecutor(
            self.registry,
            self.policy,
            confirmer,
            self.audit,
            confirm_timeout_s=self.confirm_timeout_s,
            tool_timeout_s=self.tool_timeout_s,
        )

    def specs(self) -> list[dict[str, Any]]:
        return self.registry.specs()

    def call(self, name: str, arguments: Any, *, trace_id: str | None = None) -> ToolOutcome:
        started = time.perf_counter()
        tool = self.registry.get(name)
        outcome = self._call(tool, name, arguments)
        outcome = replace(outcome, duration_ms=(time.perf_counter() - started) * 1000)
        if self.audit is not None:
            audit_id = self.audit.record(
                tool=name,
                arguments=arguments,
                status=outcome.status,
                observation=outcome.observation,
                duration_ms=outcome.duration_ms,
                risk=str(tool.risk) if tool else None,
                decision=outcome.decision,
                rule=outcome.rule,
                answer=outcome.answer,
                trace_id=trace_id,
            )
            outcome = replace(outcome, audit_id=audit_id)
        return outcome

    def _call(self, tool: Tool | None, name: str, arguments: Any) -> ToolOutcome:
        if tool is None:
            known = ", ".join(self.registry.names()) or "none"
            return ToolOutcome(
                name,
                arguments,
                "unknown_tool",
                f"Error: there is no tool named {name!r}. Tools: {known}.",
            )
        errors = tool.validation_errors(arguments)
        if errors:
            return ToolOutcome(
                name,
                arguments,
                "invalid_arguments",
                f"Error: invalid arguments for {name}: " + "; ".join(errors),
            )

        decision = self.policy.decide(tool, arguments)
        answer: Answer | None = None
        if decision.effect is Effect.ASK:
            decision, answer = self._ask(tool, arguments, decision)
        answered = str(answer.kind) if answer else None

        def result(status: str, observation: str) -> ToolOutcome:
            return ToolOutcome(
                name,
                arguments,
                status,
                observation,
                str(decision.effect),
                decision.rule,
                answer=answered,
            )

        if decision.effect is not Effect.ALLOW:
            if answer is not None:
                note = f" ({answer.note})" if answer.note else ""
                return result("denied", f"{DENIED_BY_USER}{note}. Do not retry this call.")
            return result("denied", f"{DENIED_BY_POLICY}: {decision.reason}.")

        grants = call_grants.set(tuple(resolve_path(g) for g in decision.grants))
        try:
            value = run_with_timeout(tool, arguments, self._timeout_for(tool))
        except ToolTimeout as exc:
            return result("timeout", f"Error: {exc}")
        except ToolError as exc:
            return result("error", f"Error: {exc}")
        except Exception as exc:  # a tool's failure is an observation for the model, not a crash
            return result("error", f"Error: {name} failed: {type(exc).__name__}: {exc}")
        finally:
            call_grants.reset(grants)
        return result("ok", render_result(value))

    def _timeout_for(self, tool: Tool) -> float | None:
        return tool.timeout_s if tool.timeout_s is not None else self.tool_timeout_s

    def _ask(
        self, tool: Tool, arguments: dict[str, Any], decision: Decision
    ) -> tuple[Decision, Answer]:
        paths = tool.touched_paths(arguments)
        try:
            preview = tool.preview(arguments) if tool.preview else None
        except Exception as exc:  # no preview must not block the question itself
            preview = f"(no preview: {exc})"
        request = ConfirmationRequest(
            tool=tool.name,
            description=f"{tool.description} {tool.confinement}".strip(),
            risk=str(tool.risk),
            arguments=arguments,
            reason=decision.reason,
            preview=preview,
            paths=tuple(str(p) for p in paths),
            scope=self.policy.suggest_scope(tool, arguments),
            timeout_s=self.confirm_timeout_s,
        )
        answer = confirm_within(self.confirmer, request)
        if not answer.allowed:
            return Decision(Effect.DENY, "user:deny", answer.note or DENIED_BY_USER), answer
        lifetime = answer.lifetime
        if lifetime is None or answer.scope is None or tool.always_ask:
            # always_ask tools never get a standing rule, whatever a handler answers.
            return Decision(Effect.ALLOW, "user:allow_once"), answer
        rule = self.policy.allow(answer.scope, lifetime)
        if not answer.scope.matches(tool.name, arguments, paths):
            # A handler may narrow the offered scope; the rule stands for later calls, but
            # this call was approved as itself.
            return Decision(Effect.ALLOW, "user:allow_once"), answer
        grants = (answer.scope.path_prefix,) if answer.scope.path_prefix else ()
        return Decision(Effect.ALLOW, f"rule:{rule.id}", rule.describe(), rule.id, grants), answer
