"""Benchmark (a script, not a test): the packaged app against running from source.

    .venv/bin/python tests/benchmarks/bench_packaging.py [--reuse] [--clean] [--runs 3]
        [--archives gz:6,gz:9,xz:6,xz:9,zst:19,zst:22] [--no-ask]

Prints, as Markdown for docs/benchmarks.md:
- build time (packaging/build.py, PyInstaller's cache warm; --clean empties it first;
  --reuse measures the existing dist/jackdaw instead of building);
- the folder's size and its largest parts;
- the tarball's size and packing time for each compressor and level asked for;
- start-up of the binary vs from source (``.venv/bin/jackdaw``): ``--version``, and ``ask`` on
  the embedded model (wall time, and the part of it spent before the agent started: loading
  Python, Qt-free imports, the model). Every run is a fresh process with a fresh JACKDAW_HOME
  and a clean environment; the page cache is warm (dropping it needs root), so "cold" means
  a cold process, not a cold disk. The first run of each is shown apart from the rest.
The machine's load average is printed too: on a shared machine, timings move with it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packaging"))

import build as packaging_build  # noqa: E402  (packaging/build.py)

APP = ROOT / "dist" / "jackdaw" / "jackdaw"
SOURCE = ROOT / ".venv" / "bin" / "jackdaw"
QUESTION = "Say hello in one short sentence."


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def run_build(clean: bool) -> dict:
    started = time.perf_counter()
    args = ["--no-archive", "--json", *(["--clean"] if clean else [])]
    out = subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "build.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit("build failed")
    info = json.loads(out.stdout)
    info["total_seconds"] = round(time.perf_counter() - started, 1)
    return info


def timed(command: list[str]) -> tuple[float, dict | None, str]:
    with tempfile.TemporaryDirectory(prefix="jackdaw-bench-") as tmp:
        env = packaging_build.clean_env(Path(tmp))
        started = time.perf_counter()
        out = subprocess.run(
            command, cwd=tmp, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        wall = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{out.stderr[-2000:]}")
    data = None
    if "--json" in command:
        data = json.loads(out.stdout)
    return wall, data, out.stdout.strip()


def startup(label: str, exe: Path, runs: int, ask: bool) -> list[str]:
    rows = []
    walls = [timed([str(exe), "--version"])[0] for _ in range(runs + 1)]
    rows.append(
        f"| {label} | `--version` | {walls[0]:.2f} s | "
        f"{statistics.median(walls[1:]):.2f} s (min {min(walls[1:]):.2f}) |"
    )
    if ask:
        results = [timed([str(exe), "ask", QUESTION, "--json"]) for _ in range(runs + 1)]
        walls = [wall for wall, _, _ in results]
        before = [wall - data["duration_ms"] / 1000 for wall, data, _ in results if data]
        rows.append(
            f"| {label} | `ask` (wall) | {walls[0]:.2f} s | "
            f"{statistics.median(walls[1:]):.2f} s (min {min(walls[1:]):.2f}) |"
        )
        rows.append(
            f"| {label} | `ask`: start-up + model load (wall − agent run) | {before[0]:.2f} s | "
            f"{statistics.median(before[1:]):.2f} s (min {min(before[1:]):.2f}) |"
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reuse", action="store_true", help="measure dist/ as it is")
    parser.add_argument("--clean", action="store_true", help="build with an empty cache")
    parser.add_argument("--runs", type=int, default=3, help="timed runs after the first")
    parser.add_argument("--archives", default="gz:6,gz:9,xz:6,xz:9,zst:19,zst:22")
    parser.add_argument("--no-ask", action="store_true", help="skip the ask timings")
    args = parser.parse_args()

    print(f"load average at start: {load()} ({os.cpu_count()} CPUs)\n")
    if args.reuse:
        info = packaging_build.read_stamp()
        if not info or not APP.is_file():
            raise SystemExit("no build to reuse: run packaging/build.py first")
        print("## Build (reused; figures from dist/jackdaw.build.json)\n")
    else:
        info = run_build(args.clean)
        print(f"## Build ({'clean' if args.clean else 'PyInstaller cache warm'})\n")
        print(f"- packaging/build.py --no-archive: {info['total_seconds']} s in all")
    print(f"- PyInstaller: {info['pyinstaller_seconds']} s")
    folder = info["folder"]
    print(f"- dist/jackdaw: {mb(folder['total_bytes'])} in {folder['files']} files\n")
    print("| largest parts | size |\n|---|---|")
    for name, size in folder["largest"]:
        print(f"| `{name}` | {mb(size)} |")

    if args.archives:
        print("\n## Tarball\n\n| format | level | size | % of folder | packing time |")
        print("|---|---|---|---|---|")
        for item in args.archives.split(","):
            kind, _, level = item.partition(":")
            path, seconds = packaging_build.make_archive(
                info["version"], kind, int(level) if level else None
            )
            size = path.stat().st_size
            share = 100 * size / folder["total_bytes"]
            print(f"| tar.{kind} | {level} | {mb(size)} | {share:.0f}% | {seconds:.0f} s |")
            path.unlink()  # keep dist/ to what build.py makes

    print(f"\n## Start-up (load average now {load()})\n")
    print("| how | command | first run | later runs (median) |\n|---|---|---|---|")
    rows = startup("binary", APP, args.runs, not args.no_ask)
    if SOURCE.is_file():
        rows += startup("from source", SOURCE, args.runs, not args.no_ask)
    print("\n".join(rows))
    print(f"\nload average at end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
