"""Asking the user: the ConfirmationHandler Protocol, its answers, and a scripted handler.

The core never shows UI: the CLI injects a terminal prompt (tools/terminal.py), the GUI a
dialog, tests a :class:`ScriptedConfirmationHandler`. Whatever the handler, no answer within
``request.timeout_s`` counts as a denial (:func:`confirm_within` enforces it even for a
handler that forgets to).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from tools.rules import Lifetime, Scope


class AnswerKind(StrEnum):
    ALLOW_ONCE = "allow_once"
    ALLOW_SESSION = "allow_session"
    ALLOW_ALWAYS = "allow_always"
    DENY = "deny"


@dataclass(frozen=True)
class ConfirmationRequest:
    tool: str
    description: str
    risk: str
    arguments: dict[str, Any]
    reason: str  # why the policy asks
    preview: str | None = None  # for writes: what would change
    paths: tuple[str, ...] = ()  # resolved paths the call would touch
    scope: Scope | None = None  # offered for "allow always" / "this session"; None: not offered
    timeout_s: float = 60.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "description": self.description,
            "risk": self.risk,
            "arguments": self.arguments,
            "reason": self.reason,
            "preview": self.preview,
            "paths": list(self.paths),
            "scope": self.scope.to_dict() if self.scope else None,
            "timeout_s": self.timeout_s,
        }


@dataclass(frozen=True)
class Answer:
    kind: AnswerKind
    scope: Scope | None = None  # for allow_session / allow_always
    note: str = ""  # e.g. "no answer within 60 s"

    @classmethod
    def allow_once(cls) -> Answer:
        return cls(AnswerKind.ALLOW_ONCE)

    @classmethod
    def allow_session(cls, scope: Scope) -> Answer:
        return cls(AnswerKind.ALLOW_SESSION, scope)

    @classmethod
    def allow_always(cls, scope: Scope) -> Answer:
        return cls(AnswerKind.ALLOW_ALWAYS, scope)

    @classmethod
    def deny(cls, note: str = "") -> Answer:
        return cls(AnswerKind.DENY, note=note)

    @property
    def allowed(self) -> bool:
        return self.kind is not AnswerKind.DENY

    @property
    def lifetime(self) -> Lifetime | None:
        """The rule lifetime this answer asks for; None when it creates no rule."""
        return {
            AnswerKind.ALLOW_SESSION: Lifetime.SESSION,
            AnswerKind.ALLOW_ALWAYS: Lifetime.ALWAYS,
        }.get(self.kind)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "scope": self.scope.to_dict() if self.scope else None,
            "note": self.note,
        }


@runtime_checkable
class ConfirmationHandler(Protocol):
    def confirm(self, request: ConfirmationRequest) -> Answer:
        """Ask the user; should give up (deny) after ``request.timeout_s`` seconds."""
        ...


class DenyAll:
    """The handler of a headless build: with nobody to ask, whatever asks is denied."""

    def confirm(self, request: ConfirmationRequest) -> Answer:
        return Answer.deny("nobody to ask (no confirmation handler)")


class ScriptedConfirmationHandler:
    """Returns queued answers in order and records every request (tests).

    An answer may be an :class:`Answer`, or the strings ``"once"``, ``"session"``,
    ``"always"`` (with the request's offered scope), ``"deny"``, or ``"hang"`` (never
    answers, to test the timeout). With the queue empty it denies.
    """

    def __init__(self, answers: Iterable[Answer | str] = ()) -> None:
        self.answers: deque[Answer | str] = deque(answers)
        self.requests: list[ConfirmationRequest] = []
        self._release = threading.Event()

    def confirm(self, request: ConfirmationRequest) -> Answer:
        self.requests.append(request)
        answer = self.answers.popleft() if self.answers else "deny"
        if isinstance(answer, Answer):
            return answer
        if answer == "hang":
            self._release.wait(request.timeout_s + 30)
            return Answer.allow_once()  # too late: the executor has already denied
        if answer in ("always", "session"):
            if request.scope is None:
                return Answer.allow_once()
            if answer == "always":
                return Answer.allow_always(request.scope)
            return Answer.allow_session(request.scope)
        if answer == "once":
            return Answer.allow_once()
        return Answer.deny()

    def release(self) -> None:
        """Let a hanging answer return (test teardown)."""
        self._release.set()


def confirm_within(handler: ConfirmationHandler, request: ConfirmationRequest) -> Answer:
    """The handler's answer, or a denial when it does not come within ``request.timeout_s``.

    The handler runs in a daemon thread so a hung dialog or prompt cannot hold the agent; a
    late answer is ignored. A handler that raises is a fault of ours, so it propagates.
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def ask() -> None:
        try:
            box["answer"] = handler.confirm(request)
        except BaseException as exc:  # re-raised in the caller's thread below
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=ask, name=f"confirm-{request.tool}", daemon=True).start()
    # A little grace beyond the handler's own timeout, so its own denial (with its own
    # note) normally wins over this backstop.
    if not done.wait(request.timeout_s + 0.5):
        return Answer.deny(f"no answer within {request.timeout_s:g} s")
    if "error" in box:
        raise box["error"]
    answer = box["answer"]
    if not isinstance(answer, Answer):
        raise TypeError(f"{type(handler).__name__}.confirm returned {answer!r}, not an Answer")
    return answer
