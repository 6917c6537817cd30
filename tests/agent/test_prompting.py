from __future__ import annotations

import pytest

from agent_core.prompting import Guidance, Passage, PromptBuilder, PromptTooLargeError, Turn
from tools.base import Risk, Tool


def words(text: str) -> int:
    return len(text.split())


def test_stable_blocks_first_and_history_trimmed_oldest_first() -> None:
    history = [Turn(f"question {i} " + "pad " * 20, f"answer {i}") for i in range(10)]
    builder = PromptBuilder(count_tokens=words, history_budget=100)
    built = builder.build("now?", history=history)
    kept_questions = [m["content"] for m in built.messages if m["role"] == "user"][:-1]
    assert kept_questions[-1].startswith("question 9")
    assert built.dropped_turns == list(range(0, 10 - len(kept_questions)))
    assert built.block_tokens["history"] <= 100
    assert built.messages[0]["role"] == "system"
    # The system block does not depend on the question: the prefix cache stays warm.
    again = builder.build("something else entirely", history=history)
    assert again.messages[0] == built.messages[0]


def test_system_block_over_budget_is_an_error_not_a_silent_cut() -> None:
    tool = Tool("t", "x " * 400, {"type": "object"}, Risk.READ, lambda: None)
    with pytest.raises(PromptTooLargeError, match="budget"):
        PromptBuilder(count_tokens=words, system_budget=200).build("q", tools=[tool])


def test_passages_over_budget_are_dropped_and_reported() -> None:
    passages = [Passage(f"doc{i}.md", "word " * 50) for i in range(5)]
    built = PromptBuilder(count_tokens=words, retrieval_budget=120).build("q", passages=passages)
    assert len(built.passages) == 2
    assert built.dropped_passages == [2, 3, 4]
    assert "--- doc1.md" in built.messages[-1]["content"]


def test_prompt_version_is_the_hash_of_the_system_prompt() -> None:
    a = PromptBuilder(count_tokens=words, system_text="You are A.")
    b = PromptBuilder(count_tokens=words, system_text="You are B.")
    assert a.version != b.version and len(a.version) == 16
    assert a.build("q").prompt_version == a.version


def test_the_plans_block_starts_with_the_header_answer_turns_leave_out() -> None:
    from agent_core.prompting import render
    from agent_core.protocols import GUIDANCE_HEADER

    text = render("workflows.txt", guidance=[Guidance("t", "1. Call x.", "e1")])
    assert text.startswith(GUIDANCE_HEADER) and "\n\n" not in text.strip()
