"""Build the packaged app: ``dist/jackdaw/`` (one folder, ``jackdaw`` executable) and a tarball.

    .venv/bin/python packaging/build.py                 folder + dist/jackdaw-VERSION-OS-ARCH.tar.gz
    .venv/bin/python packaging/build.py --no-archive    folder only (what the smoke test needs)
    .venv/bin/python packaging/build.py --archive xz    or zst; --level N sets the level
    .venv/bin/python packaging/build.py --if-stale      skip when dist/ matches the sources

Runs PyInstaller on packaging/jackdaw.spec, then checks the result (``jackdaw --version`` in a
clean environment), normalises permissions, and records what it built in
``dist/jackdaw.build.json`` (the sources' fingerprint, sizes, timings) so later runs and the
smoke test know whether the folder is current. Exits non-zero, with the end of PyInstaller's
log, if anything fails.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
APP = DIST / "jackdaw"
WORK = ROOT / "build"
STAMP = DIST / "jackdaw.build.json"
SPEC = ROOT / "packaging" / "jackdaw.spec"

# What the build is made from: a change in any of these makes dist/jackdaw stale.
SOURCE_DIRS = ("agent_core", "models", "tools", "knowledge", "desktop", "packaging")
SOURCE_SUFFIXES = {
    ".py",
    ".txt",
    ".json",
    ".png",
    ".svg",
    ".ico",
    ".icns",
    ".spec",
    ".desktop",
    ".sh",
}
SOURCE_FILES = ("pyproject.toml",)

ARCHIVES = {"gz": ("gz", 6), "xz": ("xz", 9), "zst": ("zst", 19)}  # default levels


def log(message: str) -> None:
    sys.stderr.write(f"build: {message}\n")
    sys.stderr.flush()


def source_files() -> list[Path]:
    files = [ROOT / name for name in SOURCE_FILES]
    for folder in SOURCE_DIRS:
        for path in (ROOT / folder).rglob("*"):
            if (
                path.is_file()
                and path.suffix in SOURCE_SUFFIXES
                and "__pycache__" not in path.parts
            ):
                files.append(path)
    return sorted(files)


def fingerprint() -> str:
    """sha256 over the sources' paths and contents, the virtualenv's installed versions and
    Python's version."""
    digest = hashlib.sha256()
    for path in source_files():
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    from importlib import metadata

    installed = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions())
    digest.update("\n".join(installed).encode())  # a changed dependency changes the app too
    digest.update(sys.version.encode())
    digest.update(os.environ.get("JACKDAW_BUNDLE_TINY_MODEL", "").encode())
    return digest.hexdigest()


def read_stamp() -> dict:
    try:
        return json.loads(STAMP.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def is_current() -> bool:
    """True when dist/jackdaw was built by this script from exactly the current sources."""
    stamp = read_stamp()
    executable = APP / exe_name("jackdaw")
    return executable.is_file() and stamp.get("fingerprint") == fingerprint()


def exe_name(name: str) -> str:
    return f"{name}.exe" if sys.platform == "win32" else name


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    """One build at a time in this checkout (two pytest runs may both find dist/ stale)."""
    try:
        import fcntl
    except ImportError:  # platform: Windows; builds there are run by hand
        yield
        return
    WORK.mkdir(exist_ok=True)
    with open(WORK / ".jackdaw-build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_pyinstaller(clean: bool = False) -> float:
    started = time.perf_counter()
    log_path = WORK / "pyinstaller.log"
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        *(["--clean"] if clean else []),
        "--distpath",
        str(DIST),
        "--workpath",
        str(WORK / "pyinstaller"),
        str(SPEC),
    ]
    log(f"PyInstaller ({' '.join(command[3:])}); log in {log_path.relative_to(ROOT)}")
    with open(log_path, "w", encoding="utf-8") as out:
        result = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
        sys.stderr.write("\n".join(tail) + "\n")
        raise SystemExit(f"build: PyInstaller failed (exit {result.returncode}); see {log_path}")
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("bundle_config:"):  # what was trimmed, and any warning
            log(line.removeprefix("bundle_config: "))
    return time.perf_counter() - started


def clean_env(home: Path) -> dict[str, str]:
    """An environment with nothing of this checkout or its virtualenv in it."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "JACKDAW_HOME": str(home / "jackdaw"),
        "QT_QPA_PLATFORM": "offscreen",
        "LANG": "C.UTF-8",
    }
    if sys.platform == "win32":  # platform: Windows needs these to start any program
        env.update({k: os.environ[k] for k in ("SYSTEMROOT", "TEMP", "TMP") if k in os.environ})
    return env


def run_app(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """The built app with ``args``, in a new home and working folder, in a clean environment."""
    with tempfile.TemporaryDirectory(prefix="jackdaw-build-run-") as tmp:
        return subprocess.run(
            [str(APP / exe_name("jackdaw")), *args],
            cwd=tmp,
            env=clean_env(Path(tmp)),
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def check_version(expected: str) -> str:
    result = run_app("--version", timeout=120)
    shown = result.stdout.strip()
    if result.returncode != 0 or shown != f"jackdaw {expected}":
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"build: dist/jackdaw/jackdaw --version failed (got {shown!r})")
    return shown


def warm_prompt_states() -> str:
    """Have the built app read the start every prompt shares and keep its state inside the
    folder (the seeds ``models.prompt_state.seed_folders`` finds in a frozen app), so the first
    question after installing does not spend ~9 s reading it. Made by the app itself: the
    states are named by its model, llama.cpp and exact prompt tokens. A failure only costs the
    first question that time, so it is reported, not fatal."""
    seeds = APP / "_internal" / "share" / "jackdaw" / "prompt-states"
    shutil.rmtree(seeds, ignore_errors=True)
    failed = "prompt states not prepared (the first question reads the prompt): "
    try:
        result = run_app("models", "warm", "--into", str(seeds), timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(seeds, ignore_errors=True)
        return failed + str(exc)
    if result.returncode != 0:
        shutil.rmtree(seeds, ignore_errors=True)
        return failed + " / ".join((result.stdout + result.stderr).strip().splitlines()[-5:])
    return result.stdout.strip()


def normalise_permissions(folder: Path) -> None:
    """Readable by everyone, writable by the owner only (the converted GGUF is written 0600)."""
    for path in [folder, *folder.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        executable = path.is_dir() or mode & 0o111
        path.chmod(0o755 if executable else 0o644)


def folder_sizes(folder: Path, top: int = 12) -> dict:
    files = [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]
    total = sum(p.stat().st_size for p in files)
    parts: dict[str, int] = {}
    for path in files:
        rel = path.relative_to(folder).parts
        # group by the first folder inside _internal (PySide6, numpy ...), or by file
        key = "/".join(rel[:2]) if rel[0] == "_internal" and len(rel) > 1 else rel[0]
        parts[key] = parts.get(key, 0) + path.stat().st_size
    largest = sorted(parts.items(), key=lambda kv: -kv[1])[:top]
    return {"total_bytes": total, "files": len(files), "largest": largest}


def archive_name(version: str, kind: str) -> Path:
    system = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform, "os")
    return DIST / f"jackdaw-{version}-{system}-{platform.machine().lower()}.tar.{kind}"


def _tar_filter(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def make_archive(version: str, kind: str, level: int | None = None) -> tuple[Path, float]:
    """Pack dist/jackdaw as jackdaw/ into a tarball. gz and xz through Python (no tools
    needed); zst through the ``zstd`` program (multi-threaded), as Python 3.11 has no zstd."""
    _, default_level = ARCHIVES[kind]
    level = default_level if level is None else level
    dest = archive_name(version, kind)
    tmp = dest.with_name(dest.name + ".part")
    started = time.perf_counter()
    if kind == "zst":
        if shutil.which("zstd") is None:
            raise SystemExit("build: --archive zst needs the zstd program (apt install zstd)")
        command = ["zstd", "-q", *(["--ultra"] if level > 19 else []), f"-{level}", "-T0"]
        command += ["--long=27"] if level >= 19 else []  # a 128 MB window: the models repeat
        with open(tmp, "wb") as out:
            zstd = subprocess.Popen([*command, "-c"], stdin=subprocess.PIPE, stdout=out)
            assert zstd.stdin is not None
            with tarfile.open(fileobj=zstd.stdin, mode="w|") as tar:
                tar.add(APP, arcname="jackdaw", filter=_tar_filter)
            zstd.stdin.close()
            if zstd.wait() != 0:
                raise SystemExit("build: zstd failed")
    elif kind == "xz":
        with tarfile.open(tmp, "w:xz", preset=level) as tar:
            tar.add(APP, arcname="jackdaw", filter=_tar_filter)
    else:
        with tarfile.open(tmp, "w:gz", compresslevel=level) as tar:
            tar.add(APP, arcname="jackdaw", filter=_tar_filter)
    os.replace(tmp, dest)
    return dest, time.perf_counter() - started


def build(archive: str | None, level: int | None, clean: bool = False) -> dict:
    sys.path.insert(0, str(ROOT / "packaging"))
    import bundle_config

    version = bundle_config.version(ROOT)
    STAMP.unlink(missing_ok=True)
    for kind in ARCHIVES:  # tarballs of the folder that is about to be replaced
        archive_name(version, kind).unlink(missing_ok=True)
    seconds = run_pyinstaller(clean)
    normalise_permissions(APP)
    shown = check_version(version)
    log(warm_prompt_states())
    normalise_permissions(APP)
    info = {
        "version": version,
        "fingerprint": fingerprint(),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "pyinstaller_seconds": round(seconds, 1),
        "platform": f"{sys.platform}-{platform.machine()}",
        "python": platform.python_version(),
        "folder": folder_sizes(APP),
    }
    log(
        f"{shown}: {APP.relative_to(ROOT)} built in {seconds:.0f} s, "
        f"{info['folder']['total_bytes'] / 1e6:.0f} MB"
    )
    if archive:
        add_archive(info, archive, level)
    STAMP.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def add_archive(info: dict, kind: str, level: int | None) -> None:
    path, packed = make_archive(info["version"], kind, level)
    info["archive"] = {
        "path": str(path.relative_to(ROOT)),
        "bytes": path.stat().st_size,
        "seconds": round(packed, 1),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    log(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1e6:.0f} MB in {packed:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", choices=sorted(ARCHIVES), default="gz")
    parser.add_argument("--no-archive", action="store_true", help="build the folder only")
    parser.add_argument("--level", type=int, help="compression level (gz 1-9, xz 0-9, zst 1-22)")
    parser.add_argument("--if-stale", action="store_true", help="do nothing if dist/ is current")
    parser.add_argument("--clean", action="store_true", help="empty PyInstaller's cache first")
    parser.add_argument("--json", action="store_true", help="print the build record")
    parser.add_argument(
        "--with-tiny-model",
        action="store_true",
        help="also carry the tiny SmolLM2 chat model (+98 MB; the default model is always in)",
    )
    args = parser.parse_args(argv)
    if args.with_tiny_model:
        os.environ["JACKDAW_BUNDLE_TINY_MODEL"] = "1"  # read by bundle_config in the spec
    archive = None if args.no_archive else args.archive
    with build_lock():
        if args.if_stale and is_current():
            log(f"{APP.relative_to(ROOT)} is current (sources unchanged); not rebuilt")
            info = read_stamp()
            packed = info.get("archive", {}).get("path")
            wanted = archive_name(info["version"], archive) if archive else None
            if wanted and (packed != str(wanted.relative_to(ROOT)) or not wanted.is_file()):
                add_archive(info, archive, args.level)
                STAMP.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        else:
            info = build(archive, args.level, args.clean)
    if args.json:
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
