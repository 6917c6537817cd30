"""Export for users who fine-tune elsewhere: good runs and corrections as SFT JSONL, and
corrected or down-rated answers as preference JSONL. Nothing secret leaves: every string is
passed through the audit log's redaction (API keys, tokens, passwords in URLs ...), and
secrets never reach traces in the first place (they live in the OS keyring).

SFT rows: ``{"messages": [...], "meta": {...}}`` — the messages exactly as the model saw
them at its last step, then the assistant's reply in the model's own JSON action format.
Preference rows (TRL's conversational format): ``{"prompt": [...], "chosen": [assistant],
"rejected": [assistant], "meta": {...}}``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from agent_core.learning.feedback import FeedbackStore
from agent_core.learning.similarity import normalize_question
from agent_core.traces import Trace, TraceNotFoundError, TraceStore
from models.errors import JackdawError
from tools.redact import redact_text

SFT, PREFERENCE = "sft", "preference"


class ExportError(JackdawError):
    hint = "Choose --format sft or --format preference, and a path you can write."


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    return value


def _last_prompt(trace: Trace) -> list[dict[str, str]] | None:
    """The messages of the last model call of the run (None: it made none)."""
    steps = [s for s in trace.steps if s.messages and s.response_schema is not None]
    return [dict(m) for m in steps[-1].messages] if steps else None


def _assistant(answer: str) -> dict[str, str]:
    return {"role": "assistant", "content": answer}


def sft_rows(traces: TraceStore, feedback: FeedbackStore) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    corrected: set[str] = set()
    for correction in feedback.corrections():
        corrected.add(correction.trace_id)
        try:
            prompt = _last_prompt(traces.get(correction.trace_id))
        except TraceNotFoundError:
            continue
        if prompt is None:
            continue
        rows.append(
            {
                "messages": [*prompt, _assistant(correction.answer)],
                "meta": {
                    "kind": "correction",
                    "correction_id": correction.id,
                    "trace_id": correction.trace_id,
                },
            }
        )
    for rating in feedback.ratings(history=False):
        if not rating.up or rating.trace_id in corrected:
            continue
        try:
            trace = traces.get(rating.trace_id)
        except TraceNotFoundError:
            continue
        prompt = _last_prompt(trace)
        last = [s for s in trace.steps if s.response_schema is not None]
        if prompt is None or trace.status != "ok" or not last or last[-1].kind != "final":
            continue
        reply = {"role": "assistant", "content": trace.final_answer or ""}
        rows.append(
            {"messages": [*prompt, reply], "meta": {"kind": "uprated", "trace_id": trace.id}}
        )
    return rows


def preference_rows(traces: TraceStore, feedback: FeedbackStore) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    corrected: dict[str, str] = {}  # normalised question -> corrected answer
    for correction in feedback.corrections():
        corrected[normalize_question(correction.question)] = correction.answer
        try:
            trace = traces.get(correction.trace_id)
        except TraceNotFoundError:
            continue
        prompt = _last_prompt(trace)
        if prompt is None or not correction.original_answer:
            continue
        rows.append(
            {
                "prompt": prompt,
                "chosen": [_assistant(correction.answer)],
                "rejected": [_assistant(correction.original_answer)],
                "meta": {
                    "kind": "correction",
                    "correction_id": correction.id,
                    "trace_id": trace.id,
                },
            }
        )
    done = {c.trace_id for c in feedback.corrections()}
    good: dict[str, str] = {}
    ratings = feedback.ratings(history=False)
    for rating in ratings:
        if rating.up:
            try:
                trace = traces.get(rating.trace_id)
            except TraceNotFoundError:
                continue
            if trace.final_answer:
                good.setdefault(normalize_question(trace.question), trace.final_answer)
    for rating in ratings:
        if rating.up or rating.trace_id in done:
            continue
        try:
            trace = traces.get(rating.trace_id)
        except TraceNotFoundError:
            continue
        key = normalize_question(trace.question)
        chosen = corrected.get(key) or good.get(key)
        prompt = _last_prompt(trace)
        if chosen is None or prompt is None or not trace.final_answer:
            continue  # a down-rating alone says what is wrong, not what is right
        rows.append(
            {
                "prompt": prompt,
                "chosen": [_assistant(chosen)],
                "rejected": [_assistant(trace.final_answer)],
                "meta": {"kind": "downrated", "trace_id": trace.id},
            }
        )
    return rows


def export_jsonl(
    path: Path, fmt: str, traces: TraceStore, feedback: FeedbackStore
) -> dict[str, Any]:
    if fmt == SFT:
        rows = sft_rows(traces, feedback)
    elif fmt == PREFERENCE:
        rows = preference_rows(traces, feedback)
    else:
        raise ExportError(f"Unknown export format {fmt!r}.")
    path = Path(path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(_scrub(row), ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise ExportError(f"Could not write {path}: {exc}") from exc
    return {"path": str(path), "format": fmt, "rows": len(rows)}
