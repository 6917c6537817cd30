"""write_note: create or append a Markdown note inside the notes folder (a hard boundary)."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

from tools.base import Risk, Tool, ToolError
from tools.paths import PathGuard, PathRefused, open_regular

NOTE_SUFFIXES = (".md", ".markdown")
MAX_PREVIEW_READ = 1024 * 1024
MAX_NOTE_NAME = 200
MAX_NOTE_TEXT = 100_000


def _addition(existing: str | None, text: str) -> str:
    """What appending ``text`` adds: a blank line between entries, a final newline."""
    body = text if text.endswith("\n") else text + "\n"
    if not existing:
        return body
    sep = "" if existing.endswith("\n") else "\n"
    return sep + "\n" + body


class NoteWriter:
    def __init__(self, notes_dir: Path) -> None:
        self.notes_dir = notes_dir
        # honour_grants=False: no rule can point write_note outside the notes folder.
        self.guard = PathGuard([notes_dir], honour_grants=False, what="the notes folder")

    def path_of(self, note: str) -> Path:
        if len(note) > MAX_NOTE_NAME:
            raise PathRefused(f"the note name is longer than {MAX_NOTE_NAME} characters")
        name = note.strip()
        if not name.lower().endswith(NOTE_SUFFIXES):
            name += ".md"
        return self.guard.check(name)

    def touches(self, arguments: dict[str, Any]) -> list[Path]:
        return [self.path_of(arguments.get("note", ""))]

    def _existing(self, path: Path, limit: int | None = None) -> str | None:
        if not path.exists():
            return None
        fd = open_regular(path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as fh:
            return fh.read(limit or -1).decode("utf-8", errors="replace")

    def preview(self, arguments: dict[str, Any]) -> str:
        path = self.path_of(arguments["note"])
        mode = arguments.get("mode", "append")
        existing = self._existing(path, MAX_PREVIEW_READ)
        if existing is not None and mode == "create":
            return f"(nothing: {path} exists and mode is create)"
        new = (existing or "") + _addition(existing, arguments["text"])
        diff = difflib.unified_diff(
            (existing or "").splitlines(),
            new.splitlines(),
            fromfile=str(path) if existing is not None else "/dev/null",
            tofile=str(path),
            lineterm="",
            n=2,
        )
        return "\n".join(diff)

    def write(self, note: str, text: str, mode: str = "append") -> str:
        if len(text) > MAX_NOTE_TEXT:
            raise ToolError(
                f"the text is {len(text)} characters; a note takes {MAX_NOTE_TEXT} at most"
            )
        path = self.path_of(note)
        path.parent.mkdir(parents=True, exist_ok=True)
        path = self.path_of(note)  # again: a folder just created cannot have moved it, but check
        existing = self._existing(path)
        if existing is not None and mode == "create":
            raise ToolError(f"the note {path.name} already exists; use mode append to add to it")
        addition = _addition(existing, text)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_EXCL if mode == "create" else 0)
        fd = open_regular(path, flags)
        with os.fdopen(fd, "wb") as fh:
            fh.write(addition.encode("utf-8"))
        verb = "Created" if existing is None else "Appended to"
        return f"{verb} the note {path} ({len(text.splitlines()) or 1} lines)."


def make_write_note(notes_dir: Path) -> Tool:
    writer = NoteWriter(notes_dir)
    return Tool(
        name="write_note",
        description=(
            "Create a Markdown note in the user's notes folder, or append text to an existing "
            "note. The user sees the change and approves it first."
        ),
        parameters={
            "type": "object",
            "properties": {
                "note": {
                    "type": "string",
                    "minLength": 1,
                    "description": "a note name or a path inside the notes folder, "
                    "e.g. ideas or work/todo.md",
                },
                "text": {"type": "string", "minLength": 1},
                "mode": {"enum": ["append", "create"], "default": "append"},
            },
            "required": ["note", "text"],
            "additionalProperties": False,
        },
        risk=Risk.WRITE,
        function=writer.write,
        touches=writer.touches,
        preview=writer.preview,
    )
