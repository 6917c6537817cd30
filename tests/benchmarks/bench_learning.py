"""Benchmark (a script, not a test): does Jackdaw learn from use, with the embedded model?

    .venv/bin/python tests/benchmarks/bench_learning.py [--k 8] [--skip-refine] [--json PATH]

A fixed workload on a fixed corpus, run with the embedded SmolLM2-135M (temperature 0, seed
42) and the MiniLM embedder, in a throw-away JACKDAW data folder:

1. **Corrections.** K questions about facts no model can know are asked (no tools offered),
   every answer is corrected, then the same K questions, K paraphrases and K *controls*
   (close questions about something else) are asked. Reported: the share of same questions
   and of paraphrases that now give the corrected answer (targets >= 0.95 and >= 0.8), the
   false hits on controls (a control answered from a correction), model calls and time.
2. **Repeated multi-step tasks** (read_file, list_folder, calculator over a small corpus).
   The first run of each task is *guided*: each call is a real call of the model (its real
   cost), but its output is replaced by the right action and, at the end, a right answer —
   the 135M model cannot do these tasks itself; the guided run stands in for a capable
   model (or the user's demonstration). Then each task is repeated as it was, and a variant
   with other values is asked, with the plain model. Reported: replay hit rate,
   model calls and wall time per task, first run vs repeat (target >= 50% fewer calls on
   repeats, same success), and success (every tool call ok, and the answer non-empty).
3. **Refinement** on the replay set those runs make (corrections pinned, task runs
   up-rated): the score of the version in force vs the candidate, adopted or not, and how
   long it took. The adopted score is never lower than the initial one, by construction.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agent_core.agent import Agent
from agent_core.config import LearningConfig
from agent_core.learning import Learning
from agent_core.learning.similarity import cosine
from agent_core.memory_db import open_memory_db
from agent_core.prompting import PromptBuilder
from agent_core.traces import Trace, TraceStore
from models.chat import ChatResult, GenerationSettings
from models.discovery import recorded_model_label
from tools.base import ToolRegistry
from tools.builtins.calculator import make_calculator
from tools.builtins.files import make_list_folder, make_read_file
from tools.executor import ToolExecutor
from tools.paths import PathGuard
from tools.policy import PermissionPolicy

# question, corrected answer, paraphrase, control (close, but about something else)
FACTS = [
    (
        "Who maintains the billing service?",
        "Dana Scully",
        "Who is the maintainer of the billing service?",
        "Who maintains the search service?",
    ),
    (
        "Which port does the billing service use?",
        "8443",
        "What port is the billing service on?",
        "Which port does the search service use?",
    ),
    (
        "What is the wifi network at the Lisbon office called?",
        "LIS-Guest",
        "What's the name of the Lisbon office wifi?",
        "What is the wifi network at the Porto office called?",
    ),
    (
        "When is the quarterly review?",
        "On March 14",
        "What date is the quarterly review?",
        "When is the annual review?",
    ),
    (
        "What is my dentist's phone number?",
        "555-0142",
        "What's the phone number of my dentist?",
        "What is my doctor's phone number?",
    ),
    (
        "What is the name of our boat?",
        "Albatross",
        "What is our boat called?",
        "What is the name of our dog?",
    ),
    (
        "Which database does the reporting job use?",
        "Postgres 15",
        "What database is used by the reporting job?",
        "Which database does the billing job use?",
    ),
    (
        "Where are the spare office keys kept?",
        "In the blue box in the kitchen",
        "Where do we keep the spare keys for the office?",
        "Where are the spare car keys kept?",
    ),
    (
        "What time does the gym open on Sundays?",
        "At 9 am",
        "When does the gym open on Sunday?",
        "What time does the library open on Sundays?",
    ),
    (
        "Who is the contact at the printing company?",
        "Marta Silva",
        "Who should I contact at the printing company?",
        "Who is the contact at the moving company?",
    ),
]

CORPUS = {
    "invoices.md": "# Invoices\n\nMarch: 120 EUR for hosting.\nApril: 35 EUR for the domain.\n",
    "invoices-q2.md": "# Invoices\n\nMay: 80 EUR for hosting.\nJune: 12 EUR for backups.\n",
    "todo.md": "Buy milk. Call Anna about the boat. Renew the passport.\n",
    "shopping.md": "Eggs, bread, coffee, apples.\n",
}


def answer(text: str) -> tuple[str, dict[str, Any]]:
    return ("", {"answer": text})


def tasks(corpus: Path) -> list[dict[str, Any]]:
    """Each: a task, its guided plan (the actions a capable model takes), and a variant."""
    inv = str(corpus / "invoices.md")
    return [
        {
            "task": "Read invoices.md and add up the two amounts",
            "plan": [
                ("read_file", {"path": inv}),
                ("calculator", {"expression": "120+35"}),
                answer("155 EUR in all."),
            ],
            "variant": "Read invoices-q2.md and add up the two amounts",
        },
        {
            "task": "What is 17 times 23 plus 4?",
            "plan": [("calculator", {"expression": "17*23+4"}), answer("395")],
            "variant": "What is 6 times 7 plus 1?",
        },
        {
            "task": "What does todo.md say I must do?",
            "plan": [
                ("read_file", {"path": str(corpus / "todo.md")}),
                answer("Buy milk, call Anna about the boat, renew the passport."),
            ],
            "variant": "What does shopping.md say I must do?",
        },
        {
            "task": "List my corpus folder and read todo.md from it",
            "plan": [
                ("list_folder", {"path": str(corpus)}),
                ("read_file", {"path": str(corpus / "todo.md")}),
                answer("todo.md says: buy milk, call Anna, renew the passport."),
            ],
            "variant": "List my corpus folder and read shopping.md from it",
        },
    ]


class GuidedBackend:
    """The real model for every call (its real cost), its output replaced by the next
    scripted action: the run a capable model would make (the 135M model does not finish
    these tasks alone). Repeats and variants then run with the plain model."""

    def __init__(self, real: Any, actions: list[tuple[str, dict[str, Any]]]) -> None:
        self.real = real
        self.actions = list(actions)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def chat(self, messages: Any, settings: Any, **kw: Any) -> ChatResult:
        result = self.real.chat(messages, settings, **kw)
        if not self.actions:
            return result
        tool, arguments = self.actions.pop(0)
        if tool:
            text = json.dumps({"action": "call_tool", "tool": tool, "arguments": arguments})
        else:
            text = json.dumps({"action": "final_answer", "answer": arguments["answer"]})
        return ChatResult(
            text,
            result.prompt_tokens,
            result.completion_tokens,
            "stop",
            result.duration_ms,
            result.first_token_ms,
        )


def log(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=8, help="corrected questions (max 10)")
    parser.add_argument("--skip-refine", action="store_true")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="jackdaw-bench-learning-"))
    os.environ["JACKDAW_HOME"] = str(home)

    from models.discovery import embedded_chat_model
    from models.llama_backend import LlamaCppBackend
    from models.llama_embedder import LlamaCppEmbedder
    from models.minilm_gguf import default_embedding_gguf

    corpus = home / "corpus"
    corpus.mkdir()
    for name, text in CORPUS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    smol = LlamaCppBackend(embedded_chat_model(), n_ctx=2048)
    embedder = LlamaCppEmbedder(default_embedding_gguf(home / "models"))
    conn = open_memory_db(home / "memory.db")
    traces = TraceStore(conn)
    guard = PathGuard([corpus])
    tools = ToolExecutor(
        ToolRegistry([make_read_file(guard), make_list_folder(guard), make_calculator()]),
        PermissionPolicy([corpus]),
    )
    no_tools = ToolExecutor(ToolRegistry([]))
    config = LearningConfig(eval_max_tokens=32)
    executor = [no_tools]
    learning = Learning(
        conn,
        traces,
        config,
        embedder=embedder,
        executor=lambda: executor[0],
        backend=lambda: smol,
        builder=lambda: PromptBuilder(count_tokens=smol.count_tokens),
        seed=42,
        max_steps=6,
    )
    settings = GenerationSettings(temperature=0.0, seed=42, max_tokens=32)

    def run(question: str, tool_executor: ToolExecutor, backend: Any = smol) -> tuple[Trace, float]:
        agent = Agent(
            backend,
            tool_executor,
            traces,
            PromptBuilder(count_tokens=smol.count_tokens),
            settings,
            max_steps=6,
            learning=learning.memory,
            system_prompt=learning.active_prompt,
        )
        started = time.perf_counter()
        trace = agent.run(question)
        return trace, time.perf_counter() - started

    figures: dict[str, Any] = {
        "model": recorded_model_label(smol.info.to_dict()),
        "cpu_threads": os.cpu_count(),
    }

    # 1. corrections -----------------------------------------------------------------------
    facts = FACTS[: max(1, min(args.k, len(FACTS)))]
    log(f"1. asking {len(facts)} questions, then correcting every answer ...")
    first_ok = 0
    for question, answer, _, _ in facts:
        trace, seconds = run(question, no_tools)
        first_ok += answer.lower() in (trace.final_answer or "").lower()
        learning.correct(trace.id, answer)
        log(f"   {seconds:5.1f} s  {question} -> {trace.final_answer!r}")

    def ask_all(which: int) -> dict[str, Any]:
        got, shortcut, in_prompt, calls, seconds, sims = 0, 0, 0, 0, [], []
        for fact in facts:
            question, answer = fact[which], fact[1]
            trace, took = run(question, no_tools)
            hit = answer.lower() in (trace.final_answer or "").lower()
            got += hit
            shortcut += "correction" in trace.extra
            in_prompt += "corrections" in trace.extra
            calls += trace.extra.get("model_calls", 0)
            seconds.append(took)
            vectors = learning.encoder.vectors([question, fact[0]])
            sims.append(cosine(vectors[0], vectors[1]))
            log(f"   {took:5.1f} s  {question} -> {trace.final_answer!r}")
        n = len(facts)
        return {
            "share_corrected": round(got / n, 3),
            "answered_from_correction": round(shortcut / n, 3),
            "fact_in_prompt": round(in_prompt / n, 3),
            "model_calls": calls,
            "mean_s": round(statistics.mean(seconds), 2),
            "similarity_mean": round(statistics.mean(sims), 3),
            "similarity_min": round(min(sims), 3),
            "similarity_max": round(max(sims), 3),
        }

    log("   the same questions again ...")
    same = ask_all(0)
    log("   paraphrases ...")
    para = ask_all(2)
    log("   controls (close questions about something else) ...")
    ctrl = ask_all(3)
    figures["corrections"] = {
        "k": len(facts),
        "right_before_correcting": first_ok,
        "same": same,
        "paraphrase": para,
        "controls": {
            "false_hits": ctrl["answered_from_correction"],
            "corrected_answer_given": ctrl["share_corrected"],
            "similarity_mean": ctrl["similarity_mean"],
            "similarity_max": ctrl["similarity_max"],
            "given_the_fact_in_the_prompt": ctrl["fact_in_prompt"],
        },
        "thresholds": {
            "similar": config.correction_similarity,
            "strong": config.correction_strong_similarity,
        },
    }

    # 2. repeated multi-step tasks -----------------------------------------------------------
    log("2. multi-step tasks: a guided first run, then the same task and a variant ...")
    executor[0] = tools
    rows = []
    for item in tasks(corpus):
        first, t_first = run(item["task"], tools, GuidedBackend(smol, item["plan"]))
        learning.rate(first.id, up=True)
        repeat, t_repeat = run(item["task"], tools)
        variant, t_variant = run(item["variant"], tools)
        row = {"task": item["task"]}
        for name, trace, took in (
            ("first", first, t_first),
            ("repeat", repeat, t_repeat),
            ("variant", variant, t_variant),
        ):
            calls = [s for s in trace.steps if s.tool_name]
            replay = trace.extra.get("replay") or {}
            row[name] = {
                "model_calls": trace.extra.get("model_calls", 0),
                "seconds": round(took, 2),
                "replayed": bool(trace.extra.get("replayed_from")),
                "replayed_steps": len(replay.get("replayed_steps", [])),
                "fell_back": (replay.get("fell_back") or {}).get("reason"),
                "tools_ok": bool(calls)
                and all((s.tool_outcome or {}).get("status") == "ok" for s in calls),
                "success": trace.status == "ok"
                and bool((trace.final_answer or "").strip())
                and bool(calls)
                and all((s.tool_outcome or {}).get("status") == "ok" for s in calls),
                "answer": (trace.final_answer or "")[:80],
            }
            asked = item["variant"] if name == "variant" else item["task"]
            log(
                f"   {name:<8}{took:6.1f} s  {row[name]['model_calls']} call(s)  "
                f"replayed {row[name]['replayed_steps']}  {asked}"
            )
        rows.append(row)

    def total(kind: str, key: str) -> float:
        return sum(r[kind][key] for r in rows)

    figures["tasks"] = {
        "rows": rows,
        "replay_hit_rate_repeat": round(sum(r["repeat"]["replayed"] for r in rows) / len(rows), 3),
        "replay_hit_rate_variant": round(
            sum(r["variant"]["replayed"] for r in rows) / len(rows), 3
        ),
        "model_calls_first": total("first", "model_calls"),
        "model_calls_repeat": total("repeat", "model_calls"),
        "model_calls_variant": total("variant", "model_calls"),
        "seconds_first": round(total("first", "seconds"), 1),
        "seconds_repeat": round(total("repeat", "seconds"), 1),
        "seconds_variant": round(total("variant", "seconds"), 1),
        "success_first": total("first", "success"),
        "success_repeat": total("repeat", "success"),
        "success_variant": total("variant", "success"),
    }
    t = figures["tasks"]
    t["fewer_model_calls_on_repeat"] = (
        round(1 - t["model_calls_repeat"] / t["model_calls_first"], 3)
        if t["model_calls_first"]
        else None
    )

    # 3. refinement --------------------------------------------------------------------------
    if not args.skip_refine:
        log("3. refinement on the replay set ...")
        result = learning.refine()
        figures["refinement"] = {
            "status": result.status,
            "reason": result.reason,
            "cases": result.cases,
            "initial_score": result.current_score,
            "candidate_score": result.candidate_score,
            "adopted_score": result.candidate_score if result.adopted else result.current_score,
            "seconds": result.duration_s,
            "lessons": [x.to_dict() for x in learning.lesson_list()],
        }

    smol.close()
    embedder.close()
    print_figures(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


def print_figures(f: dict[str, Any]) -> None:
    c = f["corrections"]
    out = sys.stdout.write
    out(f"\nmodel {f['model']}, {f['cpu_threads']} CPU threads\n")
    out(f"\ncorrections (K = {c['k']}; right before correcting: {c['right_before_correcting']})\n")
    for name in ("same", "paraphrase"):
        r = c[name]
        out(
            f"  {name:<11} corrected answer given {r['share_corrected']:.2f}  "
            f"(from the correction directly {r['answered_from_correction']:.2f}; "
            f"{r['model_calls']} model calls; {r['mean_s']:.2f} s each; "
            f"similarity to the corrected question mean {r['similarity_mean']:.3f}, "
            f"min {r['similarity_min']:.3f})\n"
        )
    ctl = c["controls"]
    out(
        f"  controls    false hits {ctl['false_hits']:.2f}, corrected answer given "
        f"{ctl['corrected_answer_given']:.2f}, the fact shown to the model "
        f"{ctl['given_the_fact_in_the_prompt']:.2f} (similarity mean "
        f"{ctl['similarity_mean']:.3f}, max {ctl['similarity_max']:.3f})\n"
    )
    t = f["tasks"]
    out(f"\nmulti-step tasks ({len(t['rows'])}): first (guided) vs repeat vs variant\n")
    out(
        f"  replay hit rate   repeat {t['replay_hit_rate_repeat']:.2f}, variant "
        f"{t['replay_hit_rate_variant']:.2f}\n"
    )
    out(
        f"  model calls       {t['model_calls_first']} -> {t['model_calls_repeat']} "
        f"(variant {t['model_calls_variant']}); fewer on repeat: "
        f"{t['fewer_model_calls_on_repeat']}\n"
    )
    out(
        f"  wall time         {t['seconds_first']} s -> {t['seconds_repeat']} s "
        f"(variant {t['seconds_variant']} s)\n"
    )
    out(
        f"  success           {t['success_first']} -> {t['success_repeat']} "
        f"(variant {t['success_variant']})\n"
    )
    for r in t["rows"]:
        out(
            f"    {r['task'][:46]:<46} calls {r['first']['model_calls']}->"
            f"{r['repeat']['model_calls']}/{r['variant']['model_calls']}  "
            f"fell back: {r['variant']['fell_back'] or '-'}\n"
        )
    if "refinement" in f:
        r = f["refinement"]
        out(
            f"\nrefinement: {r['status']} ({r['reason']}); {r['cases']} cases; initial "
            f"{r['initial_score']} -> adopted {r['adopted_score']}; {r['seconds']} s\n"
        )


if __name__ == "__main__":
    sys.exit(main())
