"""Where the GUI meets services that are still landing: small Protocols and one adapter each.

Everything here is plain Python (no Qt). The GUI asks this module, never ``getattr`` on
``Services`` itself, so when the composition root grows a service the change is made once,
here. Anything that may build something heavy (a model, an embedder) is only ever called
from a worker thread; the ``has_*`` checks look at the class, so they build nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from tools.confirm import ConfirmationHandler

# -- tool confirmation ---------------------------------------------------------------------


def install_confirmer(services: Any, handler: ConfirmationHandler) -> None:
    """Make tools that need permission ask ``handler`` (the dialog).

    ``Services.confirmer`` is read when the tool executor is built; an executor (or an agent
    on one) built before the window was is switched over too.
    """
    setter = getattr(services, "set_confirmer", None)
    if callable(setter):
        setter(handler)
        return
    services.confirmer = handler
    built = vars(services)
    agent = built.get("agent")
    for executor in (built.get("tool_executor"), getattr(agent, "executor", None)):
        if executor is not None:
            executor.confirmer = handler


def apply_confirm_timeout(services: Any, seconds: float) -> None:
    """A new confirmation time-out takes effect on the executors already built."""
    built = vars(services)
    agent = built.get("agent")
    for executor in (built.get("tool_executor"), getattr(agent, "executor", None)):
        if executor is not None:
            executor.confirm_timeout_s = seconds


def tool_executor(services: Any) -> Any:
    """The executor whose policy (rules) and audit log the Permissions page shows."""
    return services.tool_executor


# -- feedback (learning issue) --------------------------------------------------------------


@runtime_checkable
class Feedback(Protocol):
    def rate(self, trace_id: str, up: bool, comment: str = "") -> Any: ...

    def correct(self, trace_id: str, answer: str, note: str = "") -> Any: ...


def has_feedback(services: Any) -> bool:
    return _declares(services, "feedback") or has_learning(services)


def feedback_service(services: Any) -> Feedback | None:
    """Who records ratings and corrections: ``services.feedback`` where a test or the root
    sets one, else the learning engine. Workers only (it may build the engine)."""
    candidate = services.feedback if _declares(services, "feedback") else learning_service(services)
    return candidate if isinstance(candidate, Feedback) else None


# -- knowledge base (knowledge issue) -------------------------------------------------------

ProgressFn = Callable[[Any], None]


@runtime_checkable
class KnowledgeService(Protocol):
    """What the Knowledge panel uses of ``knowledge.KnowledgeBase``."""

    def folders(self) -> list[Any]: ...

    def add_folder(self, path: str) -> str: ...

    def remove_folder(self, path: str) -> int: ...

    def documents(self, status: str | None = None) -> list[Any]: ...

    def index(
        self,
        paths: Sequence[str] | None = None,
        on_progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> Any: ...

    def search(self, query: str, k: int = 10) -> list[Any]: ...


def has_knowledge(services: Any) -> bool:
    return _declares(services, "knowledge")


def knowledge_is_open(services: Any) -> bool:
    """Whether asking for the knowledge base costs nothing (no embedder to load)."""
    return "knowledge" in vars(services)


def knowledge_service(services: Any) -> KnowledgeService | None:
    """The composition root's knowledge base. The first call loads the embedding model:
    workers only."""
    if not _declares(services, "knowledge"):
        return None
    kb = services.knowledge
    return kb if isinstance(kb, KnowledgeService) else None


def remember_watched_folders(services: Any, folders: Sequence[str]) -> None:
    """Keep ``[knowledge] watched_folders`` in step with the knowledge base's folders (the
    tools' read roots come from the config)."""
    services.config.knowledge.watched_folders = list(folders)
    services.save_config()


# -- learning (learning issue) --------------------------------------------------------------


def has_learning(services: Any) -> bool:
    return _declares(services, "learning")


def learning_service(services: Any) -> Any | None:
    """The composition root's learning engine. Workers only (it may load the embedder)."""
    return services.learning if _declares(services, "learning") else None


def has_capability(service: Any, name: str) -> bool:
    return service is not None and callable(getattr(service, name, None))


# -- conversations and the model -----------------------------------------------------------


def conversation_turns(services: Any, conversation_id: str) -> list[dict[str, Any]]:
    """The turns of a conversation as ``{question, answer, trace}`` (trace may be None)."""
    out = []
    for row in services.conversations.turn_records(conversation_id):
        trace = None
        if row["trace_id"]:
            try:
                trace = services.traces.get(row["trace_id"])
            except Exception:  # a forgotten run: the turn still shows, without its sources
                trace = None
        out.append({"question": row["question"], "answer": row["answer"], "trace": trace})
    return out


def drop_last_turn(services: Any, conversation_id: str) -> bool:
    """Forget the last turn before Regenerate asks it again."""
    services.conversations.drop_last_turn(conversation_id)
    return True


def forget_model(services: Any) -> None:
    """Close the loaded model and the agent built on it; the next use loads the configured
    one (after Settings changed it). Call with no run in flight."""
    services.reload_model()


def _declares(services: Any, name: str) -> bool:
    # On the class (a cached_property) or already set on the instance (tests inject fakes);
    # never getattr on the instance here: that could build a model on the main thread.
    return hasattr(type(services), name) or name in vars(services)
