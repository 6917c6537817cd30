"""run_python: a separate, limited process, and it always asks."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from tools.base import ToolTimeout
from tools.builtins.python_runner import PythonRunner
from tools.confirm import ScriptedConfirmationHandler
from tools.rules import Lifetime, Scope

posix_only = pytest.mark.skipif(os.name != "posix", reason="rlimits and process groups are POSIX")


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
    code = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
        "while True: pass\n"
    )
    started = time.monotonic()
    with pytest.raises(ToolTimeout, match="longer than 1 s") as caught:
        runner.run(code)
    assert time.monotonic() - started < 5
    pid = int(str(caught.value).split("stdout:\n")[1].split()[0])  # partial output survives
    if os.name == "posix":
        time.sleep(0.2)
        assert not _running(pid)  # the grandchild died with its process group


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    # A killed orphan may linger as a zombie where PID 1 does not reap (containers).
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


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
