"""The audit log's redaction; it lives in models/redact.py so the server backend (models/,
the bottom layer) can pass every error text through the very same rules."""

from models.redact import REDACTED, is_secret_key, redact, redact_text

__all__ = ["REDACTED", "is_secret_key", "redact", "redact_text"]
