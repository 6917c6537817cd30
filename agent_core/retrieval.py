"""Retrieval of passages from the knowledge base into the prompt (the agent's Retriever)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from agent_core.prompting import Passage


class Searchable(Protocol):
    def search(self, query: str, k: int = 10) -> list[Any]: ...


class KnowledgeRetriever:
    """The best hits of the hybrid search for a question, as citable passages.

    ``knowledge`` returns the knowledge base, or None when no folder is watched (then nothing
    is loaded at all). A hit found only by BM25 with a weak vector score is left out: on this
    embedder the vector side is the reliable one, and junk passages mislead small models.
    """

    def __init__(
        self,
        knowledge: Callable[[], Searchable | None],
        k: int = 4,
        min_similarity: float = 0.3,
    ) -> None:
        self.knowledge = knowledge
        self.k = k
        self.min_similarity = min_similarity

    def retrieve(self, question: str) -> list[Passage]:
        kb = self.knowledge()
        if kb is None:
            return []
        passages = []
        for hit in kb.search(question, k=self.k):
            if (hit.vector_score or 0.0) < self.min_similarity:
                continue
            passages.append(
                Passage(
                    source=hit.source,
                    text=hit.text,
                    meta={
                        "path": hit.path,
                        "page": hit.page,
                        "heading": hit.heading,
                        "chunk_id": hit.chunk_id,
                        "score": hit.score,
                        "similarity": hit.vector_score,
                    },
                )
            )
        return passages
