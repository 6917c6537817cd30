from __future__ import annotations

from dataclasses import dataclass

from agent_core.retrieval import KnowledgeRetriever


@dataclass
class FakeHit:
    source: str
    text: str
    vector_score: float | None
    path: str = "p"
    page: int | None = None
    heading: str = ""
    chunk_id: int = 1
    score: float = 0.1


class FakeKB:
    def __init__(self, hits: list[FakeHit]) -> None:
        self.hits = hits
        self.queries: list[tuple[str, int]] = []

    def search(self, query: str, k: int = 10) -> list[FakeHit]:
        self.queries.append((query, k))
        return self.hits[:k]


def test_hits_become_citable_passages_and_weak_ones_are_dropped() -> None:
    kb = FakeKB([FakeHit("a.md (Intro)", "alpha", 0.8), FakeHit("b.md", "beta", 0.1),
                 FakeHit("c.pdf (page 2)", "gamma", None)])  # fmt: skip
    passages = KnowledgeRetriever(lambda: kb, k=3).retrieve("q")
    assert [(p.source, p.text) for p in passages] == [("a.md (Intro)", "alpha")]
    assert passages[0].meta["path"] == "p" and kb.queries == [("q", 3)]
    assert passages[0].meta["similarity"] == 0.8  # what the agent's close-match rule reads


def test_no_knowledge_base_means_no_passages_and_no_search() -> None:
    assert KnowledgeRetriever(lambda: None).retrieve("q") == []
