"""Pages beside the chat: knowledge, learning, permissions."""
