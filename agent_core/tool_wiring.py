"""How the composition root builds the tool executor from config.

(``tools/`` never imports ``agent_core`` or ``knowledge``: the mapping from config, and the
bridge from ``read_file`` to the knowledge parsers, live here.)
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from agent_core.config import Config, Paths
from tools.base import ToolError
from tools.builtins.files import TextExtractor
from tools.builtins.knowledge import SearchFn
from tools.confirm import ConfirmationHandler
from tools.executor import ToolExecutor
from tools.factory import build_tool_executor


def _sections_text(document: Any) -> str:
    parts = []
    for section in document.sections:
        head = []
        if getattr(section, "page", None) is not None:
            head.append(f"[page {section.page}]")
        if getattr(section, "heading", ""):
            head.append(f"## {section.heading}")
        parts.append("\n".join([*head, section.text.strip()]))
    return "\n\n".join(p for p in parts if p.strip())


# Formats the model reads best as they are (the parsers would re-flow them into sections).
PLAIN_TYPES = frozenset({"text", "markdown", "code"})


def knowledge_text_extractor(data: bytes, path: Path) -> str | None:
    """read_file's text extraction through the knowledge parsers (PDF, HTML, Markdown ...).

    Returns None for plain-text types and extensions no parser claims: read_file's own
    plain-text reader (with its binary check) shows those as they are. Imported lazily:
    ``tools list`` should not load pypdf.
    """
    try:
        from knowledge import parsers
    except ImportError:
        return None
    parser = parsers.parser_for(path)
    if parser is None or parser.name in PLAIN_TYPES:
        return None
    try:
        document = parser.parse(data, path)
    except parsers.BinaryContentError:
        raise ToolError(f"{path} is a binary file; read_file shows text only") from None
    except parsers.EncryptedDocumentError:
        raise ToolError(f"{path} is encrypted; Jackdaw cannot read it") from None
    except parsers.NoTextLayerError:
        raise ToolError(f"{path} has no text layer (a scanned document?)") from None
    except parsers.ParseError as exc:
        raise ToolError(f"{path} could not be read: {exc}") from None
    return _sections_text(document)


def tool_executor_from_config(
    config: Config,
    paths: Paths,
    memory: sqlite3.Connection,
    *,
    search: SearchFn | None = None,
    confirmer: ConfirmationHandler | None = None,
    extract_text: TextExtractor | None = knowledge_text_extractor,
) -> ToolExecutor:
    """The composition root's one call: built-in tools, policy, audit, from config.

    ``search`` is the knowledge base's ``search(query, k)`` (``search_knowledge`` is only
    offered when given); ``confirmer`` the CLI's or GUI's handler (None: asks are denied).
    """
    tools = config.tools
    return build_tool_executor(
        memory,
        notes_folder=tools.notes_folder or paths.data_dir / "notes",
        watched_folders=config.knowledge.watched_folders,
        allowed_paths=tools.allowed_paths,
        search=search,
        extract_text=extract_text,
        confirmer=confirmer,
        confirm_timeout_s=tools.confirm_timeout_s,
        tool_timeout_s=tools.tool_timeout_s,
        run_python_timeout_s=tools.run_python_timeout_s,
        run_python_memory_mb=tools.run_python_memory_mb,
        max_file_bytes=int(config.knowledge.max_file_mb * 1024 * 1024),
    )
