"""A short curated list of bigger instruct GGUFs, and downloading one through huggingface_hub.

Every entry is pinned to a repository revision and the file's sha256 (the Hub's LFS pointer).
A download goes to ``<models dir>/downloads/``; it shows progress with speed and ETA, can be
cancelled (a :class:`threading.Event`), resumes where it stopped (huggingface_hub keeps the
partial file), checks the free disk space first, and the file must have the pinned sha256 or
it is deleted. ``HF_ENDPOINT`` points it at another server (the tests use one on 127.0.0.1).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from models.assemble import ModelChecksumError, NotEnoughSpaceError, verify_file
from models.catalog import ESTIMATED
from models.errors import JackdawError

DOWNLOADS = "downloads"


class DownloadError(JackdawError):
    hint = (
        "Check the network connection (or HF_ENDPOINT) and run the same command again: it resumes."
    )


class DownloadCancelled(JackdawError):
    hint = "Run the same command again to resume where it stopped."


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    display_name: str
    repo: str
    revision: str
    filename: str
    sha256: str
    size: int  # bytes (from the Hub's file listing; the server's figure is used when known)
    licence: str
    ram_gb: float  # about, at a 4096-token context
    tok_s_2_cores: float  # expected generation speed on 2 quiet CPU cores (docs/benchmarks.md)
    speed_basis: str  # where that figure comes from
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# No 3B model is in docs/benchmarks.md: Qwen2.5 Coder 1.5B's ~21 tokens/s there, halved for
# twice the parameters (3.1-3.2B vs 1.5B). The cautious side: in those figures three times the
# parameters (0.5B -> 1.5B) cost only 2.2 times the speed (47 -> 21).
_SCALED_FROM_1_5B = (
    "not measured: Qwen2.5 Coder 1.5B's ~21 tokens/s (docs/benchmarks.md) halved for twice "
    "the parameters"
)

CATALOGUE: tuple[CatalogueEntry, ...] = (
    CatalogueEntry(
        name="qwen2.5-1.5b",
        display_name="Qwen2.5 1.5B Instruct · Q4_K_M",
        repo="bartowski/Qwen2.5-1.5B-Instruct-GGUF",
        revision="85553858e3522ce5b531285b2202bdb40fab1624",
        filename="Qwen2.5-1.5B-Instruct-Q4_K_M.gguf",
        sha256="50961d9b7d3b89e46be230528fc66d38bbdda8ac3748323dd34f129a714124fc",
        size=986_000_000,
        licence="Apache-2.0",
        ram_gb=1.4,
        tok_s_2_cores=21,
        speed_basis=f"as Qwen2.5 Coder 1.5B (the same architecture and parameters), {ESTIMATED}",
        notes="general chat with native tool calls",
    ),
    CatalogueEntry(
        name="qwen2.5-coder-1.5b",
        display_name="Qwen2.5 Coder 1.5B Instruct · Q4_K_M",
        repo="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
        revision="main",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size=1_117_320_768,
        licence="Apache-2.0",
        ram_gb=1.5,
        tok_s_2_cores=21,
        speed_basis=ESTIMATED,
        notes="the default's bigger sibling (same family and template)",
    ),
    CatalogueEntry(
        name="qwen2.5-3b",
        display_name="Qwen2.5 3B Instruct · Q4_K_M",
        repo="bartowski/Qwen2.5-3B-Instruct-GGUF",
        revision="e118764d9e73c6ee4b87fe7a367df84a985a99fc",
        filename="Qwen2.5-3B-Instruct-Q4_K_M.gguf",
        sha256="9c9f56a391a3abbd5b89d0245bf6106081bcc3173119d4229235dd9d23253f94",
        size=1_930_000_000,
        licence="Qwen Research License (non-commercial)",
        ram_gb=2.5,
        tok_s_2_cores=10,
        speed_basis=_SCALED_FROM_1_5B,
    ),
    CatalogueEntry(
        name="llama3.2-3b",
        display_name="Llama 3.2 3B Instruct · Q4_K_M",
        repo="bartowski/Llama-3.2-3B-Instruct-GGUF",
        revision="c346bfc2029e79ba6d7edf026cf01fe44242db0d",
        filename="Llama-3.2-3B-Instruct-Q4_K_M.gguf",
        sha256="6c1a2b41161032677be168d354123594c0e6e67d2b9227c84f296ad037c728ff",
        size=2_020_000_000,
        licence="Llama 3.2 Community License",
        ram_gb=2.8,
        tok_s_2_cores=10,
        speed_basis=_SCALED_FROM_1_5B,
    ),
)


def catalogue_entry(name: str, catalogue: tuple[CatalogueEntry, ...] = CATALOGUE) -> CatalogueEntry:
    for entry in catalogue:
        if entry.name == name.strip().lower():
            return entry
    known = ", ".join(e.name for e in catalogue)
    raise JackdawError(f"No model called {name!r} in the catalogue (known: {known}).")


def downloads_dir(models_dir: Path) -> Path:
    return models_dir / DOWNLOADS


def downloaded_file(entry: CatalogueEntry, models_dir: Path) -> Path | None:
    path = downloads_dir(models_dir) / entry.filename
    return path if path.is_file() else None


@dataclass(frozen=True)
class DownloadProgress:
    name: str
    done_bytes: int
    total_bytes: int
    bytes_per_s: float

    @property
    def eta_s(self) -> float | None:
        if not self.bytes_per_s or not self.total_bytes:
            return None
        return max(0.0, (self.total_bytes - self.done_bytes) / self.bytes_per_s)


def pull(
    entry: CatalogueEntry,
    models_dir: Path,
    progress: Callable[[DownloadProgress], None] | None = None,
    cancel: threading.Event | None = None,
    endpoint: str | None = None,
) -> Path:
    """Download ``entry`` (or resume it) into ``models_dir/downloads`` and check its sha256.

    huggingface_hub builds the URL and reads the file's metadata (HEAD, following the Hub's
    redirects); the bytes are streamed here, into ``.<file>.partial``, so that a cancelled or
    broken download resumes with an HTTP range (huggingface_hub 1.x/2.x drops its partial files).
    """
    try:
        from huggingface_hub import get_hf_file_metadata, hf_hub_url
        from huggingface_hub.errors import (
            EntryNotFoundError,
            HfHubHTTPError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
    except ImportError as exc:  # pragma: no cover - a dependency
        raise DownloadError("huggingface_hub is not installed.", hint="Run `make setup`.") from exc

    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None
    where = endpoint or "the Hugging Face Hub"
    existing = downloaded_file(entry, models_dir)
    if existing is not None:
        return _checked(existing, entry)
    folder = downloads_dir(models_dir)
    folder.mkdir(parents=True, exist_ok=True)
    url = hf_hub_url(entry.repo, entry.filename, revision=entry.revision, endpoint=endpoint)
    try:
        meta = get_hf_file_metadata(url, timeout=15)
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as exc:
        raise DownloadError(
            f"{entry.repo}@{entry.revision} has no file {entry.filename}: {_first_line(exc)}",
            hint="The catalogue entry is out of date; update Jackdaw or pick another model.",
        ) from exc
    except (HfHubHTTPError, OSError) as exc:
        raise DownloadError(f"Could not reach {where} (offline?): {_first_line(exc)}") from exc
    except Exception as exc:  # the Hub client's own connection and timeout errors
        if "connect" in type(exc).__name__.lower() or "timeout" in type(exc).__name__.lower():
            raise DownloadError(f"Could not reach {where} (offline?): {_first_line(exc)}") from exc
        raise
    size = meta.size or entry.size
    partial = folder / f".{entry.filename}.partial"
    have = partial.stat().st_size if partial.is_file() else 0
    if have > size:
        partial.unlink()
        have = 0
    free = shutil.disk_usage(folder).free
    if free < size - have:
        raise NotEnoughSpaceError(
            f"{entry.display_name} needs {(size - have) / 1e9:.2f} GB more in {folder}; "
            f"only {free / 1e9:.2f} GB are free."
        )
    _transfer(meta.location or url, partial, have, size, entry.display_name, progress, cancel)
    dest = folder / entry.filename
    try:
        verify_file(partial, entry.sha256, size, what=entry.display_name)
    except ModelChecksumError:
        partial.unlink(missing_ok=True)  # never resumed from, never loaded
        raise
    os.replace(partial, dest)
    return verify_file(dest, entry.sha256, size, what=entry.display_name)


def _transfer(
    url: str,
    partial: Path,
    have: int,
    size: int,
    name: str,
    progress: Callable[[DownloadProgress], None] | None,
    cancel: threading.Event | None,
) -> None:
    import httpx

    headers = {"User-Agent": "jackdaw", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    start, last = time.monotonic(), 0.0
    done = have
    try:
        with httpx.stream(
            "GET", url, headers=headers, follow_redirects=True, timeout=30
        ) as response:
            if response.status_code == 200 and have:
                done = have = 0  # the server ignored the range: start again
            elif response.status_code not in (200, 206):
                raise DownloadError(f"{url} answered HTTP {response.status_code}.")
            with open(partial, "ab" if have else "wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    if cancel is not None and cancel.is_set():
                        raise DownloadCancelled(f"Download of {name} cancelled.")
                    out.write(chunk)
                    done += len(chunk)
                    now = time.monotonic()
                    if progress is not None and (now - last >= 0.2 or done >= size):
                        last = now
                        speed = (done - have) / (now - start) if now > start else 0.0
                        progress(DownloadProgress(name, done, size, speed))
                out.flush()
                os.fsync(out.fileno())
    except httpx.HTTPError as exc:
        raise DownloadError(
            f"The download of {name} broke off at {done / 1e6:.0f} of {size / 1e6:.0f} MB: "
            f"{_first_line(exc)}"
        ) from exc


def _checked(path: Path, entry: CatalogueEntry) -> Path:
    try:
        return verify_file(path, entry.sha256, what=entry.display_name)
    except ModelChecksumError:
        path.unlink(missing_ok=True)
        raise


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
