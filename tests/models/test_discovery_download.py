"""Downloading a catalogue model through huggingface_hub, against a server on 127.0.0.1 that
answers the Hub's download API (HEAD/GET .../resolve/REV/FILE, with ranges): never the
internet. Progress, cancel and resume, the sha256 check, disk space, offline errors."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from models import download as dl
from models.assemble import ModelChecksumError, NotEnoughSpaceError
from models.catalog import PACKAGED_MODELS
from models.download import (
    CATALOGUE,
    CatalogueEntry,
    DownloadCancelled,
    DownloadError,
    DownloadProgress,
    catalogue_entry,
    pull,
)

REVISION = "a" * 40
BENCHMARKS = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"


class FakeHub:
    """The Hub's file-download endpoints for a few files, with byte ranges and a throttle."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.delay_s = 0.0  # per 64 KiB block sent
        self.requests: list[tuple[str, str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _lookup(self) -> bytes | None:
                hub.requests.append((self.command, self.path, self.headers.get("Range", "")))
                parts = self.path.split("?")[0].strip("/").split("/")
                # /{org}/{repo}/resolve/{revision}/{filename}
                if len(parts) != 5 or parts[2] != "resolve" or parts[3] != REVISION:
                    return None
                return hub.files.get(f"{parts[0]}/{parts[1]}/{parts[4]}")

            def _headers(self, data: bytes, status: int, length: int) -> None:
                digest = hashlib.sha256(data).hexdigest()
                self.send_response(status)
                self.send_header("X-Repo-Commit", REVISION)
                self.send_header("ETag", f'"{digest}"')
                self.send_header("X-Linked-Etag", f'"{digest}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(length))
                self.end_headers()

            def _missing(self) -> None:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("X-Error-Message", "Entry not found")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_HEAD(self) -> None:
                data = self._lookup()
                if data is None:
                    return self._missing()
                self._headers(data, 200, len(data))

            def do_GET(self) -> None:
                data = self._lookup()
                if data is None:
                    return self._missing()
                start = 0
                wanted = self.headers.get("Range", "")
                if wanted.startswith("bytes="):
                    start = int(wanted[6:].split("-")[0])
                body = data[start:]
                self._headers(data, 206 if start else 200, len(body))
                try:
                    for i in range(0, len(body), 65536):
                        self.wfile.write(body[i : i + 65536])
                        if hub.delay_s:
                            time.sleep(hub.delay_s)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def entry(self, name: str, data: bytes, sha256: str | None = None) -> CatalogueEntry:
        self.files[f"test-org/{name}-GGUF/{name}.gguf"] = data
        return CatalogueEntry(
            name=name,
            display_name=f"{name} · Q4_K_M",
            repo=f"test-org/{name}-GGUF",
            revision=REVISION,
            filename=f"{name}.gguf",
            sha256=sha256 or hashlib.sha256(data).hexdigest(),
            size=len(data),
            licence="Apache-2.0",
            ram_gb=0.1,
            tok_s_2_cores=100,
            speed_basis="a test's figure",
        )


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    fake = FakeHub()
    fake.thread.start()
    monkeypatch.setenv("HF_ENDPOINT", fake.endpoint)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def payload(size: int) -> bytes:
    return b"GGUF" + bytes((i * 7) % 251 for i in range(size - 4))


def benchmarked_speeds() -> dict[str, float]:
    """docs/benchmarks.md's speed table ("estimate, 2 quiet cores"): model -> tokens/s."""
    lines = BENCHMARKS.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if "estimate, 2 quiet cores" in line)
    speeds: dict[str, float] = {}
    for line in lines[start + 2 :]:  # after the header and its |---| line
        if not line.startswith("|"):
            break
        cells = [cell.strip(" *~") for cell in line.strip("|").split("|")]
        figure = re.match(r"\d+(\.\d+)?", cells[-1].lstrip("*~"))
        assert figure, line
        speeds[cells[0]] = float(figure.group())
    return speeds


def words(name: str) -> set[str]:
    """ "Qwen2.5-Coder-0.5B Q4_K_M" and "Qwen2.5 Coder 0.5B Instruct · Q4_K_M" -> their words."""
    return set(name.lower().replace("-", " ").replace("·", " ").split()) - {"instruct"}


def test_every_speed_the_benchmarks_give_is_the_one_the_catalogue_holds() -> None:
    """One place for each model's expected speed: the entries in models/, which must agree
    with docs/benchmarks.md wherever it has a figure (and say where the others come from)."""
    speeds = benchmarked_speeds()
    assert len(speeds) >= 3
    models = [*PACKAGED_MODELS, *CATALOGUE]
    for benchmarked, tok_s in speeds.items():
        matches = [m for m in models if words(m.display_name) == words(benchmarked)]
        assert len(matches) == 1, benchmarked
        assert matches[0].tok_s_2_cores == tok_s, benchmarked
        assert "docs/benchmarks.md" in matches[0].speed_basis
    for model in models:
        assert model.tok_s_2_cores > 0 and "docs/benchmarks.md" in model.speed_basis


def test_catalogue_entries_are_pinned() -> None:
    for entry in CATALOGUE:
        assert len(entry.sha256) == 64 and entry.filename.endswith(".gguf")
        assert entry.licence and entry.ram_gb > 0 and entry.tok_s_2_cores > 0
        assert entry.speed_basis
    assert catalogue_entry("QWEN2.5-1.5B").repo == "bartowski/Qwen2.5-1.5B-Instruct-GGUF"
    with pytest.raises(Exception, match=r"known: qwen2\.5-1\.5b"):
        catalogue_entry("gpt-5")


def test_download_with_progress_and_sha256(hub: FakeHub, tmp_path: Path) -> None:
    entry = hub.entry("tiny", payload(600_000))
    seen: list[DownloadProgress] = []
    path = pull(entry, tmp_path, progress=seen.append)
    assert path == tmp_path / "downloads" / "tiny.gguf"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry.sha256
    assert seen[-1].done_bytes == seen[-1].total_bytes == 600_000
    assert all(p.bytes_per_s >= 0 for p in seen)
    assert ("GET", f"/test-org/tiny-GGUF/resolve/{REVISION}/tiny.gguf", "") in hub.requests
    # Already there: checked, not fetched again.
    hub.requests.clear()
    assert pull(entry, tmp_path) == path and hub.requests == []


def test_cancel_then_resume_where_it_stopped(hub: FakeHub, tmp_path: Path) -> None:
    entry = hub.entry("big", payload(2_000_000))
    hub.delay_s = 0.02
    cancel = threading.Event()

    def stop_half_way(p: DownloadProgress) -> None:
        if p.done_bytes > 600_000:
            cancel.set()

    with pytest.raises(DownloadCancelled, match="cancelled"):
        pull(entry, tmp_path, progress=stop_half_way, cancel=cancel)
    assert not (tmp_path / "downloads" / "big.gguf").exists()
    kept = (tmp_path / "downloads" / ".big.gguf.partial").stat().st_size
    assert 600_000 < kept < 2_000_000
    hub.delay_s = 0.0
    hub.requests.clear()
    seen: list[DownloadProgress] = []
    path = pull(entry, tmp_path, progress=seen.append)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry.sha256
    ranges = [r for method, _, r in hub.requests if method == "GET"]
    assert ranges == [f"bytes={kept}-"]
    assert seen[-1].done_bytes == 2_000_000


def test_a_file_with_the_wrong_sha256_is_deleted(hub: FakeHub, tmp_path: Path) -> None:
    entry = hub.entry("evil", payload(100_000), sha256="0" * 64)
    with pytest.raises(ModelChecksumError, match="not loaded"):
        pull(entry, tmp_path)
    assert not (tmp_path / "downloads" / "evil.gguf").exists()


def test_a_missing_file_is_a_clear_error(hub: FakeHub, tmp_path: Path) -> None:
    entry = replace(hub.entry("gone", payload(1000)), filename="other.gguf")
    with pytest.raises(DownloadError, match=r"has no file other\.gguf"):
        pull(entry, tmp_path)


def test_not_enough_disk_space_is_said_before_downloading(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = hub.entry("wide", payload(50_000))

    class Usage:
        free = 10_000

    monkeypatch.setattr(dl.shutil, "disk_usage", lambda path: Usage())
    with pytest.raises(NotEnoughSpaceError, match=r"needs 0\.00 GB more"):
        pull(entry, tmp_path)
    assert not [r for r in hub.requests if r[0] == "GET"]


def test_offline_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    entry = replace(CATALOGUE[0], revision=REVISION)
    with pytest.raises(DownloadError, match="Could not"):
        pull(entry, tmp_path, endpoint=f"http://127.0.0.1:{port}")
