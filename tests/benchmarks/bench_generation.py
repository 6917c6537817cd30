"""Generation benchmarks for the foundation (figures go to docs/benchmarks.md).

1. tokens/s through Jackdaw's ask machinery (Agent + LlamaCppBackend, schema-constrained
   JSON) vs raw llama-cpp-python (create_chat_completion with the same messages, schema,
   seed and sampling settings), side by side, alternating, on the embedded model.
2. Time to first token of a session's second turn vs its first, with a long system prompt
   (the llama.cpp prefix cache is kept warm by the prompt order).
3. Model load time and peak RSS with the embedded model (in a fresh subprocess).

Run: .venv/bin/python tests/benchmarks/bench_generation.py [--rounds 5]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agent_core.actions import action_schema
from agent_core.agent import Agent
from agent_core.memory_db import open_memory_db
from agent_core.prompting import PromptBuilder, Turn
from agent_core.traces import TraceStore
from models.chat import GenerationSettings
from models.discovery import embedded_chat_model
from models.llama_backend import LlamaCppBackend, default_threads
from tools.base import ToolRegistry
from tools.executor import ToolExecutor

QUESTION = "Explain in detail how jackdaws build their nests and raise their young."
SETTINGS = GenerationSettings(temperature=0.7, seed=11, max_tokens=200)


def generation_ratio(rounds: int) -> None:
    backend = LlamaCppBackend(embedded_chat_model(), n_ctx=4096)
    store = TraceStore(open_memory_db(Path(tempfile.mkdtemp()) / "memory.db"))
    agent = Agent(
        backend,
        ToolExecutor(ToolRegistry()),
        store,
        PromptBuilder(count_tokens=backend.count_tokens),
        SETTINGS,
    )
    messages = agent.builder.build(QUESTION).messages
    schema = action_schema([])
    raw = backend._llama  # the very same loaded model, so only the machinery differs

    def jackdaw_once() -> tuple[int, float]:
        step = agent.run(QUESTION).steps[-1]
        return step.completion_tokens, (step.duration_ms - step.first_token_ms) / 1000

    def raw_once() -> tuple[int, float]:
        first = 0.0
        n = 0
        for _chunk in raw.create_chat_completion(
            messages=messages,
            response_format={"type": "json_object", "schema": schema},
            temperature=SETTINGS.temperature,
            top_p=SETTINGS.top_p,
            top_k=SETTINGS.top_k,
            repeat_penalty=SETTINGS.repeat_penalty,
            seed=SETTINGS.seed,
            max_tokens=SETTINGS.max_tokens,
            stream=True,
        ):
            if not first:
                first = time.perf_counter()
            n += 1
        return n - 1, time.perf_counter() - first  # first chunk is the role delta

    jackdaw_rates, raw_rates = [], []
    jackdaw_once(), raw_once()  # warm-up
    for _ in range(rounds):
        n, s = jackdaw_once()
        jackdaw_rates.append(n / s)
        n, s = raw_once()
        raw_rates.append(n / s)
    j, r = statistics.median(jackdaw_rates), statistics.median(raw_rates)
    print(f"generation tokens/s (median of {rounds}, threads={default_threads()}):")
    print(f"  jackdaw ask machinery: {j:6.1f}   raw llama-cpp-python: {r:6.1f}   ratio {j / r:.3f}")
    backend.close()


def second_turn_ratio() -> None:
    backend = LlamaCppBackend(embedded_chat_model(), n_ctx=4096)
    store = TraceStore(open_memory_db(Path(tempfile.mkdtemp()) / "memory.db"))
    facts = "\n".join(
        f"- Fact {i}: the jackdaw colony at site {i} has {i * 7 % 50 + 3} nests." for i in range(95)
    )
    system = "You are Jackdaw, a careful assistant. Reference notes follow.\n" + facts
    builder = PromptBuilder(count_tokens=backend.count_tokens, system_text=system,
                            system_budget=4000)  # fmt: skip
    agent = Agent(backend, ToolExecutor(ToolRegistry()), store, builder,
                  GenerationSettings(temperature=0, seed=1, max_tokens=30))  # fmt: skip
    system_tokens = backend.count_tokens(system)
    first = agent.run("How many nests are at site 3?")
    second = agent.run("And at site 4?", history=[Turn(first.question, first.final_answer or "")])
    t1, t2 = first.steps[0].first_token_ms, second.steps[0].first_token_ms
    print(f"time to first token, system prompt {system_tokens} tokens:")
    print(f"  first turn {t1:7.0f} ms   second turn {t2:7.0f} ms   ratio {t2 / t1:.3f}")
    backend.close()


LOAD_PROBE = """
import json, resource, time
t0 = time.perf_counter()
from models.llama_backend import LlamaCppBackend
from models.discovery import embedded_chat_model
t1 = time.perf_counter()
b = LlamaCppBackend(embedded_chat_model(), n_ctx=4096)
t2 = time.perf_counter()
from models.chat import GenerationSettings
b.chat([{"role": "user", "content": "Hi"}], GenerationSettings(max_tokens=8))
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "peak_rss_mb": rss}))
"""


def load_and_memory() -> None:
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", LOAD_PROBE], capture_output=True, text=True,
                         cwd=root, env={**os.environ}, check=True)  # fmt: skip
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    print("embedded model (SmolLM2-135M Q4_1, n_ctx 4096):")
    print(
        f"  import {figures['import_s']:.2f} s   load {figures['load_s']:.2f} s   "
        f"peak RSS after a first answer {figures['peak_rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    generation_ratio(args.rounds)
    second_turn_ratio()
    load_and_memory()
