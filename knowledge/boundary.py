"""The folder is the boundary: which paths may be read at all, and how to open them safely.

One place for the rules the indexer and the ``read_file`` tool share (``tools.paths`` uses
these; this module imports nothing of Jackdaw's, so importing it is cheap):

* a path is judged by where it really leads (symbolic links resolved), and compared with a
  root folder by path components, not string prefixes;
* credential stores (``~/.ssh`` ...) are never read, even inside an allowed folder;
* only regular files are read: devices, FIFOs and sockets can hang a reader or never end,
  and the kernel's pseudo files (``/proc``, ``/sys``) report a size of 0 while holding text
  about the running system;
* a file is opened without following a final symlink and checked again on the open
  descriptor, so a swap between the check and the open gains nothing.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

SECRET_DIRS = frozenset({".ssh", ".gnupg", ".aws", ".password-store", ".kube", ".docker"})
SECRET_FILES = frozenset({".netrc", ".pgpass", ".git-credentials", ".pypirc"})
# Pseudo file systems of the kernel: their files are not documents.
PSEUDO_ROOTS = ("/proc", "/sys", "/dev") if os.name == "posix" else ()


class NotARegularFileError(OSError):
    """What was opened is not a regular file (a device, FIFO or socket, or a swapped link)."""


def is_inside(path: Path, root: Path) -> bool:
    """Both must already be resolved; comparison by path components, not string prefixes
    (``/home/u/Notes2`` is not inside ``/home/u/Notes``)."""
    if os.name == "nt":  # case-insensitive comparison there
        return path.is_relative_to(root)
    # Same answer as is_relative_to, without its cost (it builds new Path objects per call).
    parts = root.parts
    return path.parts[: len(parts)] == parts


def is_inside_str(path: str, root: str) -> bool:
    """:func:`is_inside` for plain, absolute, normalised strings."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def secret_store_reason(path: Path | str) -> str | None:
    parts = Path(path).parts
    if any(part in SECRET_DIRS for part in parts[:-1]) or (
        parts and parts[-1] in SECRET_DIRS | SECRET_FILES
    ):
        return "a credential store (never read)"
    return None


def special_file_reason(mode: int) -> str | None:
    """Why a file of this ``st_mode`` is not read; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file (not read)"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO; not read)"
    if stat.S_ISSOCK(mode):
        return "a socket (not read)"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file (not read)"


def pseudo_file_reason(real_path: str) -> str | None:
    for root in PSEUDO_ROOTS:
        if is_inside_str(real_path, root):
            return f"a pseudo file of the system ({root}; not read)"
    return None


def link_reason(path: str, root: str, allow_outside: bool = False) -> tuple[str, str | None]:
    """Where ``path`` (inside watched folder ``root``, which is resolved) really leads, and
    why it must not be read from there (None: it may). Raises OSError when the path cannot
    be resolved (a broken link, a loop)."""
    real = os.path.realpath(path, strict=True)
    reason = pseudo_file_reason(real)
    if reason:
        return real, reason
    if not allow_outside and not is_inside_str(real, root):
        return real, "symbolic link to a file outside the watched folder (not followed)"
    return real, None


def open_regular(path: str | os.PathLike[str], flags: int = os.O_RDONLY, mode: int = 0o644) -> int:
    """``os.open`` that refuses anything but a regular file at the moment of opening.

    O_NOFOLLOW refuses a final symlink swapped in, O_NONBLOCK keeps a FIFO swapped in from
    hanging the open, and the ``fstat`` of the open descriptor is the final word on what was
    opened. Raises OSError (:class:`NotARegularFileError` for a non-regular file).
    """
    flags |= (
        getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    )
    flags |= getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, mode)
    try:
        why = special_file_reason(os.fstat(fd).st_mode)
    except OSError:
        os.close(fd)
        raise
    if why:
        os.close(fd)
        raise NotARegularFileError(f"{os.fsdecode(path)} is {why}")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return fd


def read_regular(path: str | os.PathLike[str], max_bytes: int) -> tuple[bytes, bool]:
    """At most ``max_bytes`` of a regular file, and whether there was more."""
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(max_bytes + 1)
    return data[:max_bytes], len(data) > max_bytes
