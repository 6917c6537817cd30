"""SecretStore over the real keyring library: an in-memory backend, and no backend at all."""

from __future__ import annotations

import keyring
import pytest
from keyring.backends import fail

from models.errors import NoSecureStoreError
from models.secrets import SecretStore


def test_round_trip(memory_keyring) -> None:
    store = SecretStore()
    assert store.available()
    store.set("server", "sk-123")
    assert store.get("server") == "sk-123"
    assert memory_keyring.secrets[("jackdaw", "server")] == "sk-123"
    store.delete("server")
    assert store.get("server") is None


def test_no_backend_is_a_clear_error_never_plaintext(tmp_path) -> None:
    keyring.set_keyring(fail.Keyring())  # what a headless Linux box has
    store = SecretStore()
    assert not store.available()
    with pytest.raises(NoSecureStoreError, match="No secure secret store") as err:
        store.set("server", "sk-123")
    assert "plain text" in str(err.value)
    with pytest.raises(NoSecureStoreError):
        store.get("server")
    written = [p for p in tmp_path.rglob("*") if p.is_file() and b"sk-123" in p.read_bytes()]
    assert not written, "a secret must never fall back to a file"
