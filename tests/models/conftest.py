from __future__ import annotations

from collections.abc import Iterator

import pytest

from models.discovery import embedded_chat_model


@pytest.fixture(scope="session")
def smol() -> Iterator[object]:
    """The real embedded GGUF through llama.cpp, loaded once for the session."""
    from models.llama_backend import LlamaCppBackend

    backend = LlamaCppBackend(embedded_chat_model(), n_ctx=2048)
    yield backend
    backend.close()
