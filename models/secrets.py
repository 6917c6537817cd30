"""Secrets live in the OS keychain through keyring; never in a file, a DB row or a log."""

from __future__ import annotations

import keyring
import keyring.errors
from keyring.backends import fail

from models.errors import NoSecureStoreError

SERVICE = "jackdaw"


class SecretStore:
    """A tiny façade over keyring that refuses to work without a secure backend."""

    def __init__(self, service: str = SERVICE) -> None:
        self.service = service

    def _backend(self) -> keyring.backend.KeyringBackend:
        backend = keyring.get_keyring()
        if isinstance(backend, fail.Keyring) or type(backend).__name__ == "PlaintextKeyring":
            raise NoSecureStoreError(
                f"No secure secret store is available (keyring backend: {type(backend).__name__})."
            )
        return backend

    def available(self) -> bool:
        try:
            self._backend()
        except NoSecureStoreError:
            return False
        return True

    def get(self, name: str) -> str | None:
        try:
            return self._backend().get_password(self.service, name)
        except keyring.errors.KeyringError as exc:
            raise NoSecureStoreError(f"The OS keychain refused to read {name!r}: {exc}") from exc

    def set(self, name: str, secret: str) -> None:
        try:
            self._backend().set_password(self.service, name, secret)
        except keyring.errors.KeyringError as exc:
            raise NoSecureStoreError(f"The OS keychain refused to store {name!r}: {exc}") from exc

    def delete(self, name: str) -> None:
        try:
            self._backend().delete_password(self.service, name)
        except keyring.errors.PasswordDeleteError:
            pass
        except keyring.errors.KeyringError as exc:
            raise NoSecureStoreError(f"The OS keychain refused to delete {name!r}: {exc}") from exc
