"""The CLI's ConfirmationHandler: a prompt in the terminal, with a timeout that really works.

The prompt goes to stderr (stdout stays clean for ``--json``) and the answer is read from a
given input stream, so a test can drive it through a subprocess's stdin. The timeout uses
``select`` on the stream's file descriptor on POSIX: a blocked ``readline`` could not be
abandoned, and a reader thread stuck in ``sys.stdin`` can crash interpreter shutdown.
"""

from __future__ import annotations

import io
import json
import os
import queue
import select
import sys
import threading
import time
import unicodedata
from typing import IO, Any

from tools.confirm import Answer, ConfirmationRequest

MAX_PREVIEW_LINES = 200

_CHOICES = {
    "y": "once", "yes": "once", "o": "once", "once": "once",
    "s": "session", "session": "session",
    "a": "always", "always": "always",
    "n": "deny", "no": "deny", "d": "deny", "deny": "deny", "": "deny",
}  # fmt: skip


def printable(text: str) -> str:
    """``text`` with control and bidi-override characters made visible.

    Arguments come from the model, which may be repeating a hostile document: escape codes or
    a right-to-left override could make the prompt show something other than what will run.
    """
    out = []
    for ch in text:
        if ch in "\n\t" or not unicodedata.category(ch).startswith("C"):
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines() or [""])


def _format_value(value: Any) -> str:
    if isinstance(value, str) and ("\n" in value or len(value) > 60):
        # Shown whole, never cut: the user must see all of the code or text they approve.
        return "|\n" + _indent(printable(value), "      ")
    return printable(json.dumps(value, ensure_ascii=False))


def format_request(request: ConfirmationRequest) -> str:
    lines = [
        "",
        "== Jackdaw asks permission ==",
        f"tool:      {request.tool}  (risk: {request.risk})",
        f"           {printable((request.description.splitlines() or [''])[0])}",
        f"why:       {printable(request.reason)}",
        "arguments:",
    ]
    if isinstance(request.arguments, dict) and request.arguments:
        lines += [f"    {printable(k)}: {_format_value(v)}" for k, v in request.arguments.items()]
    else:
        lines.append("    (none)")
    if request.paths:
        lines.append("touches:   " + ", ".join(printable(p) for p in request.paths))
    if request.preview:
        preview = request.preview.splitlines()
        if len(preview) > MAX_PREVIEW_LINES:
            more = len(preview) - MAX_PREVIEW_LINES
            preview = [*preview[:MAX_PREVIEW_LINES], f"[... {more} more lines]"]
        lines.append("would change:")
        lines.append(_indent(printable("\n".join(preview)), "    "))
    choices = "[y] allow once"
    if request.scope is not None:
        scope = printable(request.scope.describe())
        choices += f"   [s] allow for this session: {scope}   [a] always allow: {scope}"
    choices += "   [n] deny"
    lines += [
        choices,
        f"(no answer within {request.timeout_s:g} s counts as deny)",
    ]
    return "\n".join(lines)


class LineReader:
    """Reads lines from a stream with a deadline."""

    def __init__(self, stream: IO[Any]) -> None:
        self.stream = stream
        try:
            self.fd: int | None = stream.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            self.fd = None  # an in-memory stream: never blocks, read it directly
        self._pending = b""
        self._lines: queue.Queue[str] | None = None

    def readline(self, timeout: float) -> str | None:
        """A line ('' at end of input), or None when nothing came within ``timeout`` seconds."""
        if self.fd is None:
            return self.stream.readline()
        if os.name == "posix":
            return self._readline_select(timeout)
        return self._readline_thread(timeout)

    def _readline_select(self, timeout: float) -> str | None:
        assert self.fd is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if not ready:
                return None
            # os.read, not the stream: bytes beyond this line stay in self._pending for the
            # next prompt instead of vanishing into a text buffer select cannot see.
            chunk = os.read(self.fd, 4096)
            if not chunk:
                line, self._pending = self._pending, b""
                return line.decode("utf-8", "replace")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode("utf-8", "replace") + "\n"

    def _readline_thread(self, timeout: float) -> str | None:
        # Windows: select() does not work on consoles or pipes. One long-lived daemon reader
        # feeds a queue, so a timed-out prompt leaves no second reader behind.
        if self._lines is None:
            self._lines = queue.Queue()
            lines = self._lines

            def pump() -> None:
                while True:
                    line = self.stream.readline()
                    lines.put(line)
                    if not line:
                        return

            threading.Thread(target=pump, name="confirm-stdin", daemon=True).start()
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            return None


class TerminalConfirmationHandler:
    """Prompts on ``output`` and reads the answer from ``input``.

    ``timeout_s`` overrides the request's timeout when given.
    """

    def __init__(
        self,
        input: IO[Any] | None = None,
        output: IO[str] | None = None,
        timeout_s: float | None = None,
    ) -> None:
        self.reader = LineReader(input if input is not None else sys.stdin)
        self.output = output if output is not None else sys.stderr
        self.timeout_s = timeout_s

    def _say(self, text: str, end: str = "\n") -> None:
        self.output.write(text + end)
        self.output.flush()

    def confirm(self, request: ConfirmationRequest) -> Answer:
        timeout = self.timeout_s if self.timeout_s is not None else request.timeout_s
        self._say(format_request(request))
        keys = "y/s/a/N" if request.scope is not None else "y/N"
        deadline = time.monotonic() + timeout
        while True:
            self._say(f"allow {request.tool}? [{keys}] ", end="")
            line = self.reader.readline(max(0.0, deadline - time.monotonic()))
            if line is None:
                self._say(f"\nno answer within {timeout:g} s: denied")
                return Answer.deny(f"no answer within {timeout:g} s")
            if line == "":
                self._say("\nend of input: denied")
                return Answer.deny("no answer (end of input)")
            choice = _CHOICES.get(line.strip().lower())
            if choice in ("session", "always") and request.scope is None:
                choice = None  # not offered for this tool
            if choice is None:
                self._say(f"please answer one of {keys.lower()}")
                continue
            if choice == "once":
                return Answer.allow_once()
            if choice == "deny":
                return Answer.deny()
            assert request.scope is not None
            if choice == "session":
                return Answer.allow_session(request.scope)
            return Answer.allow_always(request.scope)
