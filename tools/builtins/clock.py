"""current_datetime: the model has no clock of its own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tools.base import Risk, Tool, ToolError


def make_current_datetime(now: Callable[[], datetime] | None = None) -> Tool:
    """``now`` returns an aware datetime (injectable so tests and replays are deterministic)."""
    clock = now or (lambda: datetime.now().astimezone())

    def current_datetime(timezone: str = "") -> dict[str, Any]:
        moment = clock()
        if timezone:
            try:
                moment = moment.astimezone(ZoneInfo(timezone))
            except (ZoneInfoNotFoundError, ValueError):
                raise ToolError(
                    f"unknown time zone {timezone!r}; use an IANA name such as Europe/Paris"
                ) from None
        offset = moment.utcoffset()
        return {
            "iso": moment.isoformat(timespec="seconds"),
            "date": moment.date().isoformat(),
            "time": moment.strftime("%H:%M:%S"),
            "weekday": moment.strftime("%A"),
            "timezone": moment.tzname() or "",
            "utc_offset_hours": offset.total_seconds() / 3600 if offset is not None else 0.0,
        }

    return Tool(
        name="current_datetime",
        description="The current date, time and weekday (local, or in a given IANA time zone).",
        parameters={
            "type": "object",
            "properties": {"timezone": {"type": "string", "description": "e.g. Europe/Paris"}},
            "additionalProperties": False,
        },
        risk=Risk.READ,
        function=current_datetime,
        answers=True,
    )
