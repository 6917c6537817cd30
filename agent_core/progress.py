"""Steps as a person reads them: one short line for each thing the agent does.

The CLI prints these lines while a run goes on, the desktop app shows them above the answer;
both show :func:`related_fact_line` below it.
"""

from __future__ import annotations

import json
from typing import Any

from agent_core.agent import AgentEvent

_CONTROL = {c: " " for c in range(32) if c not in (9,)} | {127: " "}


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.translate(_CONTROL).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def step_line(event: AgentEvent) -> str | None:
    """The line for ``event``, or None when it is not worth a line of its own."""
    data = event.data
    if event.kind == "searched":
        sources = data.get("sources") or []
        if not sources:
            return None
        names = ", ".join(dict.fromkeys(s.rsplit("/", 1)[-1] for s in sources))
        return f"searched your notes: {len(sources)} passages ({_short(names, 60)})"
    if event.kind == "tool_call":
        tool = data.get("tool", "")
        args = data.get("arguments")
        if tool == "search_knowledge" and isinstance(args, dict) and "query" in args:
            return f"searching your notes for {_short(args['query'], 60)!r}"
        return f"calling {tool} {_short(args, 60)}"
    if event.kind == "tool_result":
        status = data.get("status", "")
        first = _short(data.get("observation", ""), 100)
        return f"{data.get('tool', '')} {status}: {first}" if first else None
    return None


def related_fact_line(extra: dict[str, Any]) -> str | None:
    """What the person is shown beside an answer when something they taught is close to the
    question but was not given to the model (``related_fact`` on the trace): "You taught me:
    "What is my blood type?" -> My blood type is A negative. (rated up on 2026-12-01)"."""
    fact = extra.get("related_fact")
    if not isinstance(fact, dict) or not fact.get("answer"):
        return None
    how = "rated up" if fact.get("kind") == "confirmed" else "your correction"
    when = f" on {fact['date']}" if fact.get("date") else ""  # VerifiedFact.to_dict's
    question = _short(fact.get("question", ""), 120)
    return f'You taught me: "{question}" -> {_short(fact["answer"], 240)} ({how}{when})'
