"""Redaction of secrets that ride inside URLs.

RPC and webhook URLs often carry API keys in the path, the query or the user-info part
(``https://eth-mainnet.example/v2/KEY``). Anything we log, print, store or raise shows only
the scheme and the host.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["redact_text", "redact_url"]

_URL_RE = re.compile(r"\b(?:https?|wss?)://[^\s'\"<>]+", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, without credentials, path or query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<redacted url>"
    if not parts.scheme or not host:
        return "<redacted url>"
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}"


def redact_text(text: str) -> str:
    """``text`` with every URL in it reduced to scheme and host."""
    return _URL_RE.sub(lambda m: redact_url(m.group(0)), text)
