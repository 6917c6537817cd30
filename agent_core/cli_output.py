"""Output shared by the CLI modules.

``--json`` prints exactly one JSON object on stdout. Everything else printed to a terminal
passes :func:`for_terminal` first: a document, a file or a model's answer may hold escape
sequences that would make the terminal do things (OSC 52 writes the clipboard, others retitle
the window, hide text or move the cursor over what was printed before).
"""

from __future__ import annotations

import errno
import json
import re
import sys
from typing import Any

from tools.terminal import printable

# What json.dumps(ensure_ascii=False) leaves raw but a terminal may act on: DEL, the C1
# controls (U+009B is CSI, U+009D OSC) and the bidi overrides and isolates.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")

SQLITE_FULL = 13


def for_terminal(text: str) -> str:
    """``text`` with control characters (ESC, BEL, C1, CR, bidi overrides ...) shown as
    escapes like ``\\x1b``; newlines and tabs stay as they are."""
    return printable(text)


def write_out(text: str) -> None:
    """Write ``text`` to stdout, escaped for the terminal."""
    sys.stdout.write(for_terminal(text))


def write_err(text: str) -> None:
    sys.stderr.write(for_terminal(text))


def print_json(data: Any) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    # Still valid JSON with the same content: \u escapes instead of the raw characters.
    text = _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    sys.stdout.write(text + "\n")


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) says the disk or the database file is full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        # sqlite3 and sqlean (the knowledge base's build of SQLite) raise classes of their own
        code = getattr(current, "sqlite_errorcode", None)
        if code is not None and code & 0xFF == SQLITE_FULL:
            return True
        if type(current).__name__ in ("OperationalError", "DatabaseError") and (
            "database or disk is full" in str(current)
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def disk_full_message(where: object) -> str:
    return (
        f"the disk is full: Jackdaw could not write to {where}. Nothing was lost (the "
        "unfinished change was rolled back); free some space on that disk and run the "
        "command again."
    )
