"""The one path: look up -> validate -> policy -> confirm -> run (with a timeout) -> audit."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tools.audit import AuditLog
from tools.base import Risk, Tool, ToolError, ToolRegistry
from tools.confirm import (
    Answer,
    ConfirmationRequest,
    ScriptedConfirmationHandler,
    confirm_within,
)
from tools.executor import ToolExecutor, ToolOutcome
from tools.policy import PermissionPolicy
from tools.rules import RuleStore

SCHEMA = {
    "type": "object",
    "properties": {"text": {"type": "string"}},
    "required": ["text"],
    "additionalProperties": False,
}


def tool(name: str, risk: Risk, function: Any, **kw: Any) -> Tool:
    return Tool(name, f"{name} does things", SCHEMA, risk, function, **kw)


def echo(text: str) -> str:
    return f"echo: {text}"


def make(memory, tools: list[Tool], confirmer=None, **kw: Any) -> ToolExecutor:
    return ToolExecutor(
        ToolRegistry(tools),
        PermissionPolicy(store=RuleStore(memory)),
        confirmer,
        AuditLog(memory),
        **kw,
    )


def audit_row(memory, audit_id: int) -> dict[str, Any]:
    return dict(memory.execute("SELECT * FROM tool_audit WHERE id = ?", (audit_id,)).fetchone())


def test_bare_executor_keeps_working_for_read_tools() -> None:
    executor = ToolExecutor(ToolRegistry([tool("echo", Risk.READ, echo)]))
    outcome = executor.call("echo", {"text": "hi"})
    assert (outcome.status, outcome.observation, outcome.decision) == ("ok", "echo: hi", "allow")
    assert outcome.audit_id is None
    # ... and a bare executor has nobody to ask: writes are denied, not run.
    ran = []
    writer = ToolExecutor(ToolRegistry([tool("w", Risk.WRITE, lambda text: ran.append(text))]))
    assert writer.call("w", {"text": "x"}).status == "denied" and ran == []


def test_every_outcome_is_audited(memory) -> None:
    def broken(text: str) -> str:
        raise OSError("disk on fire")

    executor = make(
        memory,
        [
            tool("echo", Risk.READ, echo),
            tool("broken", Risk.READ, broken),
            tool("w", Risk.WRITE, echo),
        ],
    )
    outcomes = [
        executor.call("echo", {"text": "hi"}, trace_id="t-1"),
        executor.call("nope", {}),
        executor.call("echo", {"text": 3}),
        executor.call("broken", {"text": "x"}),
        executor.call("w", {"text": "x"}),
    ]
    assert [o.status for o in outcomes] == [
        "ok",
        "unknown_tool",
        "invalid_arguments",
        "error",
        "denied",
    ]
    assert outcomes[3].observation == "Error: broken failed: OSError: disk on fire"
    rows = [audit_row(memory, o.audit_id) for o in outcomes]
    assert [r["status"] for r in rows] == [o.status for o in outcomes]
    first = rows[0]
    assert first["tool"] == "echo" and first["risk"] == "read" and first["trace_id"] == "t-1"
    assert first["decision"] == "allow" and first["rule"] == "default:read"
    assert first["arguments_json"] == '{"text": "hi"}' and first["observation"] == "echo: hi"
    assert first["duration_ms"] >= 0 and first["created_at"] > time.time() - 60
    assert rows[1]["decision"] is None and rows[1]["risk"] is None
    assert rows[4]["decision"] == "deny" and rows[4]["answer"] == "deny"


def test_outcome_round_trips() -> None:
    outcome = ToolOutcome("t", {"a": 1}, "ok", "obs", "allow", "default:read", 1.5, 7, None)
    assert ToolOutcome.from_dict(outcome.to_dict()) == outcome


def test_tool_error_message_is_shown_plainly(memory) -> None:
    def refuse(text: str) -> str:
        raise ToolError("that file is too big")

    outcome = make(memory, [tool("r", Risk.READ, refuse)]).call("r", {"text": "x"})
    assert (outcome.status, outcome.observation) == ("error", "Error: that file is too big")


def test_a_tool_that_hangs_times_out(memory) -> None:
    release = threading.Event()

    def hang(text: str) -> str:
        release.wait(10)
        return "late"

    executor = make(memory, [tool("hang", Risk.READ, hang)], tool_timeout_s=0.2)
    started = time.perf_counter()
    outcome = executor.call("hang", {"text": "x"})
    release.set()
    assert outcome.status == "timeout" and "0.2 s" in outcome.observation
    assert time.perf_counter() - started < 2
    assert audit_row(memory, outcome.audit_id)["status"] == "timeout"


def test_per_tool_timeout_overrides_the_default(memory) -> None:
    slow = tool("slow", Risk.READ, lambda text: time.sleep(0.3) or "done", timeout_s=2.0)
    executor = make(memory, [slow], tool_timeout_s=0.05)
    assert executor.call("slow", {"text": "x"}).ok


def test_denial_is_an_observation_and_the_tool_never_runs(memory) -> None:
    ran = []
    writer = tool("w", Risk.WRITE, lambda text: ran.append(text) or "written")
    confirmer = ScriptedConfirmationHandler(["deny"])
    outcome = make(memory, [writer], confirmer).call("w", {"text": "x"})
    assert outcome.status == "denied" and outcome.observation.startswith("denied by the user")
    assert ran == [] and outcome.decision == "deny" and outcome.answer == "deny"


def test_confirmation_request_carries_what_the_user_needs(memory) -> None:
    writer = tool("w", Risk.WRITE, echo, preview=lambda a: f"+ {a['text']}")
    confirmer = ScriptedConfirmationHandler(["once"])
    make(memory, [writer], confirmer, confirm_timeout_s=12).call("w", {"text": "hello"})
    (request,) = confirmer.requests
    assert (
        request.tool == "w" and request.risk == "write" and request.arguments == {"text": "hello"}
    )
    assert request.preview == "+ hello" and request.timeout_s == 12
    assert request.reason == "write tools ask before they run"
    assert request.to_dict()["scope"] == {"tool": "w", "path_prefix": None, "arg_patterns": {}}


def test_preview_failure_does_not_block_the_question(memory) -> None:
    def bad_preview(arguments: dict[str, Any]) -> str:
        raise ToolError("cannot read the old note")

    writer = tool("w", Risk.WRITE, echo, preview=bad_preview)
    confirmer = ScriptedConfirmationHandler(["once"])
    assert make(memory, [writer], confirmer).call("w", {"text": "x"}).ok
    assert "no preview" in confirmer.requests[0].preview


def test_no_answer_in_time_counts_as_deny(memory) -> None:
    ran = []
    writer = tool("w", Risk.WRITE, lambda text: ran.append(text))
    confirmer = ScriptedConfirmationHandler(["hang"])
    executor = make(memory, [writer], confirmer, confirm_timeout_s=0.2)
    started = time.perf_counter()
    outcome = executor.call("w", {"text": "x"})
    confirmer.release()
    assert time.perf_counter() - started < 3
    assert outcome.status == "denied" and "no answer within 0.2 s" in outcome.observation
    assert ran == []
    assert audit_row(memory, outcome.audit_id)["answer"] == "deny"


def test_a_broken_handler_is_a_fault_of_ours() -> None:
    class Broken:
        def confirm(self, request: ConfirmationRequest) -> Answer:
            raise RuntimeError("dialog crashed")

    request = ConfirmationRequest("w", "", "write", {}, "why", timeout_s=1)
    with pytest.raises(RuntimeError, match="dialog crashed"):
        confirm_within(Broken(), request)


def test_session_answer_applies_for_the_rest_of_the_session(memory) -> None:
    writer = tool("w", Risk.WRITE, echo)
    confirmer = ScriptedConfirmationHandler(["session"])
    executor = make(memory, [writer], confirmer)
    first, second = executor.call("w", {"text": "1"}), executor.call("w", {"text": "2"})
    assert first.answer == "allow_session" and second.ok and second.answer is None
    assert len(confirmer.requests) == 1
    executor.policy.end_session()
    assert executor.call("w", {"text": "3"}).status == "denied"  # asked again; queue empty


def test_with_confirmer_shares_policy_and_audit(memory) -> None:
    base = make(memory, [tool("w", Risk.WRITE, echo)])
    asking = base.with_confirmer(ScriptedConfirmationHandler(["session"]))
    assert asking.call("w", {"text": "x"}).ok
    assert base.call("w", {"text": "y"}).ok  # the session rule is shared
    assert asking.policy is base.policy and asking.audit is base.audit


def test_secrets_are_redacted_in_the_audit_log(memory) -> None:
    schema = {"type": "object"}
    said = "logged in with sk-abcdefghijklmnopqrstuvwx"
    login = Tool("login", "logs in", schema, Risk.READ, lambda **a: said)
    executor = make(memory, [login])
    outcome = executor.call(
        "login",
        {
            "user": "ann",
            "password": "hunter2",
            "api_key": "plain",
            "max_tokens": 50,
            "code": "client = Client(key='sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX1234')",
            "header": "Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345",
        },
    )
    row = audit_row(memory, outcome.audit_id)
    for secret in ("hunter2", "plain", "sk-proj-ABC", "abcdefghijklmnop", "sk-abcdefgh"):
        assert secret not in row["arguments_json"] + row["observation"], secret
    assert '"user": "ann"' in row["arguments_json"] and '"max_tokens": 50' in row["arguments_json"]
    # The model still got the real observation; only the log is redacted.
    assert "sk-abcdefghijklmnopqrstuvwx" in outcome.observation
