"""The ceiling of learning from feedback with the real default model: what the paraphrases of
the learning curve's needs over the notes would score if the learning loop always found the
right learnt answer.

``bench_learning_curve.py`` measures what the loop reaches; this measures how far it could
go. For each need over the notes (the ``notes`` and ``tricky`` groups) it

1. asks the need's question with the learning loop off; the *learnt answer* is the user's
   correction when the model is wrong, else the model's own answer (which the user rates up);
2. asks the paraphrase with the learning loop off (the curve's "before");
3. asks the paraphrase with exactly one fact in its prompt, the need's own learnt answer, as
   the learning loop shows one (an *oracle* recall: perfect reach, no neighbour's fact);

and reports the share right in 2 and 3, and the share of learnt answers that answer the
paraphrase when said as they are (a learnt answer can be right for its question and not for
the paraphrase: "No, Sam does not take a packed lunch" for "What does Sam eat for lunch?").
3 is the most any recall that shows learnt answers to the model can give; above it only
answers said without the model, which need the app to know that two questions ask the same.

With ``--neighbours K`` it also asks each paraphrase

4. shown only the K learnt answers of *other* needs nearest to it (at least 0.5 similar and
   asking for the same kind of thing, as the loop filters them): what a recall that reaches
   too far does to a question whose own answer it does not have (a new question about a note
   where neighbouring needs were learnt);
5. shown its own learnt answer among those K, nearest first: a recall that reaches the right
   answer along with its neighbours.

    .venv/bin/python tests/benchmarks/bench_learning_ceiling.py --show --json ceiling.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from agent_core.agent import Recall  # noqa: E402
from agent_core.learning.memory import asks_alike  # noqa: E402
from agent_core.learning.similarity import QuestionEncoder, cosine  # noqa: E402
from agent_core.prompting import Passage, Turn, VerifiedFact  # noqa: E402
from agent_core.traces import Trace  # noqa: E402
from tests.benchmarks.bench_answers import ask  # noqa: E402
from tests.benchmarks.bench_learning_curve import (  # noqa: E402
    NEEDS,
    TRICKY,
    Asked,
    Need,
    asked,
    build_services,
    log,
    show,
)
from tools.executor import ToolExecutor  # noqa: E402


class OracleRecall:
    """The learning loop as it would be if it always recalled the right learnt answer: the
    facts set for the next question, and nothing else (no plans, no direct answers)."""

    def __init__(self) -> None:
        self.facts: list[VerifiedFact] = []

    def recall(
        self,
        question: str,
        *,
        history: Sequence[Turn],
        executor: ToolExecutor,
        passages: Sequence[Passage] = (),
    ) -> Recall:
        return Recall(facts=list(self.facts))

    def after_run(self, trace: Trace, recall: Recall) -> None:
        pass


NEIGHBOUR_FLOOR = 0.5  # the lowest similarity at which the loop shows a learnt answer


def run(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    needs = NEEDS[: args.limit or None] + TRICKY[: args.limit or None]
    services, _ = build_services(home, args)
    rows: list[Asked] = []
    oracle = OracleRecall()
    started = time.perf_counter()
    try:
        services.knowledge.index()
        agent = services.agent
        agent.learning = None

        def put(phase: str, kind: str, need: Need, question: str) -> Asked:
            trace, _, total = ask(agent, question, [])
            row = asked(phase, kind, need.group, question, need.check, trace, total)
            rows.append(row)
            if args.show:
                show(row)
            return row

        learnt: list[tuple[Need, VerifiedFact]] = []
        earlier = taught(args.learnt_from) if args.learnt_from else {}
        log(f"1. the {len(needs)} questions, learning off")
        for need in needs:
            if need.question in earlier:  # asked in an earlier run: its answer and check
                row = earlier[need.question]
                rows.append(row)
            else:
                row = put("teach", "original", need, need.question)
            right = row.correct
            answer = row.answer if right else need.correction
            kind = "confirmed" if right else "correction"
            learnt.append((need, VerifiedFact(need.question, answer, 0, time.time(), 0.9, kind)))
            row.feedback = "up-rated" if right else "corrected"
        log("2. the paraphrases, learning off")
        for need in needs:
            if need.paraphrase in earlier:
                rows.append(earlier[need.paraphrase])
            else:
                put("before", "paraphrase", need, need.paraphrase)
        log("3. the paraphrases, each shown its own learnt answer")
        agent.learning = oracle
        for need, fact in learnt:
            oracle.facts = [fact]
            put("oracle", "paraphrase", need, need.paraphrase)
        if args.neighbours:
            encoder = services.learning.memory.encoder
            for phase, own in (("neighbours", False), ("own+neighbours", True)):
                log(f"{4 + own}. the paraphrases, each shown {phase.replace('+', ' and ')}")
                for need, fact in learnt:
                    oracle.facts = nearest(encoder, need, fact, learnt, args.neighbours, own)
                    put(phase, "paraphrase", need, need.paraphrase)
        said = [need.check(fact.answer) for need, fact in learnt]
    finally:
        services.close()
    return figures(rows, learnt, said, time.perf_counter() - started)


def nearest(
    encoder: QuestionEncoder,
    need: Need,
    fact: VerifiedFact,
    learnt: list[tuple[Need, VerifiedFact]],
    k: int,
    own: bool,
) -> list[VerifiedFact]:
    """The ``k`` learnt answers of other needs nearest to ``need``'s paraphrase (at least
    ``NEIGHBOUR_FLOOR`` similar, asking for the same kind of thing), and its own ``fact``
    when ``own``; nearest first, each with its similarity."""
    vector = encoder.vector(need.paraphrase)

    def similar(f: VerifiedFact) -> VerifiedFact:
        return dataclasses.replace(
            f, similarity=round(cosine(vector, encoder.vector(f.question)), 4)
        )

    others = [
        similar(f) for n, f in learnt if n is not need and asks_alike(need.paraphrase, f.question)
    ]
    picked = sorted(
        (f for f in others if f.similarity >= NEIGHBOUR_FLOOR), key=lambda f: -f.similarity
    )[:k]
    if own:
        picked = sorted([*picked, similar(fact)], key=lambda f: -f.similarity)
    return picked


def taught(path: str) -> dict[str, Asked]:
    """The questions and paraphrases asked with the learning loop off in an earlier run
    (``--json`` of this script), by question: a trial of how facts are shown need not ask
    them again (answers of the same code vary a little between runs; compare within one)."""
    rows = json.loads(Path(path).read_text(encoding="utf-8"))["rows"]
    return {r["question"]: Asked(**r) for r in rows if r["phase"] in ("teach", "before")}


def figures(
    rows: list[Asked], learnt: list[tuple[Need, VerifiedFact]], said: list[bool], seconds: float
) -> dict[str, Any]:
    def share(phase: str, kind: str | None = None) -> float:
        picked = [
            r
            for r, (_, fact) in zip([r for r in rows if r.phase == phase], learnt, strict=True)
            if kind is None or fact.kind == kind
        ]
        return round(sum(r.correct for r in picked) / len(picked), 3) if picked else 0.0

    n = len(learnt)
    corrected = sum(f.kind == "correction" for _, f in learnt)
    return {
        "needs": n,
        "corrected": corrected,
        "first_right": share("teach"),
        "before": share("before"),
        "oracle": share("oracle"),
        "oracle_points": round(100 * (share("oracle") - share("before")), 1),
        "before_corrected": share("before", "correction"),
        "oracle_corrected": share("oracle", "correction"),
        "before_right_first": share("before", "confirmed"),
        "oracle_right_first": share("oracle", "confirmed"),
        "learnt_answers_answer_paraphrase": round(sum(said) / n, 3) if n else 0.0,
        **{
            f"{phase}_share": share(phase)
            for phase in ("neighbours", "own+neighbours")
            if any(r.phase == phase for r in rows)
        },
        "leaks_oracle": sum(1 for r in rows if r.phase == "oracle" and r.leak),
        "model_calls_oracle": sum(r.model_calls for r in rows if r.phase == "oracle"),
        "tool_calls_oracle": sum(len(r.tools) for r in rows if r.phase == "oracle"),
        "seconds": round(seconds, 1),
        "wrong_with_oracle": [
            {"question": r.question, "answer": r.answer, "fact": f.answer, "kind": f.kind}
            for r, (_, f) in zip([r for r in rows if r.phase == "oracle"], learnt, strict=True)
            if not r.correct
        ],
        "rows": [r.__dict__ for r in rows],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a GGUF to use instead of the default model")
    parser.add_argument("--limit", type=int, default=0, help="only the first N of each group")
    parser.add_argument("--threads", type=int, default=0, help="model threads (0: default)")
    parser.add_argument("--cache-dir", help="keep the model's saved prompt states here")
    parser.add_argument(
        "--learnt-from",
        metavar="FILE",
        help="take the answers with the learning loop off from an earlier run's --json",
    )
    parser.add_argument(
        "--neighbours",
        type=int,
        default=0,
        metavar="K",
        help="also show each paraphrase the K nearest other learnt answers, without and "
        "with its own",
    )
    parser.add_argument("--show", action="store_true", help="print every answer")
    parser.add_argument("--json", metavar="FILE", help="write all answers and figures here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="jackdaw-bench-learning-ceiling-") as tmp:
        result = run(args, Path(tmp))
    print(f"needs over the notes: {result['needs']} ({result['corrected']} corrected)")
    print(f"  questions right first:              {result['first_right']:.0%}")
    print(f"  paraphrases, learning off:          {result['before']:.0%}")
    print(
        f"  paraphrases, own learnt answer shown: {result['oracle']:.0%} "
        f"({result['oracle_points']:+.0f} points)"
    )
    print(
        f"    corrected needs {result['before_corrected']:.0%} -> "
        f"{result['oracle_corrected']:.0%}; right first {result['before_right_first']:.0%} -> "
        f"{result['oracle_right_first']:.0%}"
    )
    for phase in ("neighbours", "own+neighbours"):
        if f"{phase}_share" in result:
            label = f"paraphrases, {phase.replace('+', ' and ')} shown:"
            print(f"  {label:37} {result[f'{phase}_share']:.0%}")
    said = result["learnt_answers_answer_paraphrase"]
    print(f"  learnt answers that answer the paraphrase as said: {said:.0%}")
    print(
        f"  leaks {result['leaks_oracle']}, model calls {result['model_calls_oracle']}, "
        f"tool calls {result['tool_calls_oracle']}, {result['seconds']} s"
    )
    for wrong in result["wrong_with_oracle"]:
        print(f"  wrong with its fact: {wrong['question']!r} -> {wrong['answer'][:100]!r}")
        print(f"      ({wrong['kind']}: {wrong['fact'][:80]!r})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
