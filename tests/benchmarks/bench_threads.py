"""CPU threads and OpenMP wait policy: speed of the default model, alone and beside a busy program.

A person's computer is never idle: a browser or a build holds a core now and then. llama.cpp's
threads meet at a barrier after every operation; spinning there while another program holds a
core wastes whole time slices. For each thread count and wait policy this measures prompt
reading (300 tokens) and generation (20 tokens) in a fresh process (the policy is read when
the OpenMP runtime loads), on an idle machine and with one busy process beside it.

    .venv/bin/python tests/benchmarks/bench_threads.py [--model X.gguf] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, sys, time
import llama_cpp
path, threads = sys.argv[1], int(sys.argv[2])
llama = llama_cpp.Llama(model_path=path, n_ctx=1024, n_threads=threads, verbose=False)
tokens = llama.tokenize(("The quick brown fox jumps over the lazy dog. " * 40).encode())[:300]
started = time.perf_counter()
llama.eval(tokens)
prefill = len(tokens) / (time.perf_counter() - started)
started = time.perf_counter()
for token in tokens[:20]:
    llama.eval([token])
decode = 20 / (time.perf_counter() - started)
print(json.dumps({"prefill": prefill, "decode": decode}))
"""


def measure(model: str, threads: int, policy: str) -> dict[str, float]:
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, model, str(threads)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", help="a GGUF (default: the embedded default model)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from models.discovery import default_chat_model

    model = args.model or str(default_chat_model())
    cores = os.cpu_count() or 1
    print(f"{cores} CPUs; model {Path(model).name}; median of {args.rounds} rounds")
    print(f"{'load':<14}{'policy':<9}{'threads':>7}{'prefill tok/s':>15}{'decode tok/s':>14}")
    for load in ("idle", "one busy"):
        busy = None
        if load == "one busy":
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            for policy in ("ACTIVE", "PASSIVE"):
                for threads in sorted({1, cores}):
                    runs = [measure(model, threads, policy) for _ in range(args.rounds)]
                    prefill = statistics.median(r["prefill"] for r in runs)
                    decode = statistics.median(r["decode"] for r in runs)
                    print(f"{load:<14}{policy:<9}{threads:>7}{prefill:>15.1f}{decode:>14.1f}")
        finally:
            if busy is not None:
                busy.kill()


if __name__ == "__main__":
    main()
