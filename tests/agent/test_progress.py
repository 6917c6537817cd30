"""Step lines: what a person reads while the agent works."""

from __future__ import annotations

from agent_core.agent import AgentEvent
from agent_core.progress import step_line


def test_a_search_names_the_files_once() -> None:
    event = AgentEvent(
        "searched", 0, {"sources": ["/n/bread.md (Sourdough)", "/n/bread.md", "/n/x.txt"]}
    )
    line = step_line(event)
    assert line is not None and line.startswith("searched your notes: 3 passages")
    assert "bread.md" in line and "x.txt" in line


def test_nothing_found_is_not_worth_a_line() -> None:
    assert step_line(AgentEvent("searched", 0, {"sources": []})) is None
    assert step_line(AgentEvent("step_started", 0)) is None


def test_calls_and_results_are_one_short_line_without_control_characters() -> None:
    call = step_line(
        AgentEvent("tool_call", 1, {"tool": "calculator", "arguments": {"expression": "17*23"}})
    )
    assert call == 'calling calculator {"expression": "17*23"}'
    result = step_line(
        AgentEvent(
            "tool_result",
            1,
            {
                "tool": "read_file",
                "status": "ok",
                "observation": "line one\n\x1b]52;c;evil\x07" + "x" * 500,
            },
        )
    )
    assert result is not None and "\x1b" not in result and "\n" not in result
    assert len(result) < 140
