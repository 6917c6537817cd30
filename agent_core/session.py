"""A chat session: the agent plus a conversation's history, one question at a time."""

from __future__ import annotations

import threading
from collections.abc import Callable

from agent_core.agent import Agent, EventCallback
from agent_core.conversations import ConversationStore
from agent_core.traces import Trace


class ChatSession:
    def __init__(
        self, agent: Agent, conversations: ConversationStore, conversation_id: str | None = None
    ) -> None:
        self.agent = agent
        self.conversations = conversations
        self.conversation_id = conversation_id or conversations.create()

    def ask(
        self,
        question: str,
        *,
        on_text: Callable[[str], None] | None = None,
        on_event: EventCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> Trace:
        trace = self.agent.run(
            question,
            history=self.conversations.turns(self.conversation_id),
            conversation_id=self.conversation_id,
            on_text=on_text,
            on_event=on_event,
            cancel=cancel,
        )
        # A cancelled or failed answer is in the trace but not in the history the model sees.
        if trace.status in ("ok", "budget_exhausted") and trace.final_answer is not None:
            self.conversations.append(self.conversation_id, question, trace.final_answer, trace.id)
        return trace
