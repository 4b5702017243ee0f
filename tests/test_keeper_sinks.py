"""keeper.sinks: webhook retries against a loopback receiver, outbox exactly-once, redaction."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from keeper.flags import FlagEvent
from keeper.sinks import JsonLinesSink, Publisher, WebhookSink, webhook_body
from keeper.store import Store

A = "0x00000000000000000000000000000000000000aA"
SECRET = "T000/B000/SECRETSECRET"


class Receiver:
    """A loopback webhook receiver that fails the first ``fail`` POSTs with ``status``."""

    def __init__(self, fail: int = 0, status: int = 500) -> None:
        self.fail = fail
        self.status = status
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.attempts <= self.fail:
            return web.Response(status=self.status)
        self.bodies.append(await request.json())
        return web.Response(text="ok")

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/services/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/services/{SECRET}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def _events(n: int) -> list[FlagEvent]:
    return [
        FlagEvent(f"{b}:{A}:open", "open", A, b, "high", "none", 300.0, 100.0)
        for b in range(1, n + 1)
    ]


def _call(store: Store):  # type: ignore[no-untyped-def]
    async def call(name: str, *args: Any, **kw: Any) -> Any:
        return getattr(store, name)(*args, **kw)

    return call


def test_webhook_retries_then_delivers_once_per_event(tmp_path: Path) -> None:
    async def main() -> None:
        store = Store(tmp_path / "k.sqlite")
        for ev in _events(3):
            store.commit_block(ev.block, f"0x{ev.block:x}", events=[ev], sinks=["webhook"])
        async with Receiver(fail=2, status=503) as rx:
            sink = WebhookSink(rx.url, backoff_s=0.01, extra={"chain_id": 31337})
            pub = Publisher([sink], _call(store))
            assert await pub.flush() == 3
            assert await pub.flush() == 0  # nothing owed any more
            # the same block re-processed after a crash: same ids, nothing new to send
            for ev in _events(3):
                store.commit_block(ev.block, f"0x{ev.block:x}", events=[ev], sinks=["webhook"])
            assert await pub.flush() == 0
            await pub.close()
        assert [b["event_id"] for b in rx.bodies] == [e.event_id for e in _events(3)]
        assert rx.attempts == 5
        body = rx.bodies[0]
        assert body["text"].startswith(":rotating_light: flag OPEN (high)")
        assert body["chain_id"] == 31337 and body["es_usd"] == 300.0
        assert sink.failures == 2

    asyncio.run(main())


def test_webhook_down_keeps_messages_for_later_and_redacts_url(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        store = Store(tmp_path / "k.sqlite")
        store.commit_block(1, "0x1", events=_events(1), sinks=["webhook"])
        dead = f"http://127.0.0.1:9/services/{SECRET}"  # discard port: refused
        failures: list[str] = []
        pub = Publisher(
            [WebhookSink(dead, attempts=2, backoff_s=0.01)],
            _call(store),
            retry_after_s=0.0,
            on_failure=failures.append,
        )
        with caplog.at_level(logging.DEBUG):
            assert await pub.flush() == 0
        await pub.close()
        assert failures == ["webhook"]
        counts = store.outbox_counts()["webhook"]
        assert counts == {"delivered": 0, "pending": 1, "failed": 0}
        # the receiver comes up: the pending message goes out
        async with Receiver() as rx:
            pub2 = Publisher([WebhookSink(rx.url)], _call(store))
            assert await pub2.flush() == 1
            await pub2.close()
        assert len(rx.bodies) == 1

    asyncio.run(main())
    assert caplog.records, "the failure was logged"
    assert SECRET not in caplog.text
    assert "http://127.0.0.1:9" in caplog.text


def test_webhook_4xx_is_not_retried(tmp_path: Path) -> None:
    async def main() -> None:
        store = Store(tmp_path / "k.sqlite")
        store.commit_block(1, "0x1", events=_events(2), sinks=["webhook"])
        async with Receiver(fail=1, status=400) as rx:
            pub = Publisher([WebhookSink(rx.url, backoff_s=0.01)], _call(store))
            assert await pub.flush() == 1
            await pub.close()
        assert store.outbox_counts()["webhook"] == {"delivered": 1, "pending": 0, "failed": 1}
        assert rx.attempts == 2

    asyncio.run(main())


def test_jsonl_sink_stream_and_file(tmp_path: Path) -> None:
    async def main() -> None:
        store = Store(tmp_path / "k.sqlite")
        store.commit_block(1, "0x1", events=_events(2), sinks=["jsonl"])
        buf = io.StringIO()
        pub = Publisher([JsonLinesSink(stream=buf)], _call(store))
        assert await pub.flush() == 2
        lines = [json.loads(x) for x in buf.getvalue().splitlines()]
        assert [x["event_id"] for x in lines] == [e.event_id for e in _events(2)]
        assert lines[0]["type"] == "flag" and lines[0]["block_hash"] == "0x1"
        path = tmp_path / "events.jsonl"
        sink = JsonLinesSink(path)
        for ev in _events(2):
            await sink.deliver(webhook_body_row(ev))
        await sink.close()
        assert len(path.read_text().splitlines()) == 2

    asyncio.run(main())


def webhook_body_row(ev: FlagEvent) -> dict[str, Any]:
    return {
        "event_id": ev.event_id,
        "kind": ev.kind,
        "account": ev.account,
        "block_number": ev.block,
        "block_hash": "0x0",
        "severity": ev.severity,
        "previous_severity": ev.previous_severity,
        "es_usd": ev.es_usd,
        "margin_usd": ev.margin_usd,
    }


def test_webhook_body_clear_text() -> None:
    row = webhook_body_row(FlagEvent("9:x:clear", "clear", A, 9, "high", "high", 50.0, 100.0))
    body = webhook_body(row)
    assert body["text"].startswith(":white_check_mark: flag CLEAR (high)")
    assert "back under margin $100" in body["text"]
    assert repr(WebhookSink(f"https://hooks.slack.com/services/{SECRET}")) == (
        "WebhookSink(https://hooks.slack.com)"
    )


class _RetryAfter(Receiver):
    """A receiver that answers 429 with ``Retry-After: <seconds>`` to the first POST."""

    def __init__(self, seconds: str) -> None:
        super().__init__()
        self.seconds = seconds
        self.times: list[float] = []

    async def _handle(self, request: web.Request) -> web.Response:
        self.times.append(time.monotonic())
        if len(self.times) == 1:
            return web.Response(status=429, headers={"Retry-After": self.seconds})
        return web.Response(text="ok")


def test_webhook_waits_as_long_as_retry_after_asks(tmp_path: Path) -> None:
    async def main() -> None:
        store = Store(tmp_path / "k.sqlite")
        store.commit_block(1, "0x1", events=_events(1), sinks=["webhook"])
        async with _RetryAfter("0.4") as rx:
            pub = Publisher([WebhookSink(rx.url, backoff_s=0.001)], _call(store))
            assert await pub.flush() == 1
            await pub.close()
        assert len(rx.times) == 2
        # our own backoff would have retried after ~1 ms; the receiver asked for 0.4 s
        assert rx.times[1] - rx.times[0] >= 0.4

    asyncio.run(main())


def test_webhook_long_retry_after_is_left_to_a_later_flush(tmp_path: Path) -> None:
    async def main() -> None:
        store = Store(tmp_path / "k.sqlite")
        store.commit_block(1, "0x1", events=_events(1), sinks=["webhook"])
        async with _RetryAfter("120") as rx:
            pub = Publisher([WebhookSink(rx.url, backoff_s=0.001)], _call(store), retry_after_s=0)
            t0 = time.time()
            assert await pub.flush() == 0  # returns at once instead of sleeping 2 minutes
            assert time.time() - t0 < 10
            assert await pub.flush() == 0  # not due yet: nothing sent
            await pub.close()
        assert len(rx.times) == 1
        with sqlite3.connect(tmp_path / "k.sqlite") as con:
            (due,) = con.execute("SELECT next_attempt_at FROM outbox").fetchone()
        assert due >= t0 + 120

    asyncio.run(main())
