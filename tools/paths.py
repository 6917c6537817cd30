"""Path safety for every path a tool is given.

A path is resolved (``~``, ``..`` and symlinks) *before* it is compared with the allowed
roots, so ``notes/../../.ssh`` and a symlink pointing out of a watched folder are judged by
where they really lead. Device files, FIFOs and sockets are refused: reading one can hang a
tool or read endless data.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from pathlib import Path

# The path rules the indexer follows too: one place for both (knowledge/boundary.py).
from knowledge.boundary import (
    SECRET_DIRS,
    SECRET_FILES,
    is_inside,
    pseudo_file_reason,
    secret_store_reason,
    special_file_reason,
)
from tools.base import ToolError

__all__ = ["SECRET_DIRS", "SECRET_FILES", "PathGuard", "PathRefused", "is_inside"]

# Folders one call may touch beyond the guard's own roots, because the user's rule that
# allowed this very call is scoped to them. Set by the executor around a single call only,
# so a grant never outlives the decision that made it.
call_grants: ContextVar[tuple[Path, ...]] = ContextVar("call_grants", default=())


class PathRefused(ToolError):
    """A path a tool may not touch; the message says why, for the model."""


def resolve_path(raw: str | os.PathLike[str], base: Path | None = None) -> Path:
    """Where ``raw`` really leads: ``~`` expanded, relative to ``base``, ``..`` and links
    resolved."""
    try:
        path = Path(raw).expanduser()
        if not path.is_absolute():
            path = (base or Path.cwd()) / path
        # strict=False: a note that does not exist yet resolves through its existing parents.
        return path.resolve(strict=False)
    except (OSError, RuntimeError, ValueError) as exc:  # symlink loops, NUL bytes, no HOME
        raise PathRefused(f"{raw}: not a usable path ({exc})") from exc


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long, a permission problem
        return False


def resolve_roots(roots: Iterable[str | os.PathLike[str]]) -> tuple[Path, ...]:
    seen: dict[Path, None] = {}
    for root in roots:
        if str(root).strip():
            seen.setdefault(resolve_path(root), None)
    return tuple(seen)


def refuse_special(path: Path) -> None:
    """Refuse device files, FIFOs, sockets and the kernel's pseudo files (a missing path is
    fine: the caller decides)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise PathRefused(f"{path}: cannot be accessed ({exc.strerror})") from exc
    if stat.S_ISDIR(mode):
        return  # list_folder's business
    why = special_file_reason(mode) or pseudo_file_reason(str(path))
    if why:
        raise PathRefused(f"{path} is {why}; tools read and write regular files only")


def refuse_secret_store(path: Path) -> None:
    # Credential stores are refused even inside an allowed root: a watched home folder
    # should not hand the model the user's SSH keys.
    if secret_store_reason(path):
        raise PathRefused(f"{path} is in a credential store; tools never touch those")


def open_regular(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` that refuses anything but a regular file at the moment of opening.

    The path was checked before, but it can change in between: O_NOFOLLOW refuses a final
    symlink swapped in, O_NONBLOCK keeps a FIFO swapped in from hanging the open, and the
    ``fstat`` of the open descriptor is the final word on what was opened.
    """
    flags |= (
        getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    )
    flags |= getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags, mode)
    except OSError as exc:
        raise PathRefused(f"{path}: cannot be opened ({exc.strerror})") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PathRefused(f"{path} is not a regular file")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return fd


class PathGuard:
    """Checks that paths stay inside a set of root folders.

    ``roots`` is a callable so the set can follow configuration; ``honour_grants`` says
    whether a call's rule-scoped grants (see :data:`call_grants`) extend it — true for
    reading tools, false where the roots are a hard boundary (the notes folder).
    """

    def __init__(
        self,
        roots: Sequence[str | os.PathLike[str]] | Callable[[], Sequence[Path]],
        *,
        honour_grants: bool = True,
        what: str = "the folders Jackdaw may use",
    ) -> None:
        if callable(roots):
            self._roots = roots
        else:
            fixed = resolve_roots(roots)
            self._roots = lambda: fixed
        self.honour_grants = honour_grants
        self.what = what

    def roots(self) -> tuple[Path, ...]:
        roots = tuple(self._roots())
        if self.honour_grants:
            roots += call_grants.get()
        return roots

    def resolve(self, raw: str) -> Path:
        """Resolve ``raw``; a relative path is taken inside the first root that holds it. A
        path that does not exist but names a file with a citation after it (how the notes
        are shown to the model: "school.md (School (St Aidan's Primary))", "a.pdf (page 2)")
        is that file: the 0.5B model passes the label on as the path."""
        path = self._resolve(raw)
        if raw.rstrip().endswith(")") and not _exists(path):
            for cut in re.finditer(r" \(", raw):
                cited = self._resolve(raw[: cut.start()])
                if _exists(cited):
                    return cited
        return path

    def _resolve(self, raw: str) -> Path:
        if not raw.strip():
            raise PathRefused("the path is empty")
        if "\x00" in raw:
            raise PathRefused("the path contains a NUL character")
        roots = self.roots()
        expanded = Path(raw).expanduser()
        if expanded.is_absolute() or not roots:
            return resolve_path(expanded)
        for root in roots:
            candidate = resolve_path(expanded, root)
            if _exists(candidate):  # else not this root (nor a name too long, unreadable)
                return candidate
        return resolve_path(expanded, roots[0])

    def check(self, raw: str) -> Path:
        """The resolved path, if it is inside a root and not a special file; else PathRefused."""
        path = self.resolve(raw)
        roots = self.roots()
        if not any(is_inside(path, root) for root in roots):
            where = ", ".join(str(r) for r in roots) or "none are configured"
            raise PathRefused(f"{raw} is outside {self.what} ({where})")
        refuse_secret_store(path)
        refuse_special(path)
        return path
