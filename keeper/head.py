"""Following the chain's head: polling it, measuring the lag, and finding reorgs.

``HeadFollower`` owns everything the daemon knows about the node's head:

- ``poll()`` asks the node for its latest block and records it for ``/healthz`` and the lag
  metrics (``blocks_behind_head``, ``seconds_behind_head``, measured against the newest head
  seen, not against the block being processed);
- ``check_reorg(progress, head)``: the stored hash of the last processed block must still be
  the chain's; if not, it walks back through the stored recent hashes to the fork point and
  rolls the database's progress back there (or forgets it when the fork is older than the
  stored window). The caller then re-reads every account (a full refresh);
- ``lag_watch()`` keeps polling while a slow iteration runs, and ``subscribe(url)`` listens
  to a WebSocket ``newHeads`` subscription; both only ring the ``doorbell`` so that the loop
  starts its next iteration at once, on the newest head (never on the blocks in between).

It talks to the node through ``chain.block(number=None)`` and to the database through an
awaitable ``store_call(method, *args)`` (``AsyncStore.call``), so a test can hand it fakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from keeper.chain import BlockRef
from keeper.errors import ChainError
from keeper.metrics import Health, KeeperMetrics
from keeper.redact import redact_url
from keeper.store import Progress

__all__ = ["HeadFollower", "HeadSource"]

log = logging.getLogger(__name__)


class HeadSource(Protocol):
    """What the follower needs of ``keeper.chain.Chain``."""

    async def block(self, number: int | None = None) -> BlockRef: ...


class HeadFollower:
    """The node's head as the daemon sees it; see the module docstring."""

    def __init__(
        self,
        chain: HeadSource,
        store_call: Callable[..., Awaitable[Any]],
        health: Health,
        metrics: KeeperMetrics,
        *,
        poll_interval_s: float,
        stop: asyncio.Event,
        on_error: Callable[[BaseException], None] = lambda exc: None,
    ) -> None:
        self.chain = chain
        self._db = store_call
        self.health = health
        self.metrics = metrics
        self.poll_interval_s = poll_interval_s
        self._stop = stop
        self._on_error = on_error
        self.doorbell = asyncio.Event()
        """Set when a newer head than the one being worked on is known (watcher, newHeads)."""
        self.head: BlockRef | None = None
        """The newest head seen at the node."""
        self.last: BlockRef | None = None
        """The last block the daemon fully processed (``processed(...)`` sets it)."""
        self.iterating = False
        """An iteration is running (the watcher polls only then)."""
        self.working_on = -1
        """The head the current (or last) iteration works on."""
        self.subscribed = False
        """A ``newHeads`` subscription is live."""
        self._polled_at = -math.inf  # monotonic time of the last head poll

    # -- the head and the lag -----------------------------------------------------------------

    async def poll(self) -> BlockRef:
        """The node's latest block; records it for ``/healthz`` and the lag metrics."""
        head = await self.chain.block()
        self._polled_at = time.monotonic()
        self.health.saw_head(head.number)
        self.metrics.head_block.set(head.number)
        self.head = head
        self.observe_lag()
        return head

    def processed(self, block: BlockRef) -> None:
        """The daemon committed ``block``."""
        self.last = block
        self.health.processed = block.number
        self.observe_lag()

    def observe_lag(self) -> None:
        """Lag of the last processed block behind the newest head seen."""
        head, last = self.head, self.last
        if head is not None and last is not None:
            self.metrics.blocks_behind.set(max(0, head.number - last.number))
            self.metrics.seconds_behind.set(max(0, head.timestamp - last.timestamp))

    # -- reorgs -----------------------------------------------------------------------------

    async def check_reorg(self, progress: Progress, head: BlockRef) -> tuple[Progress | None, bool]:
        """``(progress after the check, whether a reorg was found)``.

        Unchanged when the stored hash of the last processed block (or, when the head went
        back below it, of the head's height) is still the chain's. Otherwise the fork point
        is the newest stored recent hash the chain still has: progress is rewound there; with
        none (a reorg deeper than the stored window) progress is forgotten and ``None``
        returned, so the daemon starts over with discovery, but only once the node's head has
        reached the last processed height: a head below it with none of the stored blocks on
        its chain is a node restarted from scratch or still syncing, and the check waits.
        """
        if head.number == progress.block_number and head.hash == progress.block_hash:
            return progress, False  # nothing new, nothing reorganised: no extra request
        h = min(progress.block_number, head.number)
        stored = (
            progress.block_hash if h == progress.block_number else await self._db("block_hash", h)
        )
        chain_hash = (await self.chain.block(h)).hash
        if stored is not None and stored == chain_hash and h == progress.block_number:
            return progress, False
        fork: tuple[int, str] | None
        if stored is not None and stored == chain_hash:
            fork = (h, chain_hash)  # the chain went back to a block we processed
        else:
            fork = None
            for number, stored_hash in await self._db("recent_hashes"):
                if number > head.number:
                    continue
                if (await self.chain.block(number)).hash == stored_hash:
                    fork = (number, stored_hash)
                    break
        if fork is None and head.number < progress.block_number:
            # None of our recent blocks is on the node's chain and it is not even at our
            # height: a node restarted from scratch or still loading (or a lagging one behind
            # a load balancer). Wait for it to reach our height before calling it a reorg, and
            # keep the progress: re-discovery would need history such a node does not have.
            log.warning(
                "the node's head %d is below the last processed block %d and none of the "
                "recent processed blocks is on its chain: waiting for it to catch up",
                head.number,
                progress.block_number,
            )
            return progress, False
        self.metrics.reorgs.inc()
        if fork is None:
            log.warning(
                "reorg deeper than the stored hashes (last processed %d): starting over",
                progress.block_number,
            )
            await self._db("forget_progress")
            return None, True
        log.warning(
            "reorg: block %d is no longer %s; rolled back to block %d and re-reading all accounts",
            progress.block_number,
            progress.block_hash,
            fork[0],
        )
        await self._db("rewind", fork[0], fork[1])
        return await self._db("progress"), True

    # -- waking the loop ----------------------------------------------------------------------

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless asked to stop; True if a stop was requested."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        return self._stop.is_set()

    async def wait(self, seconds: float) -> bool:
        """Wait for the next poll, or earlier for the doorbell; True on stop."""
        stop = asyncio.ensure_future(self._stop.wait())
        bell = asyncio.ensure_future(self.doorbell.wait())
        try:
            await asyncio.wait({stop, bell}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            bell.cancel()
        return self._stop.is_set()

    async def lag_watch(self) -> None:
        """Keep polling the head while an iteration runs longer than a poll interval.

        The loop polls the head only between iterations, so without this a slow iteration
        would hide how far the chain has moved on: the lag metrics and ``/healthz`` would
        judge the keeper against the block it is still working on. A new head seen here
        rings the doorbell. Idle, it sends nothing.
        """
        every = self.poll_interval_s
        while not await self._sleep(every):
            if not self.iterating or time.monotonic() - self._polled_at < every:
                continue
            try:
                head = await self.poll()
            except ChainError as exc:
                self._on_error(exc)
                continue
            if head.number > self.working_on:
                self.doorbell.set()

    async def subscribe(self, url: str, max_backoff_s: float) -> None:
        """Ring the doorbell on every ``newHeads`` notification of a WebSocket endpoint.

        Only a doorbell: the loop still asks the HTTP endpoint for the head, so a lost or
        duplicated notification costs nothing. Reconnects with backoff; polling goes on
        meanwhile.
        """
        import aiohttp

        where = redact_url(url)
        delay = 1.0
        while not self._stop.is_set():
            try:
                async with (
                    aiohttp.ClientSession() as session,
                    session.ws_connect(
                        url, heartbeat=30.0, timeout=aiohttp.ClientWSTimeout(ws_close=5.0)
                    ) as ws,
                ):
                    await ws.send_json(
                        {
                            "jsonrpc": "2.0",
                            "id": 1,
                            "method": "eth_subscribe",
                            "params": ["newHeads"],
                        }
                    )
                    log.info("subscribed to newHeads on %s", where)
                    self.subscribed = True
                    delay = 1.0
                    async for msg in ws:
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            break
                        if '"eth_subscription"' in msg.data:
                            self.doorbell.set()
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.warning(
                    "newHeads subscription on %s failed (%s); polling meanwhile",
                    where,
                    type(exc).__name__,
                )
            if await self._sleep(delay):
                return
            delay = min(max_backoff_s, delay * 2)
