"""The retrieval-quality set, used by test_kb_real.py and bench_knowledge_quality.py.

* 52 short notes (10 of them as PDF) and 44 questions phrased differently from the notes;
* 20 keyword queries: exact names and codes, 8 of them invoice numbers among
  near-identical invoices (where embeddings blur);
* a crowd: ``FILLERS`` look-alike notes of random everyday words, 12 of which carry a
  reference code, and the 12 codes as queries (a needle BM25 finds and vectors cannot).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from knowledge import KnowledgeBase, SearchFilters
from tests.knowledge.pdfgen import write_pdf

DATA = Path(__file__).resolve().parents[1] / "data" / "knowledge" / "quality"
FILLERS = 200
CODES = 12
_FILLER_TEXT = """
garden kettle invoice river window budget meeting travel engine cable server folder recipe
flour oven planet winter summer battery network printer ticket museum market doctor lesson
guitar piano bridge harbour island forest mountain coffee letter report project release
version backup storage password account payment contract holiday
"""
_FILLER_WORDS = _FILLER_TEXT.split()


@dataclass(frozen=True)
class Question:
    text: str
    path: str  # the note that answers it


def build_corpus(folder: Path) -> dict[str, Path]:
    """Write every note into ``folder``; return note id -> file path."""
    notes = json.loads((DATA / "notes.json").read_text(encoding="utf-8"))
    paths: dict[str, Path] = {}
    for note in notes:
        path = folder / f"{note['id']}.{note['format']}"
        if note["format"] == "md":
            path.write_text(f"# {note['title']}\n\n{note['text']}\n", encoding="utf-8")
        elif note["format"] == "txt":
            path.write_text(f"{note['title']}\n\n{note['text']}\n", encoding="utf-8")
        else:
            write_pdf(path, [f"{note['title']}\n{note['text']}"])
        paths[note["id"]] = path
    rng = random.Random(7)
    for i in range(FILLERS):
        words = " ".join(rng.choice(_FILLER_WORDS) for _ in range(14))
        code = f" Reference zx{rng.randint(10000, 99999)}." if i < CODES else ""
        path = folder / f"filler-{i:03}.txt"
        path.write_text(f"Note {i}: {words}.{code}\n", encoding="utf-8")
        paths[f"filler-{i:03}"] = path
    return paths


def crowd_questions(paths: dict[str, Path]) -> list[Question]:
    """The reference codes of the crowd, each asked on its own."""
    out = []
    for i in range(CODES):
        path = paths[f"filler-{i:03}"]
        code = path.read_text(encoding="utf-8").rsplit("Reference ", 1)[1].strip(" .\n")
        out.append(Question(code, str(path)))
    return out


def questions(paths: dict[str, Path], name: str = "questions.json") -> list[Question]:
    data = json.loads((DATA / name).read_text(encoding="utf-8"))
    return [Question(q["q"], str(paths[q["note"]])) for q in data]


def keyword_questions(paths: dict[str, Path]) -> list[Question]:
    return questions(paths, "keyword_questions.json")


def _doc_ranking(kb: KnowledgeBase, chunk_ids: list[int]) -> list[str]:
    if not chunk_ids:
        return []
    marks = ",".join("?" * len(chunk_ids))
    rows = dict(
        kb.store.conn.execute(
            "SELECT c.id, d.path FROM chunks c JOIN documents d ON d.id = c.document_id "
            f"WHERE c.id IN ({marks})",
            chunk_ids,
        ).fetchall()
    )
    ordered = [rows[c] for c in chunk_ids if c in rows]
    return list(dict.fromkeys(ordered))


def evaluate(kb: KnowledgeBase, qs: list[Question], depth: int = 10) -> dict[str, dict[str, float]]:
    """recall@1 and recall@5 (by document) for BM25 only, vector only and hybrid."""
    searcher = kb.searcher
    rankings: dict[str, list[list[str]]] = {"bm25": [], "vector": [], "hybrid": []}
    for q in qs:
        bm25 = searcher.bm25_ranking(q.text, depth, SearchFilters())
        vector = searcher.vector_ranking(q.text, depth, SearchFilters())
        hybrid = kb.search(q.text, k=depth)
        rankings["bm25"].append(_doc_ranking(kb, [r.chunk_id for r in bm25]))
        rankings["vector"].append(_doc_ranking(kb, [r.chunk_id for r in vector]))
        rankings["hybrid"].append(list(dict.fromkeys(h.path for h in hybrid)))
    report: dict[str, dict[str, float]] = {}
    for mode, ranked in rankings.items():
        report[mode] = {
            f"recall@{k}": round(
                sum(q.path in r[:k] for q, r in zip(qs, ranked, strict=True)) / len(qs), 3
            )
            for k in (1, 5)
        }
    return report
