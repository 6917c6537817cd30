"""Demo data for screenshots and docs: a temp data folder with a few notes, conversations
with sources and markers, a permission rule and audit entries. Plain Python, no Qt."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from agent_core.config import Config, Paths
from agent_core.traces import Step, Trace
from tools.rules import Lifetime, Scope

NOTES = {
    "budget-2025.md": "# Q3 budget\n\nWe agreed to cap travel at 4,000 EUR and to move the "
    "conference budget to Q4.\n\n## Decisions\n\n- Travel cap 4,000 EUR\n- Hiring freeze until "
    "October\n",
    "csv-export.md": "# CSV export\n\nThe export uses `;` as the separator and UTF-8 with BOM.\n",
    "shopping.md": "# Shopping\n\n- bread\n",
}

BUDGET_ANSWER = """We decided three things for **Q3**:

1. Travel is capped at **4,000 EUR**.
2. The conference budget moves to **Q4**.
3. Hiring is frozen until October.

See *Q3 budget › Decisions* in your notes."""

CSV_ANSWER = """The export uses `;` as the separator and is UTF-8 with a BOM, so read it like this:

```python
import csv

with open("export.csv", encoding="utf-8-sig", newline="") as fh:
    for row in csv.DictReader(fh, delimiter=";"):
        print(row["name"], row["amount"])
```

`utf-8-sig` drops the BOM; `newline=""` lets `csv` handle line endings."""


def _trace(
    question: str,
    answer: str,
    conversation_id: str,
    sources: list[dict[str, Any]],
    extra: dict[str, Any] | None = None,
    when: float | None = None,
) -> Trace:
    now = when or time.time()
    trace = Trace(
        question=question,
        model={"name": "SmolLM2 135M Instruct", "architecture": "llama"},
        settings={"temperature": 0.2, "seed": 42},
        conversation_id=conversation_id,
        created_at=now,
        status="ok",
        final_answer=answer,
        prompt_version="v1",
        duration_ms=2100.0,
    )
    trace.extra = {"sources": sources, **(extra or {})}
    trace.steps = [
        Step(
            idx=0,
            kind="final",
            messages=[
                {"role": "system", "content": "You are Jackdaw…"},
                {"role": "user", "content": question},
            ],
            response_schema={"protocol": "hermes", "answer": "free text"},
            settings={"temperature": 0.2},
            started_at=now,
            raw_output=answer,
            prompt_tokens=412,
            completion_tokens=96,
            duration_ms=2100.0,
            first_token_ms=180.0,
        )
    ]
    return trace


def build_demo(root: Path, services_class: Any) -> Any:
    """A ``services_class`` instance on a fresh data folder under ``root``, filled with demo
    data. The caller closes it."""
    paths = Paths(config_dir=root, data_dir=root, cache_dir=root / "cache")
    notes = root / "Notes"
    notes.mkdir(parents=True, exist_ok=True)
    for name, text in NOTES.items():
        (notes / name).write_text(text, encoding="utf-8")
    config = Config()
    config.tools.notes_folder = str(notes)
    config.knowledge.watched_folders = [str(notes)]
    services = services_class(paths, config)
    services.save_config()
    day = 24 * 3600
    now = time.time()

    older = services.conversations.create()
    trace = _trace(
        "How do I read the CSV export in Python?",
        CSV_ANSWER,
        older,
        [
            {
                "source": f"{notes}/csv-export.md (CSV export)",
                "text": "",
                "meta": {"path": str(notes / "csv-export.md"), "heading": "CSV export"},
            }
        ],
        extra={"replayed_from": "exp-3f2a"},
        when=now - 2 * day,
    )
    services.traces.save(trace)
    services.conversations.append(older, trace.question, CSV_ANSWER, trace.id)

    recent = services.conversations.create()
    first = _trace(
        "What did we decide about the Q3 budget?",
        BUDGET_ANSWER,
        recent,
        [
            {
                "source": f"{notes}/budget-2025.md (Decisions)",
                "text": "",
                "meta": {"path": str(notes / "budget-2025.md"), "heading": "Decisions"},
            },
            {
                "source": f"{root}/Reports/board-minutes.pdf (page 3)",
                "text": "",
                "meta": {"path": str(root / "Reports" / "board-minutes.pdf"), "page": 3},
            },
        ],
        when=now - 600,
    )
    services.traces.save(first)
    services.conversations.append(recent, first.question, BUDGET_ANSWER, first.id)
    cap = "The travel cap is **4,000 EUR** per quarter (your correction of last week)."
    second = _trace(
        "And the travel cap?",
        cap,
        recent,
        [],
        extra={
            "correction": {
                "correction_id": 1,
                "created_at": now - 7 * day,
                "question": "What is the travel cap?",
                "answer": cap,
            }
        },
        when=now - 300,
    )
    services.traces.save(second)
    services.conversations.append(recent, second.question, cap, second.id)
    services.conversations.rename(recent, "Q3 budget decisions")

    executor = services.tool_executor
    executor.policy.allow(Scope.make("write_note", notes), Lifetime.ALWAYS)
    if executor.audit is not None:
        for tool, args, status, decision, rule, answer in (
            ("search_knowledge", {"query": "Q3 budget"}, "ok", "allow", "default:read", None),
            (
                "write_note",
                {"note": "shopping", "text": "oat milk"},
                "ok",
                "allow",
                "user:allow_once",
                "allow_once",
            ),
            ("run_python", {"code": "print(2**10)"}, "denied", "deny", "user:deny", "deny"),
        ):
            executor.audit.record(
                tool=tool,
                arguments=args,
                status=status,
                observation="",
                duration_ms=12.0,
                decision=decision,
                rule=rule,
                answer=answer,
                trace_id=first.id,
            )
    return services
