"""Did a run work? The learning loop learns only from runs that did.

A run the user has not rated *worked* when it can be verified from its trace alone
(:func:`unverified_reason` returns None): it ended ``ok`` with a non-empty answer of the model
(not the agent's stand-in for an empty one, not cut off), the answer leaks nothing of the
protocol (tags, JSON, placeholders, loop guidance; :func:`leak_kind`), every tool call went
through and returned something (its postconditions held), nothing was denied, and no error
was recorded. An up-rating by the user counts instead of all that.
"""

from __future__ import annotations

import re

from agent_core.traces import Trace

# What a person must never read as an answer (the same kinds the answers benchmark counts).
LEAKS = {
    "protocol tags": re.compile(
        r"</?tool_call>|<\|im_|<\|eot_id\|>|<\|start_header_id\|>|\[TOOL_CALLS\]|<\|python_tag\|>"
    ),
    "placeholder": re.compile(r"<your [^>]*>|<tool name>", re.I),
    "json": re.compile(r'^\s*[\[{]\s*"|"action"\s*:|"final_answer"|\{"tool"\s*:|\{"name"\s*:'),
    "internal text": re.compile(
        r"you already called|this exact call was already made|no more tool calls now|"
        r"^error:|result of \w+:|not valid json|"
        # The prompt's own frame around the notes, echoed back (measured: the 0.5B model
        # answered a recipe sum with the passages and this line before its sum).
        r"^from my files:|^answer from these passages|"
        # The guidance of a replayed experience, retold (seen: "The task that worked for
        # similar tasks before was ...").
        r"worked for similar tasks before",
        re.I | re.M,
    ),
}
# The agent's sentence in place of an empty model answer, and its note when steps ran out.
STAND_INS = ("could not come up with an answer", "without a final answer")


def leak_kind(answer: str | None) -> str | None:
    """``empty`` or the kind of leak in ``answer``, or None for a clean answer."""
    if not answer or not answer.strip():
        return "empty"
    lowered = answer.lower()
    if any(s in lowered for s in STAND_INS):
        return "empty"
    for kind, pattern in LEAKS.items():
        if pattern.search(answer):
            return kind
    return None


def unverified_reason(trace: Trace) -> str | None:
    """Why ``trace`` cannot be taken as a run that worked, or None when it can."""
    if trace.status != "ok":
        return f"it ended {trace.status}"
    if trace.error:
        return "it recorded an error"
    if trace.extra.get("empty_answer"):
        return "the model gave no answer"
    if trace.extra.get("truncated"):
        return "the answer was cut off"
    leak = leak_kind(trace.final_answer)
    if leak is not None:
        return "the answer is empty" if leak == "empty" else f"the answer leaks {leak}"
    replay = trace.extra.get("replay") or {}
    fell_back = replay.get("fell_back") if isinstance(replay, dict) else None
    for step in trace.steps:
        outcome = step.tool_outcome
        if not outcome:
            continue
        status = outcome.get("status")
        if status == "denied":
            return f"{step.tool_name} was denied"
        if status != "ok":
            return f"{step.tool_name} ended {status}"
        if not (step.observation or "").strip():
            return f"{step.tool_name} returned nothing"
    if fell_back and fell_back.get("step") in replay.get("replayed_steps", []):
        return f"a replayed step failed its check: {fell_back.get('reason')}"
    return None


def verified(trace: Trace) -> bool:
    return unverified_reason(trace) is None
