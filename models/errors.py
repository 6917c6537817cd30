"""Errors meant for the user.

Every error a person can act on derives from :class:`JackdawError` and says what to do next.
It lives in ``models/`` because that is the bottom layer: every other package may import it.
A fault of ours (a bug) is any other exception and is allowed to raise with a traceback.
"""

from __future__ import annotations


class JackdawError(Exception):
    """An error the user can do something about. ``hint`` says what."""

    hint: str = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base}\n  -> {self.hint}" if self.hint else base


class ModelFileError(JackdawError):
    """A model file is missing or unusable."""


class ModelNotFoundError(ModelFileError):
    hint = "Check the path, or pick another GGUF file (config.toml [model] path, or --model PATH)."


class NotAGGUFError(ModelFileError):
    hint = (
        "Jackdaw runs GGUF models (*.gguf). Convert the model with llama.cpp's convert script "
        "or pick a GGUF."
    )


class TruncatedGGUFError(ModelFileError):
    hint = "The file is incomplete (an interrupted download or copy?). Download or copy it again."


class UnsupportedArchitectureError(ModelFileError):
    hint = (
        "Update llama-cpp-python (pip install -U llama-cpp-python) or choose a model of a "
        "supported architecture."
    )


class ModelLoadError(ModelFileError):
    hint = "Try a smaller context size (n_ctx), fewer GPU layers, or another GGUF file."


class ContextTooSmallError(JackdawError):
    hint = "Raise the context size (config.toml [model] n_ctx) or ask a shorter question."


class ServerError(JackdawError):
    """An OpenAI-compatible server failed or answered with an error."""


class ServerUnreachableError(ServerError):
    hint = "Is the server running? Check the URL in config.toml [server] base_url."


class NoSecureStoreError(JackdawError):
    hint = (
        "Install and unlock an OS keychain (GNOME Keyring / KWallet on Linux, Keychain on macOS, "
        "Credential Manager on Windows), or install a keyring backend such as keyrings.alt. "
        "Jackdaw never stores secrets in plain text."
    )


class GenerationCancelled(Exception):
    """Raised inside a generation when the caller cancelled it. Not an error of anyone's."""
