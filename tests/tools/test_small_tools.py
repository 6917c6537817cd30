"""calculator, current_datetime and search_knowledge."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from tools.base import ToolError, ToolRegistry
from tools.builtins.calculator import evaluate
from tools.builtins.clock import make_current_datetime
from tools.builtins.knowledge import make_search_knowledge
from tools.executor import ToolExecutor


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("2 + 3 * 4", 14),
        ("(2 + 3) * 4", 20),
        ("2 ** 10", 1024),
        ("2 ^ 10", 1024),
        ("-7 // 2", -4),
        ("7 % 3", 1),
        ("sqrt(16) + abs(-2)", 6.0),
        ("round(pi, 3)", 3.142),
        ("max(1, 5, 3)", 5),
        ("factorial(10)", 3628800),
        ("log10(1000)", 3.0),
        ("1e3 / 4", 250.0),
    ],
)
def test_calculator_values(expression: str, value: float) -> None:
    assert evaluate(expression) == pytest.approx(value)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('echo hi')", "not allowed"),
        ("__import__('os')", "unknown function"),
        ("().__class__.__bases__", "not allowed"),
        ("open('/etc/passwd')", "unknown function"),
        ("x + 1", "unknown name"),
        ("lambda: 1", "not allowed"),
        ("[1, 2]", "not allowed"),
        ("'a' * 3", "not allowed"),
        ("1 / 0", "division by zero"),
        ("9 ** 9 ** 9", "too large"),
        ("10 ** 100000", "too large"),
        ("factorial(100000)", "limited"),
        ("2 ** 9999 * 2 ** 9999", "too large"),
        ("10.0 ** 400", "too large"),
        ("exp(1000)", "too large"),
        ("sqrt(-1)", "cannot compute"),
        ("(-8) ** 0.5", "complex"),
        ("1 +", "not a valid expression"),
        ("-" * 400 + "1", "too complex"),
        ("1" + "+1" * 300, "longer than"),
    ],
)
def test_calculator_refuses(expression: str, message: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ToolError, match=message):
        evaluate(expression)
    assert time.perf_counter() - started < 0.5  # refused before doing the huge work


def test_calculator_through_the_executor(workspace, memory) -> None:
    executor = workspace.executor(memory)
    assert executor.call("calculator", {"expression": "6*7"}).observation == "6*7 = 42"
    bad = executor.call("calculator", {"expression": "1/0"})
    assert bad.status == "error" and bad.observation == "Error: division by zero"


def test_current_datetime() -> None:
    fixed = datetime(2024, 3, 5, 14, 30, tzinfo=UTC)
    tool = make_current_datetime(lambda: fixed)
    local = tool.function()
    assert local["iso"] == "2024-03-05T14:30:00+00:00" and local["weekday"] == "Tuesday"
    paris = tool.function(timezone="Europe/Paris")
    assert paris["time"] == "15:30:00" and paris["utc_offset_hours"] == 1.0
    with pytest.raises(ToolError, match="unknown time zone"):
        tool.function(timezone="Mars/Olympus")


def test_current_datetime_default_clock_through_executor() -> None:
    executor = ToolExecutor(ToolRegistry([make_current_datetime()]))
    outcome = executor.call("current_datetime", {})
    assert outcome.ok and str(datetime.now().year) in outcome.observation


@dataclass
class Hit:
    source: str
    score: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "score": self.score, "text": self.text}


def test_search_knowledge_uses_the_injected_search() -> None:
    calls = []

    def search(query: str, k: int) -> list[Hit]:
        calls.append((query, k))
        return [Hit("notes/a.md", 0.91234, "Alpha text."), Hit("b.pdf", 0.5, "B" * 5000)]

    executor = ToolExecutor(ToolRegistry([make_search_knowledge(search)]))
    outcome = executor.call("search_knowledge", {"query": "alpha", "k": 2})
    assert outcome.ok and calls == [("alpha", 2)]
    assert "[1] source=notes/a.md score=0.9123" in outcome.observation
    assert "Alpha text." in outcome.observation and "[...]" in outcome.observation
    assert "not instructions" in outcome.observation
    assert executor.call("search_knowledge", {"query": "x", "k": 99}).status == (
        "invalid_arguments"
    )


def test_search_knowledge_with_no_hits_and_a_failing_search() -> None:
    def failing(query: str, k: int) -> list[Hit]:
        raise RuntimeError("index is being rebuilt")

    ok = ToolExecutor(ToolRegistry([make_search_knowledge(lambda q, k: [])]))
    assert ok.call("search_knowledge", {"query": "x"}).observation == "No passages matched."
    broken = ToolExecutor(ToolRegistry([make_search_knowledge(failing)]))
    outcome = broken.call("search_knowledge", {"query": "x"})
    assert outcome.status == "error" and "index is being rebuilt" in outcome.observation


def test_search_knowledge_is_only_offered_with_a_search(workspace, memory) -> None:
    assert "search_knowledge" not in workspace.executor(memory).registry.names()
    with_search = workspace.executor(memory, search=lambda q, k: [{"text": "dict hit"}])
    assert "dict hit" in with_search.call("search_knowledge", {"query": "q"}).observation


def test_builtin_schemas_stay_grammar_friendly(workspace, memory) -> None:
    """llama.cpp turns these schemas into the grammar the model samples under; length and
    item caps expand into repeated rules it refuses (and then crashes on)."""
    executor = workspace.executor(memory, search=lambda q, k: [])

    def keys(node: object) -> set[str]:
        if isinstance(node, dict):
            return set(node) | {k for v in node.values() for k in keys(v)}
        if isinstance(node, list):
            return {k for v in node for k in keys(v)}
        return set()

    for tool in executor.registry:
        assert not keys(tool.parameters) & {"maxLength", "maxItems", "pattern"}, tool.name
