"""run_python: the model's code in a separate, limited process. Always asks first.

The child gets: a fresh temporary working folder (deleted afterwards); a minimal environment
built from scratch (no API keys, tokens, D-Bus or keyring access inherited from ours); the
interpreter's isolated mode (-I: no PYTHON* variables, no user site, no cwd on sys.path); on
POSIX, rlimits on address space, CPU time, file size and core dumps, set by a bootstrap inside
the child (``preexec_fn`` is unsafe in a threaded parent); a wall-clock limit after which its
whole process group is killed; and output captured to files capped in size.

It is not a jail: the code can read what the user can read and open network connections.
That is why every call is shown to the user and approved one by one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.base import Risk, Tool, ToolError, ToolTimeout

DEFAULT_OUTPUT_CAP = 8000
MAX_CODE_CHARS = 50_000

# Runs first in the child: limits it cannot raise again (soft = hard), then the user's code.
_BOOTSTRAP = r"""
import os, runpy, sys
try:
    import resource
except ImportError:
    resource = None
if resource is not None:
    mem, cpu, fsize = (int(v) for v in sys.argv[1:4])
    limits = (("RLIMIT_AS", mem), ("RLIMIT_CPU", cpu), ("RLIMIT_FSIZE", fsize), ("RLIMIT_CORE", 0))
    for name, value in limits:
        limit = getattr(resource, name, None)
        if limit is not None and value >= 0:
            try:
                resource.setrlimit(limit, (value, value))
            except (ValueError, OSError):
                pass
sys.argv = ["main.py"]
runpy.run_path("main.py", run_name="__main__")
"""


def minimal_env(workdir: Path) -> dict[str, str]:
    """An environment made from nothing: whatever secret ours holds, the child cannot see it."""
    env = {
        "PATH": os.defpath,
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "TEMP": str(workdir),
        "TMP": str(workdir),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        # One thread each: BLAS thread pools reserve address space the memory limit counts.
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    if os.name == "nt":  # Windows cannot start a process without these
        for key in ("SYSTEMROOT", "SYSTEMDRIVE", "WINDIR"):
            if key in os.environ:
                env[key] = os.environ[key]
    return env


def _read_capped(path: Path, cap: int) -> tuple[str, int]:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        data = fh.read(cap)
    return data.decode("utf-8", errors="replace"), size


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)  # children the code started die too
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


class PythonRunner:
    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        memory_mb: int = 512,
        output_cap: int = DEFAULT_OUTPUT_CAP,
        python: str = sys.executable,
    ) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.output_cap = output_cap
        self.python = python

    def run(self, code: str) -> str:
        if len(code) > MAX_CODE_CHARS:
            raise ToolError(
                f"the code is {len(code)} characters; run_python takes {MAX_CODE_CHARS}"
            )
        with tempfile.TemporaryDirectory(prefix="jackdaw-run-") as tmp:
            workdir = Path(tmp)
            (workdir / "main.py").write_text(code, encoding="utf-8")
            out_path, err_path = workdir / ".stdout", workdir / ".stderr"
            limits = [
                str(self.memory_mb * 1024 * 1024) if self.memory_mb > 0 else "-1",
                str(int(self.timeout_s) + 1),  # CPU seconds: a backstop behind the wall clock
                str(max(self.output_cap * 16, 1 << 20)),  # also bounds the captured output
            ]
            with open(out_path, "wb") as out, open(err_path, "wb") as err:
                started = time.monotonic()
                proc = subprocess.Popen(
                    [self.python, "-I", "-c", _BOOTSTRAP, *limits],
                    cwd=workdir,
                    env=minimal_env(workdir),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,  # its own process group, killed as one
                    close_fds=True,
                )
                try:
                    code_rc: int | None = proc.wait(timeout=self.timeout_s)
                except subprocess.TimeoutExpired:
                    _kill_group(proc)
                    code_rc = None
                elapsed = time.monotonic() - started
            stdout, out_size = _read_capped(out_path, self.output_cap)
            stderr, err_size = _read_capped(err_path, self.output_cap)
        report = self._report(code_rc, elapsed, stdout, out_size, stderr, err_size)
        if code_rc is None:
            raise ToolTimeout(
                f"run_python: the code ran longer than {self.timeout_s:g} s and was stopped."
                f"\n{report}"
            )
        return report

    def _report(
        self, rc: int | None, elapsed: float, stdout: str, out_size: int, stderr: str, err_size: int
    ) -> str:
        lines = [f"exit code: {rc if rc is not None else 'killed'} ({elapsed:.2f} s)"]
        if rc is not None and rc < 0:
            try:
                lines[0] += f" — stopped by {signal.Signals(-rc).name}"
            except ValueError:
                pass
        for label, text, size in (("stdout", stdout, out_size), ("stderr", stderr, err_size)):
            if not size:
                continue
            lines.append(f"{label}:")
            lines.append(text.rstrip("\n"))
            if size > self.output_cap:
                lines.append(f"[... {label} truncated: {size} bytes in all]")
        if len(lines) == 1:
            lines.append("(no output)")
        return "\n".join(lines)


def make_run_python(
    *, timeout_s: float = 10.0, memory_mb: int = 512, output_cap: int = DEFAULT_OUTPUT_CAP
) -> Tool:
    runner = PythonRunner(timeout_s=timeout_s, memory_mb=memory_mb, output_cap=output_cap)
    return Tool(
        name="run_python",
        description=(
            "Run a short Python 3 program in a separate process (empty temporary folder, no "
            f"secrets, {timeout_s:g} s limit, {memory_mb} MB memory) and return its printed "
            "output. The user approves every run."
        ),
        parameters={
            "type": "object",
            "properties": {"code": {"type": "string", "minLength": 1}},
            "required": ["code"],
            "additionalProperties": False,
        },
        risk=Risk.EXECUTE,
        function=runner.run,
        always_ask=True,
        # The executor's own limit sits behind the runner's: the runner kills the child and
        # reports; the executor only steps in if that somehow hangs.
        timeout_s=timeout_s + 10.0,
    )
