"""The keeper daemon: block by block, flag accounts whose stressed ES exceeds their margin.

Life cycle (pymaker's Lifecycle): start-up checks (chain id, contracts present, through the
protocol adapter; the database belongs to this chain and market), then the loop, then a
clean shutdown on SIGTERM/SIGINT.

One iteration of the loop:

1. poll the head block (HTTP polling every ``poll_interval_s``, or at once when a
   ``newHeads`` notification rang); nothing new, nothing to do. Only the **latest** block is
   worked on: blocks that arrived while the previous iteration ran are covered by the log
   scan, never queued. While an iteration runs, a watcher keeps polling the head so that
   the lag (``blocks_behind_head``, ``seconds_behind_head``, ``/healthz``) is measured
   against the chain, not against the block being processed.
2. **reorg check**: the stored hash of the last processed block must still be the chain's;
   if not, walk back through the stored recent hashes to the fork point, roll progress back
   there and re-read every account (a full refresh) at the new head.
3. logs of ``(last processed, head]`` (one scan): accounts whose position changed (Supply,
   Withdraw, Borrow, Repay, LiquidationCall, ...); those not yet known are new accounts.
4. read the positions (and ``getUserEMode``) of new and touched accounts plus the block's
   share of the **rolling re-read** (interest accrues without events, so every account is
   re-read at least once every ``full_refresh_blocks`` = K blocks: account ``a`` in the
   blocks ``b = int(a) mod K``, and after skipped blocks the shares of all of them), or of
   **every** account on the first iteration, after a restart or a reorg, and when the list
   of reserves changes. No later block carries the whole re-read; reserves and e-mode
   categories are re-read every K blocks (and e-mode at once when an account enters a
   category not read yet). Then every price: the oracle's, and the v3.0 e-mode price
   sources'. On Compound V3 the reserves (the market's state) are read at every block: a
   Comet balance is its principal at the indexes accrued to the block they were read at.
5. recompute stressed ES and margin (``simulator.stress``, in a worker thread), each account
   with its e-mode class's LT, bonus and price ratio: for every account when prices, the
   e-mode parameters or the stress set moved, else for the accounts read plus the open
   flags; then the flag state machine (``keeper.flags``). On Compound V3 the loss is the
   reserves' when the account is absorbed (``simulator.stress_comet``), with the market's
   collateral and liquidation factors and store-front factor.
6. commit the block's accounts, flags, events, outbox rows and progress in **one** SQLite
   transaction; the publisher task then delivers the outbox to the sinks.

Shutdown (SIGTERM/SIGINT, also during start-up and ``--once``): the loop stops where it is
(a block not yet committed is simply processed again by the next start), committed events
still owed to the sinks get ``SHUTDOWN_FLUSH_S`` to go out, and the database is closed after
its last write; well within 5 s. One keeper per database: a second one on the same ``--db``
refuses to start (an ``flock`` the kernel releases when the holder dies).

Failures: timeouts, 429 and 5xx are retried inside ``keeper.chain``; when a whole iteration
still fails (the node is down, a reorg raced the reads), the loop logs it, backs off
(exponential, capped at ``max_backoff_s``) and tries again; ``/healthz`` reports the node
unreachable meanwhile. Configuration errors (wrong chain, missing contracts) stop the
keeper at start-up with a message.

Read-only: the keeper signs nothing and has no private key anywhere.

The parts, each in its own module and testable alone (``tests/test_keeper_parts.py``):
``keeper.head`` (the head, the lag, reorgs, the doorbell), ``keeper.positions`` (the position
cache and the e-mode classes), ``keeper.evaluate`` (the evaluation and the flag state
machine's input), ``keeper.store`` (the database, its thread and lock) with ``keeper.flags``,
and ``keeper.sinks`` (publishing the outbox). ``Keeper`` below only sequences them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any, TypeVar

import numpy as np
from eth_utils import to_checksum_address

from keeper.adapters.base import AdapterConfig, ProtocolAdapter, Reserve, get_adapter
from keeper.chain import BlockRef, Chain, ChainSettings
from keeper.errors import ChainError, ConfigError, ContractMissing, WrongChain
from keeper.evaluate import (
    EvaluationCache,
    accounts_to_evaluate,
    assess,
    comet_terms,
    same_terms,
    take_rows,
)
from keeper.flags import Flag, FlagEvent
from keeper.head import HeadFollower
from keeper.metrics import Health, KeeperMetrics, MetricsServer
from keeper.positions import EModeClasses, Positions
from keeper.progress import progress as progress_bar
from keeper.redact import redact_text, redact_url
from keeper.settings import KeeperSettings
from keeper.sinks import Publisher, Sink, default_sinks
from keeper.store import AsyncStore, Progress, Store, lock_database
from keeper.stress_inputs import StressInputs, build_stress_set
from simulator import __version__
from simulator.stress import StressEvaluation
from simulator.stress_comet import CometLossTerms

__all__ = ["INTERRUPTED", "Keeper", "KeeperSettings", "run_keeper"]

log = logging.getLogger(__name__)

#: Exit code of ``once`` when SIGTERM/SIGINT arrived before the head was processed.
INTERRUPTED = 130
#: Seconds a shutdown spends delivering committed events still owed to the sinks (the whole
#: shutdown stays within 5 s).
SHUTDOWN_FLUSH_S = 1.5

T = TypeVar("T")

#: Protocols whose reserves are read at every block: a Compound V3 balance is the principal
#: at the indexes the adapter accrued to the block of its last reserves read.
RESERVES_EVERY_BLOCK = frozenset({"compound-v3"})

#: Kept for callers of the old private name (``keeper.store.lock_database``).
_lock_database = lock_database


class Keeper:
    """One keeper: ``await start()``, then ``await iterate()`` per poll (``run`` loops).

    The parts: ``heads`` (``keeper.head.HeadFollower``: the head, the lag, reorgs, the
    doorbell), ``book`` (``keeper.positions.Positions``: the position cache), the evaluation
    (``keeper.evaluate``), ``db`` (``keeper.store.AsyncStore``: flags, events, outbox,
    progress) and ``publisher`` (``keeper.sinks.Publisher``: the outbox to the sinks). This
    class only sequences them, block by block.
    """

    def __init__(self, settings: KeeperSettings, *, sinks: Sequence[Sink] | None = None) -> None:
        s = self.settings = settings
        self.metrics = KeeperMetrics()
        self.health = Health(stall_s=s.stall_s, max_lag_blocks=s.max_lag_blocks)
        self.chain = Chain(
            ChainSettings(s.rpc_url, rps=s.rps, timeout=s.rpc_timeout_s, retries=s.rpc_retries)
        )
        cfg: dict[str, Any] = {
            "provider": s.provider,
            "expected_chain_id": s.expected_chain_id,
            "start_block": s.start_block,
        }
        if s.multicall3:
            cfg["multicall3"] = s.multicall3
        self.adapter: ProtocolAdapter = get_adapter(s.protocol)(self.chain, AdapterConfig(**cfg))
        self.db = AsyncStore(s.db_path)
        # One dedicated thread for the numpy work: a single malloc arena, so the big
        # per-chunk temporaries are reused rather than spread over every pool thread.
        self._numpy_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keeper-es")
        if sinks is None:
            sinks = default_sinks(
                json_lines=s.json_lines, events_file=s.events_file, webhook_url=s.webhook_url
            )
        self.publisher = Publisher(
            list(sinks), self.db.call, on_failure=self._sink_failed, retry_after_s=5.0
        )
        self._stop = asyncio.Event()
        self.heads = HeadFollower(
            self.chain,
            self.db.call,
            self.health,
            self.metrics,
            poll_interval_s=s.poll_interval_s,
            stop=self._stop,
            on_error=self._note_error,
        )
        self.server: MetricsServer | None = None
        self.chain_id: int | None = None
        self.book: Positions | None = None
        self.stress: StressInputs | None = None
        self.flags: dict[str, Flag] = {}
        self.emode: EModeClasses | None = None  # the market's e-mode classes, read with reserves
        self.comet: CometLossTerms | None = None  # a Compound V3 market's terms, with reserves
        self.prices: np.ndarray | None = None  # the oracle prices (and e-mode sources') last used
        self.evaluations = EvaluationCache()  # every account's last evaluation
        self._lock: IO[bytes] | None = None  # held while this keeper owns the database
        self._last_full: int | None = None
        self._reserves_at: int | None = None  # block the reserves were last read at
        self._force_full = True
        self._errors_seen: dict[str, int] = {}
        self._known_accounts: list[str] = []
        self._unsaved_accounts: set[str] = set()  # discovered, not yet in the database
        self._outbox_dirty = asyncio.Event()

    # -- what tests and the demo look at --------------------------------------------------

    @property
    def store(self) -> Store | None:
        """The open database (``None`` before ``start`` and after ``close``)."""
        return self.db.store

    @property
    def last(self) -> BlockRef | None:
        """The last block processed."""
        return self.heads.last

    @property
    def head(self) -> BlockRef | None:
        """The newest head seen at the node."""
        return self.heads.head

    @property
    def subscribed(self) -> bool:
        """A ``newHeads`` subscription is live (``ws_url``)."""
        return self.heads.subscribed

    # -- plumbing ---------------------------------------------------------------------------

    def _sink_failed(self, name: str) -> None:
        if name == "webhook":
            self.metrics.webhook_failures.inc()

    async def _in_thread(
        self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        call = functools.partial(fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(pool, call)

    def _note_error(self, exc: BaseException) -> None:
        self.health.last_error = redact_text(str(exc))[:300]
        self.metrics.sync_rpc_errors(self.chain.stats.errors, self._errors_seen)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless asked to stop; True if a stop was requested."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        return self._stop.is_set()

    def _publish_flags(self) -> None:
        stress = self.stress
        contributions = stress.contributions if stress is not None else None
        es = stress.protocol_es_usd if stress is not None else 0.0
        self.metrics.publish_flags(self.flags, contributions, es)

    # -- start-up -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the database, serve metrics, and check the chain and the market."""
        s = self.settings
        self._lock = lock_database(s.db_path)
        await self.db.open()
        if s.metrics_port is not None:
            self.server = MetricsServer(self.metrics, self.health, s.metrics_host, s.metrics_port)
            try:
                await self.server.start()
            except OSError as exc:
                self.server = None
                raise ConfigError(
                    f"--metrics-port {s.metrics_port}: cannot listen on {s.metrics_host} "
                    f"({exc.strerror or exc}); pass another port, 0 for any, or -1 for none"
                ) from None
        delay = 1.0
        while True:
            try:
                head = await self.heads.poll()
                await self.adapter.resolve(head)
                self.chain_id = await self.chain.chain_id()
                break
            except (WrongChain, ContractMissing, ConfigError):
                raise
            except ChainError as exc:
                if s.once:
                    raise
                self._note_error(exc)
                log.warning("start-up: %s; retrying in %.0f s", redact_text(str(exc)), delay)
                if await self._sleep(delay):
                    raise asyncio.CancelledError from None
                delay = min(s.max_backoff_s, delay * 2)
        self.metrics.info.labels(
            version=__version__,
            protocol=s.protocol,
            chain_id=str(self.chain_id),
            rpc=redact_url(s.rpc_url),
            margin=s.margin,
            alpha=str(s.alpha),
        ).set(1)
        self.publisher.describe_market(self.chain_id, self.adapter.addresses.pool)
        await self.db.call("bind", self.chain_id, self.adapter.addresses.pool)
        self.flags = await self.db.call("flags")
        known = await self.db.call("accounts")
        progress = await self.db.call("progress")
        self._known_accounts = list(known)
        self._publish_flags()
        log.info(
            "keeper on chain %d, market %s; %d known accounts, %d flags, resuming after %s",
            self.chain_id,
            self.adapter.addresses.pool,
            len(known),
            len(self.flags),
            "nothing" if progress is None else f"block {progress.block_number}",
        )

    # -- one iteration ----------------------------------------------------------------------

    async def iterate(self) -> bool:
        """Poll the head and process it if it is new; True if a block was processed."""
        heads = self.heads
        heads.iterating = True
        try:
            head = await heads.poll()
            heads.working_on = head.number
            progress = await self.db.call("progress")
            if progress is not None:
                progress, reorged = await heads.check_reorg(progress, head)
                self._force_full = self._force_full or reorged
            if (
                progress is not None
                and progress.block_number >= head.number
                and not self._force_full
            ):
                return False
            # After a restart or a reorg the head itself is re-processed (a full refresh):
            # flag transitions are idempotent per block and event ids repeat, so nothing
            # doubles.
            return await self._process(head, progress)
        finally:
            heads.iterating = False

    async def _refresh_reserves(self, n: int) -> bool:
        """Re-read the reserves on the first block, a full refresh and every K blocks (every
        block on ``RESERVES_EVERY_BLOCK`` protocols); a changed list of reserves rebuilds the
        book (and the stress set) and forces a full refresh, changed risk parameters
        re-evaluate everyone. True if they were read."""
        if not (
            self.book is None
            or self._force_full
            or self._reserves_at is None
            or n - self._reserves_at >= self.settings.full_refresh_blocks
            or self.settings.protocol in RESERVES_EVERY_BLOCK
        ):
            return False
        reserves = await self.adapter.read_reserves(n)
        terms = comet_terms(reserves, self.adapter)
        if self.book is None or [r.asset for r in reserves] != self.book.assets:
            self._rebuild(reserves)
            self.comet = terms
        else:
            before = [
                (r.liquidation_threshold, r.liquidation_bonus, r.protocol_fee)
                for r in self.book.reserves
            ]
            after = [
                (r.liquidation_threshold, r.liquidation_bonus, r.protocol_fee) for r in reserves
            ]
            if before != after or not same_terms(self.comet, terms):
                self.evaluations.reset()  # new risk parameters: every account again
                self._force_full = True
                self.comet = terms  # a new object: the evaluation cache keys on it
            self.book.reserves = reserves
        return True

    async def _accounts_changed(
        self, head: BlockRef, progress: Progress | None
    ) -> tuple[list[str], set[str]]:
        """``(new accounts, touched accounts)``: discovery on the first run, one log scan
        since the last block afterwards (an account named by a change event that we do not
        know yet is a new account)."""
        if progress is None:
            with progress_bar("scanning logs") as bar:
                found = await self.adapter.discover_accounts(head, on_progress=bar.advance)
            return [to_checksum_address(a) for a in found], set()
        lo = progress.block_number + 1
        changed = (
            await self.adapter.touched_accounts(lo, head.number) if lo <= head.number else set()
        )
        touched = {to_checksum_address(a) for a in changed}
        return sorted(touched), touched

    async def _read_positions(
        self, book: Positions, to_read: list[str], n: int, full: bool
    ) -> None:
        if full and self._last_full is None:  # this process's first full read: long
            with progress_bar("reading accounts", total=len(to_read)) as bar:
                read = await self.adapter.read_positions(
                    to_read, book.reserves, n, on_progress=bar.advance
                )
        else:
            read = await self.adapter.read_positions(to_read, book.reserves, n)
        book.update(to_read, read.positions, read.emode)

    async def _refresh_emode(self, book: Positions, n: int, reserves_read: bool) -> bool:
        """Re-read the e-mode categories with the reserves, and whenever an account is in a
        category not read yet; True if the classes changed."""
        used = book.categories_used()
        if not (reserves_read or self.emode is None or not self.emode.knows(used)):
            return False
        categories = await self.adapter.read_emode(sorted(used), book.reserves, n)
        emode = EModeClasses.from_categories(categories, book.reserves)
        old = self.emode
        if old is not None and (
            old.categories == emode.categories
            and old.sources == emode.sources
            and np.array_equal(old.lt, emode.lt)
            and np.array_equal(old.bonus, emode.bonus)
        ):
            return False  # the same table: keep the object (the evaluation cache keys on it)
        self.emode = emode
        return True

    async def _process(self, head: BlockRef, progress: Progress | None) -> bool:
        s = self.settings
        started = time.perf_counter()
        n = head.number
        reread_reserves = await self._refresh_reserves(n)
        full = self._force_full or self._last_full is None
        book = self.book
        assert book is not None and self.stress is not None
        if self._known_accounts:
            book.add(self._known_accounts)
            self._known_accounts = []
        new_accounts, touched = await self._accounts_changed(head, progress)
        # Accounts enter the database with the block that commits; until then (a failed
        # iteration retried) they stay pending, so none is lost to a restart.
        self._unsaved_accounts.update(book.add(new_accounts))
        added = sorted(self._unsaved_accounts)
        since = None if progress is None else progress.block_number
        to_read = book.to_read(since, n, full=full, added=added, touched=touched)
        if to_read:
            await self._read_positions(book, to_read, n, full)
        emode_changed = await self._refresh_emode(book, n, reread_reserves)
        emode = self.emode
        assert emode is not None
        sources = emode.price_sources
        prices_raw = await self.adapter.read_prices([*book.assets, *sources], n)
        prices = np.array([prices_raw.usd(a) for a in book.assets], dtype=np.float64)
        source_usd = {src: prices_raw.usd(src) for src in sources}
        seen = np.concatenate([prices, [source_usd[src] for src in sources]])
        prices_moved = self.prices is None or not np.array_equal(seen, self.prices)
        evaluated, rows = accounts_to_evaluate(
            book, to_read, self.flags, everyone=full or prices_moved or emode_changed
        )
        changed_flags: list[Flag] = []
        events: list[FlagEvent] = []
        if evaluated:
            # Only the accounts whose inputs changed are recomputed (``EvaluationCache``);
            # the others' rows are their last evaluation, which a new one would repeat.
            coll, debt, enabled = book.arrays()
            read_rows = np.fromiter((book.row[a] for a in to_read), np.int64, len(to_read))
            every: StressEvaluation = await self._in_thread(
                self._numpy_thread,
                self.evaluations.evaluate,
                coll.copy(),
                debt.copy(),
                enabled.copy(),
                prices,
                book.reserves,
                self.stress,
                s,
                changed=read_rows,
                emode=emode,
                categories=book.categories().copy(),
                source_usd=source_usd,
                comet=self.comet,
            )
            result = take_rows(every, rows)
            changed_flags, events = assess(
                self.flags,
                evaluated,
                result,
                n,
                clear_blocks=s.clear_blocks,
                contributions=self.stress.contributions,
            )
        await self.db.call(
            "commit_block",
            n,
            head.hash,
            new_accounts=added,
            read_accounts=to_read,
            flags=changed_flags,
            events=events,
            sinks=self.publisher.names,
        )
        # Committed: now the in-memory state may move on.
        self._unsaved_accounts.difference_update(added)
        self.flags.update({f.account: f for f in changed_flags})
        self.prices = seen
        if full:
            self._last_full = n
            self._force_full = False
        if reread_reserves:
            self._reserves_at = n
        self.heads.processed(head)
        elapsed = time.perf_counter() - started
        m = self.metrics
        m.refresh_seconds.labels(kind="full" if full else "incremental").observe(elapsed)
        m.last_block.set(n)
        m.accounts_watched.set(book.n)
        for ev in events:
            m.events.labels(kind=ev.kind).inc()
        self._publish_flags()
        m.sync_rpc_errors(self.chain.stats.errors, self._errors_seen)
        if events:
            self._outbox_dirty.set()
        log.info(
            "block %d: %s refresh, %d read, %d assessed (%d recomputed), %d events, %.2f s",
            n,
            "full" if full else "incremental",
            len(to_read),
            len(evaluated),
            self.evaluations.last_evaluated if evaluated else 0,
            len(events),
            elapsed,
        )
        return True

    def _rebuild(self, reserves: Sequence[Reserve]) -> None:
        s = self.settings
        self.stress = build_stress_set(
            [r.symbol for r in reserves],
            s.scenarios,
            mc_paths=s.mc_paths,
            mc_seed=s.mc_seed,
            stress_from=s.stress_from,
            alpha=s.alpha,
            budget=s.state_budget,
        )
        self.metrics.publish_contribution_shares(
            self.stress.contributions, self.stress.protocol_es_usd
        )
        old = self.book
        self.book = Positions(reserves, s.full_refresh_blocks)
        if old is not None:
            self.book.add(old.accounts)
        self.prices = None
        self._force_full = True

    # -- the loops --------------------------------------------------------------------------

    async def _main_loop(self) -> None:
        s = self.settings
        delay = s.poll_interval_s
        while not self._stop.is_set():
            # A doorbell (newHeads, or the watcher seeing a newer head) that rings while this
            # iteration runs starts the next one at once instead of after a poll interval.
            self.heads.doorbell.clear()
            try:
                await self.iterate()
                self.health.last_error = ""
                delay = s.poll_interval_s
            except ChainError as exc:
                self.metrics.loop_errors.inc()
                self._note_error(exc)
                log.warning(
                    "iteration failed: %s; retrying in %.0f s", redact_text(str(exc)), delay
                )
                if await self._sleep(delay):
                    return
                delay = min(s.max_backoff_s, max(1.0, delay * 2))
                continue
            if await self.heads.wait(s.poll_interval_s):
                return

    async def _once(self) -> None:
        await self.iterate()
        await self.publisher.flush()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        """Start, loop until SIGTERM/SIGINT (or one block with ``once``), shut down."""
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
                installed.append(sig)
        try:
            starting = asyncio.create_task(self.start())
            stopper = asyncio.create_task(self._stop.wait())
            await asyncio.wait({starting, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not starting.done():
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starting
                return 0
            starting.result()  # raises start-up errors
            if self.settings.once:
                work = asyncio.create_task(self._once())
                await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                if not work.done():
                    work.cancel()
                    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                        await asyncio.wait_for(work, timeout=3.0)
                    log.warning("stopped before the head was processed")
                    return INTERRUPTED
                work.result()
                return 0
            publisher = asyncio.create_task(self.publisher.run(self._outbox_dirty))
            background = [publisher, asyncio.create_task(self.heads.lag_watch())]
            if self.settings.ws_url:
                background.append(
                    asyncio.create_task(
                        self.heads.subscribe(self.settings.ws_url, self.settings.max_backoff_s)
                    )
                )
            main = asyncio.create_task(self._main_loop())
            # The publisher is watched too: if it died, nothing would reach the sinks.
            await asyncio.wait({main, publisher, stopper}, return_when=asyncio.FIRST_COMPLETED)
            failed = [
                t for t in (main, publisher) if t.done() and not t.cancelled() and t.exception()
            ]
            for task in (main, *background):
                task.cancel()
            for task in (main, *background):
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(task, timeout=2.0)
            stopper.cancel()
            if not failed:
                # What is committed but not yet delivered goes out now if it can, briefly
                # (the next start delivers whatever is left).
                with contextlib.suppress(Exception, TimeoutError):
                    await asyncio.wait_for(self.publisher.flush(), timeout=SHUTDOWN_FLUSH_S)
            if failed:
                raise failed[0].exception()  # type: ignore[misc]
            return 0
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await self.close()

    async def close(self) -> None:
        """Release everything; the database is closed after its last write finished."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.publisher.close(), timeout=1.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.chain.close(), timeout=1.0)
        if self.server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.stop(), timeout=1.0)
        await self.db.close()
        self._numpy_thread.shutdown(wait=True)
        if self._lock is not None:
            self._lock.close()  # releases the database for the next keeper
            self._lock = None


def run_keeper(settings: KeeperSettings) -> int:
    """Run a keeper to completion in a fresh event loop; the exit code."""
    return asyncio.run(Keeper(settings).run())
