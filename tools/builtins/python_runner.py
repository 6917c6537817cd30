"""run_python: the model's code in a separate, limited process. Always asks first.

Where bubblewrap (``bwrap``) works (Linux), the child runs in a sandbox of its own namespaces:
it sees the system's programs and libraries and Python's own files, read-only, and an empty
working folder of its own, a size-capped in-memory filesystem that vanishes with it; no other
file of this machine, no network, no other process (so not ours: no ``/proc/$PPID/environ``),
a private size-capped ``/dev/shm``. When its main program ends or is killed, every process it
started dies with its PID namespace, ``setsid`` or not.

Everywhere (sandbox or not) the child gets: a minimal environment built from scratch; the
interpreter's isolated mode (-I); on POSIX, rlimits on address space, CPU time, file size,
processes and core dumps, set by a bootstrap inside the child (``preexec_fn`` is unsafe in a
threaded parent); a wall-clock limit; its own session, killed as a whole; output captured to
files capped in size.

Without a sandbox it is not a jail: the code can read and change what the user can and open
network connections. The tool's description (shown when the user is asked) says which of the
two this machine gives, and every call is shown and approved one by one.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.base import Risk, Tool, ToolError, ToolTimeout

log = logging.getLogger("jackdaw.tools")

DEFAULT_OUTPUT_CAP = 8000
MAX_CODE_CHARS = 50_000
MAX_PROCESSES = 64  # processes and threads the code may have at once
SANDBOX_FILES_MB = 64  # the working folder's size in the sandbox
SANDBOX_SHM_MB = 16  # /dev/shm's size in the sandbox

# Runs first in the child: limits it cannot raise again (soft = hard), then the user's code.
_BOOTSTRAP = r"""
import os, runpy, sys
try:
    import resource
except ImportError:
    resource = None
if resource is not None:
    mem, cpu, fsize, nproc = (int(v) for v in sys.argv[1:5])
    limits = (("RLIMIT_AS", mem), ("RLIMIT_CPU", cpu), ("RLIMIT_FSIZE", fsize),
              ("RLIMIT_NPROC", nproc), ("RLIMIT_CORE", 0))
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


# -- the sandbox ------------------------------------------------------------------------------
# System folders the interpreter needs, read-only. /etc only in part: the loader's cache,
# time zones, certificates; not the rest of the machine's configuration.
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = (
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
    "/etc/alternatives", "/etc/ssl", "/etc/ca-certificates", "/etc/pki", "/etc/mime.types",
)  # fmt: skip


def _python_dirs(python: str) -> list[str]:
    """Where the interpreter's own files are: its prefix (a virtualenv), its base prefix; for
    the packaged app, the app's folder. Never a folder above them (that may be a home)."""
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    if getattr(sys, "frozen", False):  # the packaged app is the interpreter: its own folder
        dirs.add(str(Path(python).resolve().parent))
    covered = tuple(d + "/" for d in _SYSTEM_DIRS)
    return sorted(
        d
        for d in dirs
        if d and Path(d).is_dir() and d not in _SYSTEM_DIRS and not d.startswith(covered)
    )


def bubblewrap_command(
    bwrap: str, python: str, workdir: Path, files_mb: int = SANDBOX_FILES_MB
) -> list[str]:
    """``bwrap`` arguments that run ``python`` confined to ``workdir`` (see the module doc)."""
    args = [
        bwrap,
        "--unshare-all",  # user, pid, network, IPC, UTS and cgroup namespaces of its own
        "--die-with-parent",
        "--new-session",
        "--cap-drop", "ALL",
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", str(SANDBOX_SHM_MB << 20), "--tmpfs", "/dev/shm",
    ]  # fmt: skip
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in _ETC_FILES:
        args += ["--ro-bind-try", path, path]
    for path in _python_dirs(python):
        args += ["--ro-bind", path, path]
    args += [
        "--size", str(files_mb << 20), "--tmpfs", str(workdir),
        "--ro-bind", str(workdir / "main.py"), str(workdir / "main.py"),
        "--chdir", str(workdir),
        "--remount-ro", "/",  # the sandbox's own root: nothing is written there either
    ]  # fmt: skip
    return args


@functools.cache
def find_sandbox(python: str = sys.executable) -> str | None:
    """The path of a ``bwrap`` that can run ``python`` here, or None (then no sandbox).

    Tried once: bwrap may be installed yet unable to work (user namespaces turned off,
    a container that forbids them).
    """
    if not sys.platform.startswith("linux"):
        return None
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        log.info("run_python: bubblewrap (bwrap) is not installed; no sandbox")
        return None
    with tempfile.TemporaryDirectory(prefix="jackdaw-run-") as tmp:
        workdir = Path(tmp)
        (workdir / "main.py").write_text("", encoding="utf-8")
        # "-c": the packaged app is a Python only when started as `python -c` (jackdaw_main.py)
        command = [*bubblewrap_command(bwrap, python, workdir), python, "-I", "-c", "pass"]
        try:
            done = subprocess.run(
                command, env=minimal_env(workdir), capture_output=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("run_python: bubblewrap does not work here (%s); no sandbox", exc)
            return None
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip()[:300]
        log.warning("run_python: bubblewrap does not work here (%s); no sandbox", reason)
        return None
    return bwrap


def _user_tasks() -> int | None:
    """Processes and threads of our user now (RLIMIT_NPROC counts them all), or None."""
    uid = str(os.getuid()) if hasattr(os, "getuid") else None
    proc = Path("/proc")
    if uid is None or not proc.is_dir():
        return None
    count = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] == [uid]:
            count += int(fields.get("Threads", "1").strip() or 1)
    return count


def _read_capped(path: Path, cap: int) -> tuple[str, int]:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        data = fh.read(cap)
    return data.decode("utf-8", errors="replace"), size


def _wait_unreaped(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait until the child exits, without reaping it: while it is a zombie its PID (the
    number of its process group) cannot be given to another process we would then kill."""
    if not hasattr(os, "waitid"):  # Windows, macOS: wait (and reap) as usual
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.02)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the child's whole session (its process group): what it started dies too."""
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


class PythonRunner:
    """Runs code as described in the module doc. ``sandbox``: True to require bubblewrap,
    False to go without, None to use it when it works here."""

    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        memory_mb: int = 512,
        output_cap: int = DEFAULT_OUTPUT_CAP,
        python: str = sys.executable,
        sandbox: bool | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.output_cap = output_cap
        self.python = python
        self.bwrap = find_sandbox(python) if sandbox is not False else None
        if sandbox and self.bwrap is None:
            raise ToolError("run_python: no working bubblewrap sandbox on this machine")

    @property
    def sandboxed(self) -> bool:
        return self.bwrap is not None

    def describe(self) -> str:
        """What the code can touch on this machine, in one line for the confirmation."""
        limits = f"{self.timeout_s:g} s, {self.memory_mb} MB memory, {MAX_PROCESSES} processes"
        if self.sandboxed:
            return (
                "In a sandbox: the code can read only the system's programs and libraries and "
                "Python's own files; it can write only in an empty temporary folder (up to "
                f"{SANDBOX_FILES_MB} MB, deleted afterwards); it cannot see your files, your "
                f"environment or other programs, and has no network. Limits: {limits}."
            )
        return (
            "NO SANDBOX on this machine (install bubblewrap for one): the code starts in an "
            "empty temporary folder with no secrets in its environment, but it can read and "
            f"change any file you can and use the network. Limits: {limits}."
        )

    def _command(self, workdir: Path) -> list[str]:
        nproc: int | None = MAX_PROCESSES
        if not self.sandboxed:
            # Without a user namespace of its own the limit counts all our user's processes.
            tasks = _user_tasks()
            nproc = tasks + MAX_PROCESSES if tasks is not None else None
        limits = [
            str(self.memory_mb * 1024 * 1024) if self.memory_mb > 0 else "-1",
            str(int(self.timeout_s) + 1),  # CPU seconds: a backstop behind the wall clock
            str(max(self.output_cap * 16, 1 << 20)),  # also bounds the captured output
            str(nproc if nproc is not None else -1),
        ]
        command = [self.python, "-I", "-c", _BOOTSTRAP, *limits]
        if self.bwrap is not None:
            command = [*bubblewrap_command(self.bwrap, self.python, workdir), *command]
        return command

    def run(self, code: str) -> str:
        if len(code) > MAX_CODE_CHARS:
            raise ToolError(
                f"the code is {len(code)} characters; run_python takes {MAX_CODE_CHARS}"
            )
        with tempfile.TemporaryDirectory(prefix="jackdaw-run-") as tmp:
            workdir = Path(tmp)
            (workdir / "main.py").write_text(code, encoding="utf-8")
            # Outside the sandbox's view: the sandbox mounts a fresh folder over workdir.
            out_path, err_path = workdir / ".stdout", workdir / ".stderr"
            with open(out_path, "wb") as out, open(err_path, "wb") as err:
                started = time.monotonic()
                proc = subprocess.Popen(
                    self._command(workdir),
                    cwd=workdir,
                    env=minimal_env(workdir),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,  # its own session and process group, killed as one
                    close_fds=True,
                )
                exited = _wait_unreaped(proc, self.timeout_s)
                # Whether it ended or not, what it left running in its group dies now (in
                # the sandbox, the PID namespace has already taken everything with it).
                _kill_group(proc)
                code_rc: int | None = proc.returncode if exited else None
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
    *,
    timeout_s: float = 10.0,
    memory_mb: int = 512,
    output_cap: int = DEFAULT_OUTPUT_CAP,
    sandbox: bool | None = None,
) -> Tool:
    runner = PythonRunner(
        timeout_s=timeout_s, memory_mb=memory_mb, output_cap=output_cap, sandbox=sandbox
    )
    return Tool(
        name="run_python",
        description=(
            f"Run a short Python 3 program and return its printed output ({timeout_s:g} s, "
            f"{memory_mb} MB). The user approves every run."
        ),
        confinement=runner.describe(),
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
