"""Errors of the knowledge base that a person can act on."""

from __future__ import annotations

from models.errors import JackdawError


class KnowledgeError(JackdawError):
    """Base for knowledge-base errors meant for the user."""


class FolderNotFoundError(KnowledgeError):
    hint = "Check the path (is the drive plugged in?), then try again."


class NotAFolderError(KnowledgeError):
    hint = "Give a folder, not a file: Jackdaw watches folders."


class NotWatchedError(KnowledgeError):
    hint = "Add its folder first: jackdaw folders add PATH (see jackdaw folders list)."


class IndexModelMismatchError(KnowledgeError):
    hint = (
        "The embedding model changed since the index was built. Rebuild it "
        "(jackdaw index --rebuild); the old index keeps serving keyword search meanwhile."
    )


class IndexBusyError(KnowledgeError):
    hint = "Another Jackdaw process is indexing; wait for it to finish and try again."
