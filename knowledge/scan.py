"""Walking a watched folder: which files to look at, and which to leave out (and why).

Nothing here reads file contents; it only lists and stats, so a re-scan of an unchanged
tree costs one ``stat`` per file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from knowledge.boundary import (
    SECRET_DIRS,
    SECRET_FILES,
    link_reason,
    pseudo_file_reason,
    special_file_reason,
)

IGNORED_DIR_NAMES = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "__pycache__",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".idea",
        ".vscode",
        ".cache",
        "$RECYCLE.BIN",
        "System Volume Information",
        ".Trash",
        ".Trashes",
    }
)
# Known binary formats are skipped without being opened.
BINARY_EXTENSIONS = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".bmp",
        ".tif",
        ".tiff",
        ".webp",
        ".ico",
        ".heic",
        ".psd",
        ".raw",
        ".cr2",
        ".nef",
        ".mp3",
        ".wav",
        ".flac",
        ".ogg",
        ".m4a",
        ".aac",
        ".mp4",
        ".mkv",
        ".mov",
        ".avi",
        ".webm",
        ".wmv",
        ".zip",
        ".tar",
        ".gz",
        ".tgz",
        ".bz2",
        ".xz",
        ".zst",
        ".7z",
        ".rar",
        ".iso",
        ".dmg",
        ".exe",
        ".dll",
        ".so",
        ".dylib",
        ".bin",
        ".o",
        ".a",
        ".lib",
        ".class",
        ".jar",
        ".pyc",
        ".pyo",
        ".whl",
        ".deb",
        ".rpm",
        ".msi",
        ".apk",
        ".ttf",
        ".otf",
        ".woff",
        ".woff2",
        ".eot",
        ".db",
        ".sqlite",
        ".sqlite3",
        ".db-wal",
        ".db-shm",
        ".gguf",
        ".safetensors",
        ".pt",
        ".pth",
        ".onnx",
        ".npy",
        ".npz",
        ".pkl",
        ".parquet",
        ".doc",
        ".docx",
        ".xls",
        ".xlsx",
        ".ppt",
        ".pptx",
        ".odt",
        ".ods",
        ".odp",
        ".key",
        ".numbers",
        ".pages",
        ".epub",
        ".mobi",
        ".swp",
        ".lock",
    }
)


@dataclass(frozen=True)
class IgnoreRules:
    # Text files past this size are indexed up to it ("truncated at N MB"); others skipped.
    max_file_bytes: int = 50 * 1024 * 1024
    skip_hidden: bool = True
    ignored_dir_names: frozenset[str] = IGNORED_DIR_NAMES
    binary_extensions: frozenset[str] = BINARY_EXTENSIONS
    # Paths never indexed (e.g. knowledge.db itself, when the data folder is watched).
    excluded_paths: frozenset[str] = frozenset()
    # A symbolic link inside a watched folder that leads out of it is not followed unless
    # the user allows it ([knowledge] follow_links_outside).
    follow_links_outside: bool = False

    def dir_reason(self, name: str) -> str | None:
        if name in SECRET_DIRS:
            return "a credential store (never read)"
        if name in self.ignored_dir_names:
            return f"ignored folder ({name})"
        if self.skip_hidden and name.startswith("."):
            return "hidden folder"
        return None

    def name_reason(self, name: str) -> str | None:
        """Reasons that depend on the file name alone."""
        if name in SECRET_FILES or name in SECRET_DIRS:
            return "a credential store (never read)"
        if self.skip_hidden and name.startswith("."):
            return "hidden file"
        suffix = os.path.splitext(name)[1].lower()
        if suffix in self.binary_extensions:
            return f"binary file type ({suffix})"
        return None

    def size_reason(self, size: int) -> str | None:
        if size > self.max_file_bytes:
            return (
                f"larger than the {self.max_file_bytes / 1e6:.0f} MB limit "
                f"({size / 1e6:.0f} MB; raise [knowledge] max_file_mb to include it)"
            )
        return None

    def path_reason(self, root: str, path: str) -> str | None:
        """For a single path (a watcher event): check every folder between root and it."""
        if path in self.excluded_paths:
            return "Jackdaw's own file"
        rel = os.path.relpath(path, root)
        parts = rel.split(os.sep)
        for part in parts[:-1]:
            reason = self.dir_reason(part)
            if reason:
                return reason
        return self.name_reason(parts[-1])


def storable_path(path: str) -> str:
    """``path`` as it can be stored and shown: a name that is not valid UTF-8 (the OS allows
    any bytes) is written with ``\\xNN`` escapes."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")


BAD_NAME = "file name is not valid UTF-8 (rename the file to index it)"


@dataclass(frozen=True)
class FileEntry:
    path: str  # as stored and shown (see storable_path)
    size: int
    mtime_ns: int
    skip_reason: str | None = None  # set: leave the file out, record why
    error: str | None = None  # set: the file could not even be stat'ed
    fs_path: str | None = None  # where to read it, when not ``path`` (a link inside the folder)

    @property
    def source(self) -> str:
        return self.fs_path or self.path


@dataclass
class ScanResult:
    files: list[FileEntry] = field(default_factory=list)
    skipped_dirs: list[tuple[str, str]] = field(default_factory=list)


def stat_entry(
    path: str,
    rules: IgnoreRules,
    reason: str | None = None,
    root: str | None = None,
    follow_check: bool = True,
) -> FileEntry | None:
    """Stat one file. None when it no longer exists.

    A symbolic link is followed only to a regular file inside ``root`` (the watched folder)
    unless the rules allow leaving it; with ``follow_check`` every path is resolved (a path
    named by an event may pass through a linked folder), else only links are.
    """
    shown = storable_path(path)
    try:
        lst = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return FileEntry(shown, 0, 0, error=f"cannot stat: {exc.strerror or exc}")
    fs_path = None
    if root is not None and (follow_check or stat.S_ISLNK(lst.st_mode)):
        try:
            real, why = link_reason(path, root, rules.follow_links_outside)
        except FileNotFoundError:
            return FileEntry(shown, 0, 0, error="broken symbolic link")
        except OSError as exc:  # ELOOP (a symlink loop), EACCES on a parent ...
            return FileEntry(shown, 0, 0, error=f"cannot stat: {exc.strerror or exc}")
        if why:
            return FileEntry(shown, 0, lst.st_mtime_ns, skip_reason=why)
        if real != path:
            fs_path = real
    elif not stat.S_ISLNK(lst.st_mode):
        why = pseudo_file_reason(path)
        if why:
            return FileEntry(shown, 0, lst.st_mtime_ns, skip_reason=why)
    try:
        st = os.stat(fs_path or path) if stat.S_ISLNK(lst.st_mode) else lst
    except FileNotFoundError:
        return FileEntry(shown, 0, 0, error="broken symbolic link")
    except OSError as exc:  # ELOOP (a symlink loop), EACCES on a parent ...
        return FileEntry(shown, 0, 0, error=f"cannot stat: {exc.strerror or exc}")
    why = special_file_reason(st.st_mode)
    if why:  # a FIFO or device would block or never end
        return FileEntry(shown, 0, st.st_mtime_ns, skip_reason=why)
    if shown != path:
        reason = BAD_NAME
    return FileEntry(shown, st.st_size, st.st_mtime_ns, skip_reason=reason, fs_path=fs_path)


def scan_tree(
    top: str, root: str, rules: IgnoreRules, on_found: Callable[[int], None] | None = None
) -> ScanResult:
    """Every file under ``top`` (inside watched folder ``root``), ignore rules applied.

    Symbolic links to folders are not followed: that is how loops and escapes from the
    watched folder are avoided. Symbolic links to files are followed only to files inside
    the watched folder (see :func:`stat_entry`).
    """
    result = ScanResult()
    if top != root:
        reason = rules.path_reason(root, os.path.join(top, "x"))
        if reason:
            result.skipped_dirs.append((top, reason))
            return result
    stack = [top]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            result.skipped_dirs.append((current, f"cannot list: {exc.strerror or exc}"))
            continue
        subdirs = []
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                reason = rules.dir_reason(entry.name)
                if reason:
                    result.skipped_dirs.append((entry.path, reason))
                else:
                    subdirs.append(entry.path)
                continue
            if entry.is_symlink() and _is_dir_link(entry.path):
                result.skipped_dirs.append((entry.path, "symbolic link to a folder (not followed)"))
                continue
            if entry.path in rules.excluded_paths:
                continue
            found = stat_entry(
                entry.path, rules, rules.name_reason(entry.name), root, follow_check=False
            )
            if found is not None:
                result.files.append(found)
                if on_found is not None and len(result.files) % 64 == 0:
                    on_found(len(result.files))
        stack.extend(reversed(subdirs))
    return result


def _is_dir_link(path: str) -> bool:
    try:
        return Path(path).is_dir()
    except OSError:
        return False


def watched_root(path: str, roots: list[str]) -> str | None:
    """The watched folder containing ``path`` (the deepest, if folders nest)."""
    best = None
    for root in roots:
        inside = path == root or path.startswith(root.rstrip(os.sep) + os.sep)
        if inside and (best is None or len(root) > len(best)):
            best = root
    return best
