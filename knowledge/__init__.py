"""The knowledge base: watched folders kept fresh in SQLite (sqlite-vec + FTS5), hybrid
search with sources. Layering: imports ``models.embedding`` and ``models.errors`` only.

Names are imported on first use, so a light module (``knowledge.boundary``, which the tools
share) can be imported without loading SQLite extensions and numpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_WHERE = {
    "KnowledgeBase": "knowledge.base",
    "KnowledgeSettings": "knowledge.base",
    "open_knowledge_base": "knowledge.base",
    "SearchSettings": "knowledge.search",
    **{
        name: "knowledge.types"
        for name in (
            "Document",
            "FileProblem",
            "FolderInfo",
            "Hit",
            "IndexState",
            "IngestResult",
            "Progress",
            "RebuildPlan",
            "SearchFilters",
            "Status",
        )
    },
}

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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'knowledge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
