"""Permissions inside the agent loop (scripted backend): approved, denied, timed-out
confirmation, an "always" answer then a call that does not ask, and audit links."""

from __future__ import annotations

import sqlite3

from agent_core.agent import Agent
from agent_core.prompting import PromptBuilder
from agent_core.traces import TraceStore
from models.chat import GenerationSettings
from tests.fakes import ScriptedBackend, call, final
from tools.confirm import ScriptedConfirmationHandler
from tools.executor import ToolExecutor


def run(executor: ToolExecutor, memory: sqlite3.Connection, outputs: list[str], max_steps=6):
    backend = ScriptedBackend(outputs)
    agent = Agent(
        backend,
        executor,
        TraceStore(memory),
        PromptBuilder(count_tokens=backend.count_tokens),
        GenerationSettings(temperature=0, seed=7),
        max_steps=max_steps,
    )
    return agent.run("Note that I need milk."), backend


def shown_with_the_question(backend: ScriptedBackend) -> str:
    """What the model was shown with the question and after it when it gave its final answer.
    Tool results go back as a user or a tool message after the question, or (on a turn that
    may only answer) as text before it in the same message, depending on the protocol."""
    messages = backend.requests[-1]["messages"]
    asked = max(i for i, m in enumerate(messages) if m["role"] == "user" and "milk" in m["content"])
    return "\n".join(str(m.get("content") or "") for m in messages[asked:])


def test_approved_call_runs_and_is_recorded(workspace, memory) -> None:
    confirmer = ScriptedConfirmationHandler(["once"])
    executor = workspace.executor(memory, confirmer)
    trace, backend = run(
        executor, memory, [call("write_note", note="shop", text="milk"), final("Noted.")]
    )
    assert trace.status == "ok" and trace.final_answer == "Noted."
    assert (workspace.notes / "shop.md").read_text() == "milk\n"
    outcome = trace.steps[0].tool_outcome
    assert outcome["status"] == "ok" and outcome["answer"] == "allow_once"
    assert outcome["rule"] == "user:allow_once" and outcome["decision"] == "allow"
    assert "Created the note" in shown_with_the_question(backend)


def test_denied_call_reaches_the_model_and_the_run_goes_on(workspace, memory) -> None:
    executor = workspace.executor(memory, ScriptedConfirmationHandler(["deny"]))
    trace, backend = run(
        executor,
        memory,
        [call("write_note", note="shop", text="milk"), final("I did not write it.")],
    )
    assert trace.status == "ok" and trace.final_answer == "I did not write it."
    step = trace.steps[0]
    assert step.kind == "tool_call" and step.tool_outcome["status"] == "denied"
    assert "denied by the user" in shown_with_the_question(backend)
    assert not (workspace.notes / "shop.md").exists()


def test_timed_out_confirmation_is_a_denial(workspace, memory) -> None:
    confirmer = ScriptedConfirmationHandler(["hang"])
    executor = workspace.executor(memory, confirmer, confirm_timeout_s=0.2)
    try:
        trace, _ = run(
            executor, memory, [call("write_note", note="shop", text="milk"), final("No answer.")]
        )
    finally:
        confirmer.release()
    assert trace.status == "ok"
    outcome = trace.steps[0].tool_outcome
    assert outcome["status"] == "denied" and "no answer within 0.2 s" in outcome["observation"]
    assert not (workspace.notes / "shop.md").exists()


def test_always_answer_then_a_second_call_does_not_ask(workspace, memory) -> None:
    confirmer = ScriptedConfirmationHandler(["always"])
    executor = workspace.executor(memory, confirmer)
    # One write a run: after a write went through, the agent's next turn answers.
    trace, _ = run(executor, memory, [call("write_note", note="shop", text="milk"), final("ok")])
    again, _ = run(executor, memory, [call("write_note", note="shop", text="eggs"), final("ok")])
    first, second = trace.steps[0].tool_outcome, again.steps[0].tool_outcome
    assert first["answer"] == "allow_always" and second["answer"] is None
    assert second["status"] == "ok" and second["rule"] == first["rule"]
    assert len(confirmer.requests) == 1
    assert (workspace.notes / "shop.md").read_text() == "milk\n\neggs\n"
    # The rule outlives the run: it is in memory.db.
    assert [r.lifetime.value for r in executor.policy.rules()] == ["always"]


def test_trace_steps_link_to_the_audit_log(workspace, memory) -> None:
    executor = workspace.executor(memory)
    trace, _ = run(executor, memory, [call("calculator", expression="2+2"), final("4")])
    outcome = trace.steps[0].tool_outcome
    entry = executor.audit.get(outcome["audit_id"])
    assert entry is not None and entry.tool == "calculator" and entry.status == "ok"


def test_audit_rows_carry_the_trace_id(workspace, memory) -> None:
    executor = workspace.executor(memory)
    trace, _ = run(executor, memory, [call("calculator", expression="2+2"), final("4")])
    assert [e.id for e in executor.audit.recent(trace_id=trace.id)] == [
        trace.steps[0].tool_outcome["audit_id"]
    ]
