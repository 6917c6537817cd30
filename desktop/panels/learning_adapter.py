"""What the Learning page needs from the learning engine, as plain rows (no Qt).

The page calls these methods from workers. Each maps :class:`agent_core.learning.Learning`'s
API onto rows the page can show; where the engine (or one capability of it) is missing, the
method raises :class:`Unavailable` and the page says so instead of failing.
"""

from __future__ import annotations

import difflib
import threading
from typing import Any

from desktop import seams


class Unavailable(Exception):
    """This build's learning engine does not offer that (yet)."""


def as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    return dict(vars(value))


class LearningAdapter:
    def __init__(self, services: Any) -> None:
        self.services = services

    @property
    def engine(self) -> Any:
        engine = seams.learning_service(self.services)
        if engine is None:
            raise Unavailable("The learning engine is not part of this build.")
        return engine

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self.engine, name, None)
        if not callable(method):
            raise Unavailable(f"This build's learning engine cannot {name.replace('_', ' ')}.")
        return method(*args, **kwargs)

    def available(self, name: str) -> bool:
        if name == "edit_lesson":  # done through lesson deltas when there is no method
            return self.available("lesson_list")
        try:
            return seams.has_capability(self.engine, name)
        except Unavailable:
            return False

    # -- runs -------------------------------------------------------------------------------
    def runs(self, limit: int = 300) -> list[dict[str, Any]]:
        return list(self.services.traces.list(limit=limit))

    def feedback_marks(self) -> dict[str, str]:
        """trace id -> "up" | "down" | "corrected": the feedback in force on each run."""
        try:
            ratings = self._call("ratings")
            corrections = self._call("corrections")
        except Unavailable:
            return {}
        marks: dict[str, str] = {}
        for rating in sorted(ratings, key=lambda r: r.created_at):
            if rating.superseded_by is None:
                marks[rating.trace_id] = "up" if rating.value > 0 else "down"
        for correction in corrections:
            marks[correction.trace_id] = "corrected"
        return marks

    def trace(self, trace_id: str) -> Any:
        return self.services.traces.get(trace_id)

    def replay(self, trace_id: str) -> dict[str, Any]:
        """``{"steps": [{"match": bool, "detail": str}], "first_divergence": int | None,
        "summary": str}``: the exact replay (recorded model outputs, live tools; tools with
        side effects are not re-run)."""
        report = self._call("replay", trace_id)
        first = report.first_divergence
        steps = []
        for step in report.steps:
            data = as_dict(step)
            detail = data.get("detail") or ""
            if data.get("status") == "diverged" and data.get("expected") is not None:
                detail += f"\nrecorded: {data['expected']}\nnow: {data.get('actual')}"
            steps.append({"match": data.get("status") != "diverged", "detail": detail,
                          "status": data.get("status")})  # fmt: skip
        summary = (
            f"Replayed {len(steps)} steps: every step matches the recording."
            if first is None
            else f"Replayed: step {first + 1} diverges from the recording."
        )
        return {"steps": steps, "first_divergence": first, "summary": summary}

    def forget(self, kind: str, key: str) -> Any:
        return self._call("forget", kind, key)

    # -- experiences, lessons, prompt versions ----------------------------------------------
    def experiences(self) -> list[dict[str, Any]]:
        return [as_dict(e) for e in self._call("experience_list")]

    def lessons(self) -> list[dict[str, Any]]:
        return [as_dict(e) for e in self._call("lesson_list")]

    def edit_lesson(self, lesson_id: str, text: str) -> Any:
        engine = self.engine
        if seams.has_capability(engine, "edit_lesson"):
            return engine.edit_lesson(lesson_id, text)
        from agent_core.learning.lessons import LessonDelta

        applied = engine.lessons.apply(
            [LessonDelta("edit", text=text, lesson_id=int(lesson_id), source="user")]
        )
        result = applied[0]
        if result.status != "edited":
            raise Unavailable(f"Not changed: {result.reason or result.status}.")
        return result

    def retire_lesson(self, lesson_id: str) -> Any:
        return self._call("retire_lesson", lesson_id)

    def prompt_versions(self) -> list[dict[str, Any]]:
        return [as_dict(v) for v in self._call("prompt_versions")]

    def rollback(self, version_id: str) -> Any:
        return self._call("rollback", version_id)

    def refine(self, cancel: threading.Event) -> str:
        result = as_dict(self._call("refine", cancel=cancel))
        status, reason = result.get("status", ""), result.get("reason", "")
        scores = ""
        if result.get("candidate_score") is not None:
            scores = (
                f" (candidate {result['candidate_score']:.3f} vs current "
                f"{result.get('current_score') or 0:.3f})"
            )
        return f"Refinement {status}{scores}: {reason}".strip()

    def schedule(self) -> dict[str, Any]:
        """The idle refinement schedule: next run, last run and its result."""
        return dict(self._call("refinement_schedule"))

    def judge_status(self) -> str:
        """Who judges questions asked in other words (the learning judge), in a line."""
        return str(self._call("judge_status"))

    def export(self, path: str, fmt: str) -> str:
        result = as_dict(self._call("export", path, fmt))
        return f"Wrote {result.get('rows', 'the')} {fmt} records to {result.get('path', path)}."


def version_diff(old_text: str, new_text: str, old_id: str, new_id: str) -> str:
    return (
        "\n".join(
            difflib.unified_diff(
                old_text.splitlines(), new_text.splitlines(), old_id, new_id, lineterm="", n=2
            )
        )
        or "(no change in the text)"
    )
