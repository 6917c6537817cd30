"""The chat: conversations, the transcript, the composer, and their controller."""
