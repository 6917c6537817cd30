"""Choosing the default chat model: candidates side by side in one run (docs/benchmarks.md,
"The default chat model").

1. speed: generation tokens/s on 2 threads, rounds interleaved across the models so the
   machine's load hits each alike; best and median of the rounds, and time to first token;
2. answers: 20 simple questions (7 general knowledge, 7 answer-from-a-given-passage,
   6 arithmetic) as plain chat at temperature 0; each answer is printed with a keyword check
   ([ok]/[--]), which a person then reads (a keyword can hit in a wrong answer).

On a shared machine, compare the models by ``--threads 1`` and tokens per CPU-second (see
``speed``). Run (the installed default and tiny models; add others as NAME=PATH):
    .venv/bin/python tests/benchmarks/bench_default_model.py [--rounds 6] [--no-answers] \\
        [--only-extra] [qwen2.5-coder-1.5b=/path/to/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from llama_cpp import Llama

from models.discovery import default_chat_model, tiny_chat_model

PASSAGE1 = (
    "Mara's sourdough starter is called Bubbles. She feeds it every morning at 7 with "
    "50 g of rye flour and 50 g of water, and keeps it in the fridge on weekends."
)
PASSAGE2 = (
    "The team offsite is on 14 March in Leeds. The train leaves King's Cross at 08:05; "
    "Priya books the hotel, and Tom brings the projector."
)
PASSAGE3 = (
    "Invoice 2291 from Hartley Plumbing is for 340 euros, due on 30 April. It covers "
    "the boiler repair done on 2 April."
)
QUESTIONS = [
    ("general", "What is the capital of France?", ["paris"]),
    ("general", "Who wrote the play Romeo and Juliet?", ["shakespeare"]),
    ("general", "What is the chemical symbol for gold?", ["au"]),
    ("general", "How many days are there in a leap year?", ["366"]),
    ("general", "What planet is known as the Red Planet?", ["mars"]),
    ("general", "What is the largest ocean on Earth?", ["pacific"]),
    ("general", "In which country is the city of Kyoto?", ["japan"]),
    ("passage", f"{PASSAGE1}\n\nWhat is the name of Mara's sourdough starter?", ["bubbles"]),
    ("passage", f"{PASSAGE1}\n\nHow much rye flour does Mara feed her starter?", ["50"]),
    ("passage", f"{PASSAGE2}\n\nIn which city is the team offsite?", ["leeds"]),
    ("passage", f"{PASSAGE2}\n\nWho brings the projector?", ["tom"]),
    ("passage", f"{PASSAGE2}\n\nWhat time does the train leave?", ["08:05", "8:05"]),
    ("passage", f"{PASSAGE3}\n\nHow much is invoice 2291 for?", ["340"]),
    ("passage", f"{PASSAGE3}\n\nWhen is the invoice due?", ["30 april", "april 30"]),
    ("arith", "What is 17 times 23? Answer with the number.", ["391"]),
    ("arith", "What is 144 divided by 12?", ["12"]),
    ("arith", "What is 250 plus 475?", ["725"]),
    ("arith", "I had 12 apples and gave away 5. How many apples do I have left?", ["7"]),
    ("arith", "What is 15% of 200?", ["30"]),
    ("arith", "What is 9 squared?", ["81"]),
]
SPEED_PROMPT = [{"role": "user", "content": "Explain in a few sentences how a bicycle works."}]


def load(path: str, threads: int = 2) -> Llama:
    return Llama(
        model_path=path,
        n_ctx=2048,
        n_threads=threads,
        n_threads_batch=threads,
        seed=42,
        verbose=False,
    )


def speed(models: dict[str, Llama], rounds: int, threads: int) -> None:
    """Wall-clock tok/s depends on what else the machine runs. Tokens per CPU-second of this
    process depend much less on it when it runs ONE thread (``--threads 1``): that is the speed
    of one otherwise idle core. With 2 threads ggml's threads spin while the other one is
    descheduled, so on a busy machine the CPU-time figure says little."""
    gen: dict[str, list[float]] = {n: [] for n in models}
    cpu: dict[str, list[float]] = {n: [] for n in models}
    first: dict[str, list[float]] = {n: [] for n in models}
    for r in range(rounds):
        for name, llm in models.items():
            llm.reset()
            t0 = time.perf_counter()
            t_first, c_first, count = 0.0, 0.0, 0
            for chunk in llm.create_chat_completion(
                SPEED_PROMPT, temperature=0, max_tokens=64, seed=42, stream=True
            ):
                if chunk["choices"][0]["delta"].get("content") is not None:
                    if not t_first:
                        t_first, c_first = time.perf_counter(), time.process_time()
                    count += 1
            end, c_end = time.perf_counter(), time.process_time()
            done = count > 1
            gen[name].append((count - 1) / (end - t_first) if done else 0.0)
            cpu[name].append((count - 1) / (c_end - c_first) if done else 0.0)
            first[name].append(t_first - t0 if done else float("nan"))
        print(
            f"round {r + 1}: "
            + ", ".join(f"{n} {gen[n][-1]:.1f} ({cpu[n][-1]:.1f})" for n in models),
            flush=True,
        )
    print(
        f"\n{threads} thread(s)\n| model | tok/s wall, best | median | tok per CPU-s, median "
        "| first token, best (s) |"
    )
    print("|---|---|---|---|---|")
    for name in models:
        print(
            f"| {name} | {max(gen[name]):.1f} | {statistics.median(gen[name]):.1f} "
            f"| {statistics.median(cpu[name]):.1f} | {min(first[name]):.2f} |"
        )


def answers(name: str, llm: Llama) -> None:
    score = 0
    lines = []
    for category, question, keys in QUESTIONS:
        reply = llm.create_chat_completion(
            [{"role": "user", "content": question}], temperature=0, max_tokens=96, seed=42
        )
        text = reply["choices"][0]["message"]["content"].strip()
        ok = any(k in text.lower() for k in keys)
        score += ok
        lines.append(
            f"  [{'ok' if ok else '--'}] {category:7s} {question[-60:]!r}\n      -> {text!r}"
        )
    print(f"\n== {name}: keyword check {score}/{len(QUESTIONS)}")
    print("\n".join(lines), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--no-answers", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only-extra", action="store_true", help="skip the installed models")
    parser.add_argument("extra", nargs="*", help="NAME=PATH of other GGUFs to compare")
    args = parser.parse_args()
    paths = {}
    if not args.only_extra:
        paths["smollm2-135m"] = str(tiny_chat_model())
        paths["qwen2.5-coder-0.5b (default)"] = str(default_chat_model())
    paths.update(dict(item.split("=", 1) for item in args.extra))
    models = {name: load(path, args.threads) for name, path in paths.items()}
    if args.rounds:
        speed(models, args.rounds, args.threads)
    if not args.no_answers:
        for name, llm in models.items():
            answers(name, llm)
    for llm in models.values():
        llm.close()


if __name__ == "__main__":
    main()
