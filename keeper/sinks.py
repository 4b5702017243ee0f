"""Where flag events go: JSON lines, a webhook, both fed from the database's outbox.

Every sink has a ``name`` (the outbox key) and ``async deliver(event) -> None`` that either
returns (delivered) or raises ``DeliveryError`` (``retry`` says whether to try again later).
``Publisher.flush`` sends what the outbox owes each sink, oldest first, and marks each row
delivered, so a message is sent once per change even across restarts (at-least-once with a
stable ``event_id``; the only duplicate possible is a crash between a send and its mark).

Webhook body (Slack-compatible: Slack shows ``text``; other receivers read the fields)::

    {"text": ":rotating_light: flag OPEN (medium) 0xAbc...: $7,345 at risk: stressed ES
              $12,345 > margin $5,000 at block 123",
     "event_id": "123:0xAbc...:open", "kind": "open", "account": "0xAbc...", "block": 123,
     "block_hash": "0x...", "severity": "high", "previous_severity": "none",
     "es_usd": 12345.0, "margin_usd": 5000.0, "rule": "es", "at_risk_usd": 7345.0,
     "debt_usd": 40000.0, "stress_name": "ftx-2022", "stress_loss_usd": 3000.0,
     "es_contribution_usd": null, "chain_id": 1, "market": "0x87870B..."}

The webhook URL (it carries a secret) never appears in logs, metrics or errors: only its
scheme and host.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

import aiohttp

from keeper.redact import redact_text, redact_url

__all__ = [
    "DeliveryError",
    "HumanSink",
    "JsonLinesSink",
    "Publisher",
    "Sink",
    "WebhookSink",
    "default_sinks",
    "event_text",
    "webhook_body",
]

log = logging.getLogger(__name__)

_EMOJI = {
    "open": ":rotating_light:",
    "escalate": ":arrow_double_up:",
    "deescalate": ":arrow_double_down:",
    "clear": ":white_check_mark:",
}


class DeliveryError(Exception):
    """A delivery failed; ``retry`` is False when trying again cannot help (e.g. HTTP 400).

    ``retry_after_s`` is how long the receiver asked us to wait (HTTP ``Retry-After``), if
    it said.
    """

    def __init__(
        self, message: str, *, retry: bool = True, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.retry = retry
        self.retry_after_s = retry_after_s


#: Longest pause inside one ``deliver`` call; a receiver asking for more is left to a later
#: flush (the publisher schedules the message's next attempt no earlier than asked).
MAX_INLINE_WAIT_S = 30.0


def _retry_after(value: str | None) -> float | None:
    """Seconds of an HTTP ``Retry-After`` header in its delay-seconds form (Slack's)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # the HTTP-date form: fall back to our own backoff
    return seconds if seconds >= 0 and seconds == seconds else None


class Sink(Protocol):
    name: str

    async def deliver(self, event: dict[str, Any]) -> None: ...

    async def close(self) -> None: ...


def _rule_text(rule: str) -> str:
    if rule.startswith("stress:"):
        return f"stress {rule[len('stress:') :]} loss"
    return "stressed ES"


def event_text(event: dict[str, Any], *, emoji: bool = True) -> str:
    """One human line for an event (``emoji``: with a Slack emoji code in front): the USD
    at risk, the rule that opened the flag and the loss it compares with the margin."""
    kind = str(event["kind"])
    es, margin = float(event["es_usd"]), float(event["margin_usd"])
    at_risk = float(event.get("at_risk_usd") or 0.0)
    rule = str(event.get("rule") or "es")
    loss = float(event.get("stress_loss_usd") or 0.0) if rule.startswith("stress:") else es
    mark = _EMOJI.get(kind, "") if emoji else ""
    head = f"{mark} flag {kind.upper()} ({event['severity']}) {event['account']}"
    if kind == "clear":
        detail = f"{_rule_text(rule)} ${loss:,.0f} back under margin ${margin:,.0f}"
    else:
        detail = f"${at_risk:,.0f} at risk: {_rule_text(rule)} ${loss:,.0f} > margin ${margin:,.0f}"
    share = event.get("es_contribution_usd")
    if share is not None and kind != "clear":
        detail += f" (ES contribution ${float(share):,.0f})"
    return f"{head.strip()}: {detail} at block {event['block_number']}"


def webhook_body(event: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON body posted for ``event`` (a ``flag_events`` row)."""
    body: dict[str, Any] = {
        "text": event_text(event),
        "event_id": event["event_id"],
        "kind": event["kind"],
        "account": event["account"],
        "block": event["block_number"],
        "block_hash": event["block_hash"],
        "severity": event["severity"],
        "previous_severity": event["previous_severity"],
        "es_usd": event["es_usd"],
        "margin_usd": event["margin_usd"],
        "rule": event.get("rule", "es"),
        "at_risk_usd": event.get("at_risk_usd", 0.0),
        "debt_usd": event.get("debt_usd", 0.0),
        "stress_name": event.get("stress_name", ""),
        "stress_loss_usd": event.get("stress_loss_usd", 0.0),
        "es_contribution_usd": event.get("es_contribution_usd"),
    }
    body.update(extra or {})
    return body


class JsonLinesSink:
    """Writes one JSON object per event to stdout or appends it to a file."""

    def __init__(self, path: str | Path | None = None, *, stream: IO[str] | None = None) -> None:
        self.name = "jsonl"
        self._path = None if path is None or str(path) == "-" else Path(path)
        self._stream = stream
        self._file: IO[str] | None = None

    async def deliver(self, event: dict[str, Any]) -> None:
        line = json.dumps({"type": "flag", **{k: event[k] for k in sorted(event)}}, allow_nan=False)
        if self._path is None:
            stream = self._stream or sys.stdout
            stream.write(line + "\n")
            stream.flush()
            return
        await asyncio.to_thread(self._append, line)

    def _append(self, line: str) -> None:
        if self._file is None:
            assert self._path is not None
            self._file = open(self._path, "a", encoding="utf-8")  # noqa: SIM115
        self._file.write(line + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    async def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class WebhookSink:
    """POSTs each event to a webhook; retries 429, 5xx, timeouts and connection errors,
    waiting at least what a ``Retry-After`` header asks.

    Attributes:
        url: the webhook URL (secret; only ``redact_url(url)`` is ever shown).
        timeout_s: total time allowed for one POST, seconds.
        attempts: tries within one ``deliver`` call before leaving it to a later flush.
        backoff_s: first retry delay, seconds; doubles each try (with jitter), capped at 30 s.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 10.0,
        attempts: int = 5,
        backoff_s: float = 0.5,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.name = "webhook"
        self.url = url
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.extra = dict(extra or {})
        self.failures = 0  # failed POSTs, for the metrics
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"WebhookSink({redact_url(self.url)})"

    async def _post(self, body: dict[str, Any]) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )
        where = redact_url(self.url)
        try:
            async with self._session.post(
                self.url, json=body, headers={"Idempotency-Key": str(body["event_id"])}
            ) as resp:
                if 200 <= resp.status < 300:
                    return
                retry = resp.status == 429 or resp.status >= 500 or resp.status == 408
                raise DeliveryError(
                    f"webhook {where} answered HTTP {resp.status}",
                    retry=retry,
                    retry_after_s=_retry_after(resp.headers.get("Retry-After")),
                )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            # aiohttp's messages can quote the URL; keep only scheme and host.
            detail = redact_text(str(exc)) or type(exc).__name__
            raise DeliveryError(f"webhook {where} unreachable: {detail}") from None

    async def deliver(self, event: dict[str, Any]) -> None:
        body = webhook_body(event, self.extra)
        for attempt in range(self.attempts):
            try:
                await self._post(body)
                return
            except DeliveryError as exc:
                self.failures += 1
                asked = exc.retry_after_s
                if (
                    not exc.retry
                    or attempt == self.attempts - 1
                    or (asked is not None and asked > MAX_INLINE_WAIT_S)
                ):
                    raise
                delay = min(MAX_INLINE_WAIT_S, self.backoff_s * 2**attempt) * (
                    0.5 + random.random()
                )
                if asked is not None:
                    delay = max(delay, asked)  # the receiver's Retry-After wins
                log.warning("%s; retry %d in %.1f s", exc, attempt + 1, delay)
                await asyncio.sleep(delay)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class HumanSink:
    """One readable line per event on stdout (the keeper's default without ``--json``)."""

    name = "stdout"

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream

    async def deliver(self, event: dict[str, Any]) -> None:
        print(event_text(event, emoji=False), file=self._stream or sys.stdout, flush=True)

    async def close(self) -> None:
        """Flush the stream (every line is flushed as written; the stream is not ours to
        close)."""
        (self._stream or sys.stdout).flush()


def default_sinks(
    *, json_lines: bool, events_file: Path | None, webhook_url: str | None
) -> list[Sink]:
    """The CLI's sinks: stdout (JSON lines with ``--json``, else human lines), the
    ``--events-file`` (sink name ``events-file``) and the ``--webhook``."""
    sinks: list[Sink] = [JsonLinesSink() if json_lines else HumanSink()]
    if events_file is not None:
        f = JsonLinesSink(events_file)
        f.name = "events-file"
        sinks.append(f)
    if webhook_url:
        sinks.append(WebhookSink(webhook_url))
    return sinks


class Publisher:
    """Drains the outbox into the sinks.

    ``store_call`` runs a function against the store in the store's thread (the daemon
    passes its executor wrapper; tests may pass a direct call). A message that still fails
    after a sink's own retries waits ``retry_after_s`` x 2^(attempts) (capped at 10 min)
    before the next flush tries again; a permanent failure (HTTP 4xx) is marked failed.
    """

    def __init__(
        self,
        sinks: Sequence[Sink],
        store_call: Callable[..., Any],
        *,
        retry_after_s: float = 5.0,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.sinks = list(sinks)
        self._call = store_call
        self.retry_after_s = retry_after_s
        self._on_failure = on_failure
        self._lock = asyncio.Lock()

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sinks]

    async def flush(self) -> int:
        """Deliver every due message; returns how many were delivered."""
        async with self._lock:
            results = await asyncio.gather(*(self._flush_sink(s) for s in self.sinks))
            return sum(results)

    async def _flush_sink(self, sink: Sink) -> int:
        done = 0
        while True:
            items = await self._call("pending", sink.name, time.time())
            if not items:
                return done
            for item in items:
                try:
                    await sink.deliver(item.event)
                except DeliveryError as exc:
                    if self._on_failure:
                        self._on_failure(sink.name)
                    wait = min(600.0, self.retry_after_s * 2**item.attempts)
                    wait = max(wait, exc.retry_after_s or 0.0)
                    log.error("%s: event %s not delivered: %s", sink.name, item.event_id, exc)
                    await self._call(
                        "mark_attempt",
                        item.event_id,
                        sink.name,
                        str(exc),
                        time.time() + wait,
                        give_up=not exc.retry,
                    )
                    if exc.retry:
                        return done  # keep order: later events wait behind this one
                    continue
                await self._call("mark_delivered", item.event_id, sink.name)
                done += 1

    def describe_market(self, chain_id: int, market: str) -> None:
        """Webhook bodies name the chain and the market (unless already given)."""
        for sink in self.sinks:
            if isinstance(sink, WebhookSink):
                sink.extra.setdefault("chain_id", chain_id)
                sink.extra.setdefault("market", market)

    async def run(self, dirty: asyncio.Event, every_s: float = 5.0) -> None:
        """Flush whenever ``dirty`` is set (a block committed events), and every
        ``every_s`` seconds anyway (retries that fell due); runs until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(dirty.wait(), timeout=every_s)
            dirty.clear()
            await self.flush()

    async def close(self) -> None:
        for sink in self.sinks:
            with contextlib.suppress(Exception):
                await sink.close()
