"""Run ``pip install -v ...`` and show one line of progress instead of pages of compiler output.

The first install compiles llama.cpp from source (about 5 minutes on 2 cores); pip caches the
built wheel, so later installs take seconds. On failure the end of pip's log is shown.
Usage: python packaging/install_progress.py PIP-ARGS...
"""

from __future__ import annotations

import collections
import re
import subprocess
import sys
import time

STEP = re.compile(r"^\s*\[(\d+)/(\d+)\]")


def main(pip_args: list[str]) -> int:
    command = [sys.executable, "-m", "pip", "install", "-v", *pip_args]
    tail: collections.deque[str] = collections.deque(maxlen=60)
    started = time.monotonic()
    compiling = False
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line)
            step = STEP.match(line)
            if step:
                if not compiling:
                    print("Compiling llama.cpp (first install only; pip caches the result)...")
                    compiling = True
                done, total = int(step[1]), int(step[2])
                elapsed = time.monotonic() - started
                sys.stdout.write(f"\r  llama.cpp: {done}/{total} files  ({elapsed:.0f} s)   ")
                sys.stdout.flush()
            elif line.startswith(("Successfully installed", "Building wheel", "ERROR")):
                if compiling:
                    sys.stdout.write("\n")
                    compiling = False
                print(line.rstrip()[:200])
    if proc.returncode:
        print("\npip failed; the end of its log:\n" + "".join(tail), file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
