from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge import KnowledgeBase, KnowledgeSettings, open_knowledge_base
from tests.knowledge.fakes import FakeEmbedder

REAL_MODEL_DIR_ENV = "JACKDAW_TEST_MODELS_DIR"


@pytest.fixture
def embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    return folder


@pytest.fixture
def kb(tmp_path: Path, embedder: FakeEmbedder, docs: Path) -> Iterator[KnowledgeBase]:
    base = open_knowledge_base(
        tmp_path / "knowledge.db", embedder, KnowledgeSettings(max_file_mb=1.0)
    )
    base.add_folder(docs)
    yield base
    base.close()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def real_embedder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """all-MiniLM-L6-v2 through llama.cpp, converted once per session."""
    import os

    from models.llama_embedder import LlamaCppEmbedder
    from models.minilm_gguf import default_embedding_gguf

    models_dir = Path(os.environ.get(REAL_MODEL_DIR_ENV) or tmp_path_factory.mktemp("models"))
    embedder = LlamaCppEmbedder(default_embedding_gguf(models_dir))
    yield embedder
    embedder.close()
