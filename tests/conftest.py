"""Every test runs with its own JACKDAW_HOME and an in-memory keyring: no test touches the
real home folder, the OS keychain, the network or a scheduler."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import pytest

# Before any fixture: pytest-qt's session-wide QApplication is built before per-test fixtures.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A real keyring backend that keeps secrets in a dict (no OS prompt, nothing on disk)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.secrets.pop((service, username), None)


@pytest.fixture(autouse=True)
def jackdaw_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "jackdaw-home"
    home.mkdir()
    monkeypatch.setenv("JACKDAW_HOME", str(home))
    return home


@pytest.fixture(scope="session", autouse=True)
def shared_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The default GGUF is joined from its PyPI parts on first use (491 MB): once for the
    session, in one folder, rather than in every test's JACKDAW_HOME."""
    folder = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JACKDAW_MODELS_DIR", str(folder))
        yield folder


@pytest.fixture(autouse=True)
def no_installed_judge(monkeypatch: pytest.MonkeyPatch) -> None:
    """The learning judge is the 1.5B model when it is installed (``make setup`` installs it):
    tests that do not ask for it must not run it (1.1 GB). The judge's own tests import
    ``_judge_source`` itself."""
    import agent_core.learning.loop

    monkeypatch.setattr(agent_core.learning.loop, "_judge_source", lambda services: None)


@pytest.fixture(autouse=True)
def memory_keyring() -> MemoryKeyring:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)
