"""The knowledge base: watched folders kept fresh in SQLite (sqlite-vec + FTS5), hybrid
search with sources. Layering: imports ``models.embedding`` and ``models.errors`` only."""

from knowledge.base import KnowledgeBase, KnowledgeSettings, open_knowledge_base
from knowledge.search import SearchSettings
from knowledge.types import (
    Document,
    FileProblem,
    FolderInfo,
    Hit,
    IndexState,
    IngestResult,
    Progress,
    RebuildPlan,
    SearchFilters,
    Status,
)

__all__ = [
    "Document",
    "FileProblem",
    "FolderInfo",
    "Hit",
    "IndexState",
    "IngestResult",
    "KnowledgeBase",
    "KnowledgeSettings",
    "Progress",
    "RebuildPlan",
    "SearchFilters",
    "SearchSettings",
    "Status",
    "open_knowledge_base",
]
