"""run_python: a separate, limited process, and it always asks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tools.base import ToolTimeout
from tools.builtins.python_runner import MAX_PROCESSES, PythonRunner, find_sandbox
from tools.confirm import ScriptedConfirmationHandler
from tools.rules import Lifetime, Scope

posix_only = pytest.mark.skipif(os.name != "posix", reason="rlimits and process groups are POSIX")
sandboxed = pytest.mark.skipif(
    find_sandbox() is None, reason="needs a working bubblewrap (apt-get install bubblewrap)"
)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def runner() -> PythonRunner:
    return PythonRunner(timeout_s=5, memory_mb=256, output_cap=2000)


def test_runs_code_and_reports_output(runner) -> None:
    report = runner.run("print(sum(range(10)))\nimport sys; print('warn', file=sys.stderr)")
    assert report.startswith("exit code: 0")
    assert "stdout:\n45" in report and "stderr:\nwarn" in report


def test_an_exception_is_reported_not_raised(runner) -> None:
    report = runner.run("raise ValueError('boom')")
    assert report.startswith("exit code: 1") and "ValueError: boom" in report


def test_timeout_kills_the_code_and_its_children(tmp_path: Path) -> None:
    runner = PythonRunner(timeout_s=1.0)
    marker = f"jackdaw-test-{uuid.uuid4().hex}"
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)", marker]
    code = (
        "import subprocess, sys\n"
        f"child = subprocess.Popen({sleeper!r})\n"
        "print('started', flush=True)\n"
        "while True: pass\n"
    )
    started = time.monotonic()
    with pytest.raises(ToolTimeout, match="longer than 1 s") as caught:
        runner.run(code)
    assert time.monotonic() - started < 5
    assert "stdout:\nstarted" in str(caught.value)  # partial output survives
    if sys.platform.startswith("linux"):
        assert _gone(marker)  # the grandchild died with its process group


def _alive(marker: str) -> list[int]:
    """PIDs (ours, on this machine) of live processes with ``marker`` in their command line."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        # A killed orphan may linger as a zombie where PID 1 does not reap (containers).
        if marker.encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def _gone(marker: str, wait_s: float = 10.0) -> bool:
    """True once no process with ``marker`` is alive (SIGKILL takes a moment to land)."""
    deadline = time.monotonic() + wait_s
    while _alive(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _run_in_a_fresh_process(code: str, env: dict[str, str]) -> str:
    """PythonRunner.run(code) in a new interpreter started with ``env``: what /proc shows of a
    process's environment is what it was started with, not what monkeypatch sets later."""
    driver = (
        "import sys\n"
        "from tools.builtins.python_runner import PythonRunner\n"
        "print(PythonRunner(timeout_s=10).run(sys.stdin.read()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", driver],
        input=code,
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


@sandboxed
def test_the_code_cannot_read_our_environment_through_proc() -> None:
    secret = "sk-test-" + uuid.uuid4().hex
    env = {**os.environ, "OPENAI_API_KEY": secret, "JACKDAW_TEST_SECRET": secret}
    code = (
        "import os\n"
        "for pid in [os.getppid(), *os.listdir('/proc')]:\n"
        "    try:\n"
        "        print(pid, open(f'/proc/{pid}/environ', 'rb').read())\n"
        "    except (OSError, ValueError) as exc:\n"
        "        print(pid, type(exc).__name__)\n"
    )
    report = _run_in_a_fresh_process(code, env)
    assert report.startswith("exit code: 0")
    assert secret not in report and "JACKDAW_TEST_SECRET" not in report


@sandboxed
def test_every_process_it_started_dies_with_it_setsid_or_not(runner) -> None:
    marker = f"jackdaw-test-{uuid.uuid4().hex}"
    sleeper = ["import time; time.sleep(60)", marker]
    code = (
        "import subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', *{sleeper!r}], start_new_session=True)\n"
        f"subprocess.Popen([sys.executable, '-c', *{sleeper!r}])\n"
        "print('left two behind')\n"
    )
    report = runner.run(code)
    assert "left two behind" in report
    assert _gone(marker), _alive(marker)


@posix_only
def test_children_left_in_its_group_die_with_it_even_without_a_sandbox() -> None:
    runner = PythonRunner(timeout_s=5, sandbox=False)
    marker = f"jackdaw-test-{uuid.uuid4().hex}"
    code = (
        "import subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', {marker!r}])\n"
    )
    assert runner.run(code).startswith("exit code: 0")
    if sys.platform.startswith("linux"):
        assert _gone(marker), _alive(marker)


@sandboxed
def test_processes_are_limited(runner) -> None:
    code = (
        "import os, resource, time\n"
        "print('limit', resource.getrlimit(resource.RLIMIT_NPROC))\n"
        "forked = 0\n"
        "try:\n"
        "    for _ in range(200):\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(5)\n"
        "            os._exit(0)\n"
        "        forked += 1\n"
        "except OSError as exc:\n"
        "    print('refused', exc.errno)\n"
        "print('forked', forked)\n"
    )
    report = runner.run(code)
    assert f"limit ({MAX_PROCESSES}, {MAX_PROCESSES})" in report
    if os.geteuid() != 0:  # the kernel exempts root from RLIMIT_NPROC
        assert "refused" in report
        assert int(report.split("forked ")[1].split()[0]) < MAX_PROCESSES


@sandboxed
def test_dev_shm_is_private_and_small() -> None:
    name = f"jackdaw-test-{uuid.uuid4().hex}"
    code = (  # 1 MB files: the file size limit does not stop this, only the tmpfs's size
        "written = 0\n"
        "try:\n"
        "    for i in range(100):\n"
        f"        open(f'/dev/shm/{name}-{{i}}', 'wb').write(b'x' * (1 << 20))\n"
        "        written += 1\n"
        "except OSError as exc:\n"
        "    print('refused', exc.errno)\n"
        "print('MB', written)\n"
    )
    try:
        report = PythonRunner(timeout_s=10, memory_mb=64).run(code)
        assert "refused" in report and int(report.split("MB ")[1].split()[0]) < 64
        assert not list(Path("/dev/shm").glob(f"{name}-*"))  # nothing of it on this machine
    finally:
        for left in Path("/dev/shm").glob(f"{name}-*"):
            left.unlink()


@sandboxed
def test_it_writes_only_in_its_own_folder_and_sees_none_of_ours(
    runner, workspace, tmp_path: Path
) -> None:
    targets = [
        tmp_path / "escaped.txt",
        workspace.notes / "escaped.md",
        Path(f"/tmp/jackdaw-escaped-{uuid.uuid4().hex}"),
        Path.home() / f"jackdaw-escaped-{uuid.uuid4().hex}",
    ]
    secret = workspace.outside / "secret.txt"
    code = (
        "import os\n"
        f"for path in {[str(t) for t in targets]!r}:\n"
        "    try:\n"
        "        open(path, 'w').write('x')\n"
        "        print('WROTE', path)\n"
        "    except OSError as exc:\n"
        "        print('refused', exc.errno)\n"
        "try:\n"
        f"    print('READ', open({str(secret)!r}).read())\n"
        "except OSError as exc:\n"
        "    print('unseen', exc.errno)\n"
        "open('mine.txt', 'w').write('fine')\n"
        "print('own folder', open('mine.txt').read())\n"
    )
    report = runner.run(code)
    assert "WROTE" not in report and report.count("refused") == len(targets)
    assert "READ" not in report and "TOP SECRET" not in report and "unseen" in report
    assert "own folder fine" in report
    assert not any(t.exists() for t in targets)


@sandboxed
def test_no_network(runner) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        code = (
            "import socket\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "    print('CONNECTED')\n"
            "except OSError as exc:\n"
            "    print('no network', exc.errno)\n"
        )
        report = runner.run(code)
    assert "CONNECTED" not in report and "no network" in report


def test_the_confirmation_says_what_the_code_can_touch(workspace, memory) -> None:
    confirmer = ScriptedConfirmationHandler(["deny"])
    workspace.executor(memory, confirmer).call("run_python", {"code": "print(1)"})
    shown = confirmer.requests[0].description
    assert shown.startswith("Run a short Python 3 program") and "\n" not in shown
    if find_sandbox() is not None:
        assert "In a sandbox" in shown and "NO SANDBOX" not in shown
        for promise in ("read only", "write only in an empty temporary folder", "no network"):
            assert promise in shown
        assert "cannot see your files, your environment or other programs" in shown
    else:
        assert "NO SANDBOX" in shown
    unconfined = PythonRunner(sandbox=False).describe()
    assert "NO SANDBOX" in unconfined
    assert "can read and change any file you can and use the network" in unconfined


def test_no_inherited_secrets(runner, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-very-secret-0123456789")
    monkeypatch.setenv("JACKDAW_TEST_SECRET", "hunter2-secret-value")
    report = runner.run(
        "import os\n"
        "print(os.environ.get('OPENAI_API_KEY'), os.environ.get('JACKDAW_TEST_SECRET'))\n"
        "print(sorted(os.environ.items()))\n"
    )
    assert "None None" in report
    assert "sk-test" not in report and "hunter2" not in report
    assert "JACKDAW_HOME" not in report and "DBUS" not in report


def test_temporary_working_folder_is_removed(runner) -> None:
    report = runner.run("import os; open('out.txt', 'w').write('x'); print(os.getcwd())")
    workdir = Path(report.split("stdout:\n")[1].splitlines()[0])
    assert workdir.name.startswith("jackdaw-run-")
    assert not workdir.exists()


def test_output_is_capped(runner) -> None:
    report = runner.run("print('x' * 100_000)")
    assert "[... stdout truncated: 100001 bytes in all]" in report
    assert len(report) < 2500


@posix_only
def test_memory_limit(runner) -> None:
    report = runner.run("data = bytearray(1024 * 1024 * 1024)\nprint('allocated')")
    assert "MemoryError" in report and "allocated" not in report


@posix_only
def test_isolated_mode_ignores_python_env(runner, monkeypatch, tmp_path) -> None:
    (tmp_path / "evil.py").write_text("print('evil imported')")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("PYTHONSTARTUP", str(tmp_path / "evil.py"))
    report = runner.run("import sys; print('ok')")
    assert "evil" not in report and "stdout:\nok" in report


def test_run_python_always_asks_even_with_an_always_rule(workspace, memory) -> None:
    confirmer = ScriptedConfirmationHandler(["always", "once", "deny"])
    executor = workspace.executor(memory, confirmer)
    executor.policy.allow(Scope.make("run_python"), Lifetime.ALWAYS)
    code = {"code": f"print({sys.version_info.major})"}
    first = executor.call("run_python", code)
    assert first.ok and first.rule == "user:allow_once" and "stdout:\n3" in first.observation
    assert executor.call("run_python", code).ok
    assert executor.call("run_python", code).status == "denied"
    assert len(confirmer.requests) == 3
    assert all(r.scope is None for r in confirmer.requests)  # "always" is never offered
    assert [r.lifetime for r in executor.policy.rules()] == [Lifetime.ALWAYS]  # only ours


def test_run_python_timeout_through_the_executor(workspace, memory) -> None:
    executor = workspace.executor(
        memory, ScriptedConfirmationHandler(["once"]), run_python_timeout_s=0.5
    )
    outcome = executor.call("run_python", {"code": "import time\ntime.sleep(30)"})
    assert outcome.status == "timeout" and "longer than 0.5 s" in outcome.observation
    assert outcome.duration_ms < 5000


def test_run_python_without_anyone_to_ask_is_denied(workspace, memory) -> None:
    outcome = workspace.executor(memory).call("run_python", {"code": "print(1)"})
    assert outcome.status == "denied" and "nobody to ask" in outcome.observation
