"""Secrets never reach a log, a trace, an error message or the screen: redact by key name
and by the look of the value. Used by the audit log (tools/), the server backend (models/)
and exports; it lives in models/ because that is the bottom layer every package may import."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"

# Judged by how a key *ends* (github_token, apiKey, db_password), so "max_tokens" and
# "author" are not mistaken for secrets.
_SECRET_KEY = re.compile(
    r"(api[_-]?key|secret[_-]?key|access[_-]?key|private[_-]?key|passw(or)?d|passphrase"
    r"|secret|token|authorization|credentials?|cookie|session[_-]?id)$",
    re.IGNORECASE,
)

# Values that look like credentials wherever they appear (inside code, a note, a URL).
_SECRET_VALUE = re.compile(
    r"""
    \bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{16,}          # OpenAI / Anthropic style
    | \bgh[pousr]_[A-Za-z0-9]{20,}                   # GitHub tokens
    | \bgithub_pat_[A-Za-z0-9_]{20,}
    | \bxox[abprs]-[A-Za-z0-9\-]{10,}                # Slack
    | \bAKIA[0-9A-Z]{16}\b                           # AWS access key id
    | \bAIza[0-9A-Za-z_\-]{30,}                      # Google API key
    | \beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}   # JWT
    | (?i:bearer)\s+[A-Za-z0-9._~+/\-]{16,}=*         # Authorization: Bearer ...
    | -----BEGIN[A-Z ]*PRIVATE\ KEY-----[\s\S]*?(?:-----END[A-Z ]*PRIVATE\ KEY-----|$)
    | (?<=://)[^/\s:@]+:[^/\s@]+(?=@)                # user:password@ in URLs
    """,
    re.VERBOSE,
)

# A long run of letters and digits that switches between lower case, upper case and digits
# all the time is most likely a random key. Words, paths ("Quarterly_Report_2024"), camelCase
# identifiers and hex digests switch far less often, so they stay readable.
_OPAQUE = re.compile(r"[A-Za-z0-9]{20,}")


def _char_class(c: str) -> int:
    return 0 if c.islower() else 1 if c.isupper() else 2


def _looks_opaque(token: str) -> bool:
    classes = [_char_class(c) for c in token]
    if len(set(classes)) < 3:
        return False
    switches = sum(1 for a, b in itertools.pairwise(classes) if a != b)
    return switches / len(token) >= 0.4


def redact_text(text: str, known: Iterable[str | None] = ()) -> str:
    """``text`` with secret-looking values replaced, and every one of ``known`` (secrets we
    hold, e.g. the API key we sent: a server may echo it back however it looks)."""
    for secret in known:
        if secret and len(secret) >= 4:  # a one-letter "key" would redact every such letter
            text = text.replace(secret, REDACTED)
    text = _SECRET_VALUE.sub(REDACTED, text)
    return _OPAQUE.sub(lambda m: REDACTED if _looks_opaque(m.group()) else m.group(), text)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def redact(value: Any) -> Any:
    """A copy of ``value`` with secret-named entries and secret-looking strings replaced."""
    if isinstance(value, dict):
        return {
            k: (
                REDACTED
                if isinstance(k, str) and is_secret_key(k) and v not in (None, "")
                else redact(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
