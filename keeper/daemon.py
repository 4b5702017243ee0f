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
4. read all prices; read the positions of new and touched accounts plus the block's share of
   the **rolling re-read** (interest accrues without events, so every account is re-read at
   least once every ``full_refresh_blocks`` = K blocks: account ``a`` in the blocks
   ``b = int(a) mod K``, and after skipped blocks the shares of all of them), or of
   **every** account on the first iteration, after a restart or a reorg, and when the list
   of reserves changes. No later block carries the whole re-read; reserves are re-read
   every K blocks.
5. recompute stressed ES and margin (``simulator.stress``, in a worker thread): for every
   account when prices or the stress set moved, else for the accounts read plus the open
   flags; then the flag state machine (``keeper.flags``).
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
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np
from eth_utils import to_checksum_address

from keeper.adapters.base import AdapterConfig, ProtocolAdapter, Reserve, get_adapter
from keeper.chain import BlockRef, Chain, ChainSettings
from keeper.errors import ChainError, ConfigError, ContractMissing, WrongChain
from keeper.evaluate import assess, evaluate_book
from keeper.flags import DEFAULT_CLEAR_BLOCKS, Flag, FlagEvent
from keeper.metrics import Health, KeeperMetrics, MetricsServer
from keeper.positions import Positions as _Positions
from keeper.progress import progress as progress_bar
from keeper.redact import redact_text, redact_url
from keeper.sinks import JsonLinesSink, Publisher, Sink, WebhookSink
from keeper.store import Store
from keeper.stress_inputs import StressInputs, build_stress_set
from simulator import __version__
from simulator.stress import (
    DEFAULT_ALPHA,
    DEFAULT_MC_PATHS,
    DEFAULT_MC_SEED,
    DEFAULT_MIN_USD,
    SEVERITIES,
    FlagThresholds,
    MarginKind,
    StressEvaluation,
)

__all__ = ["INTERRUPTED", "Keeper", "KeeperSettings", "run_keeper"]

log = logging.getLogger(__name__)

#: Exit code of ``once`` when SIGTERM/SIGINT arrived before the head was processed.
INTERRUPTED = 130
#: Seconds a shutdown spends delivering committed events still owed to the sinks (the whole
#: shutdown stays within 5 s).
SHUTDOWN_FLUSH_S = 1.5

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class KeeperSettings:
    """Everything the keeper needs to run; the CLI builds one from its arguments."""

    rpc_url: str
    """HTTP(S) JSON-RPC endpoint. Carries API keys: only its scheme and host are ever shown."""
    provider: str
    """The market's root address (Aave V3: PoolAddressesProvider)."""
    db_path: Path
    """SQLite database: flags, their history, progress, outbox. Created when missing."""
    protocol: str = "aave-v3"
    """Protocol adapter name (``keeper.adapters``)."""
    expected_chain_id: int | None = None
    """Refuse to start when the RPC serves another chain (the deployment file's chain id)."""
    multicall3: str | None = None
    """Multicall3 address; ``None`` for the canonical 0xcA11... one."""
    start_block: int | None = None
    """First block to scan for accounts on the first run; ``None``: the Pool's deployment."""
    alpha: float = DEFAULT_ALPHA
    """ES confidence level, in (0, 1)."""
    margin: MarginKind = "equity"
    """Posted margin: ``equity`` or ``liquidation-buffer``."""
    scenarios: tuple[str, ...] | None = None
    """Named stress scenarios; ``None``: every built-in deterministic stress scenario."""
    stress_from: Path | None = None
    """A ``simulate`` results directory whose per-path worst moves replace the Monte Carlo set."""
    mc_paths: int = DEFAULT_MC_PATHS
    """One-day Monte Carlo draws in the stress set (0: none)."""
    mc_seed: int = DEFAULT_MC_SEED
    """Seed of the Monte Carlo draws."""
    min_usd: float = DEFAULT_MIN_USD
    """No flag opens for an account with less debt than this, USD (``--min-usd``)."""
    state_budget: int = 4096
    """States kept from ``--stress-from`` results (``simulator.states.reduce_states``)."""
    thresholds: FlagThresholds = field(default_factory=FlagThresholds)
    """Severity thresholds (ratios ES / margin) and the clearing ratio."""
    clear_blocks: int = DEFAULT_CLEAR_BLOCKS
    """Blocks an account must stay safe before its flag clears."""
    full_refresh_blocks: int = 50
    """Re-read every account's position at least once every this many blocks (K): a rolling
    1/K of the accounts (by address) per block. Reserves are re-read every K blocks."""
    poll_interval_s: float = 2.0
    """Seconds between head polls."""
    ws_url: str | None = None
    """Optional WebSocket endpoint whose ``newHeads`` subscription wakes the loop as soon as a
    block arrives (polling continues as the fallback). Secret-bearing like ``rpc_url``."""
    rps: float = 25.0
    """Most RPC requests per second."""
    rpc_timeout_s: float = 30.0
    """Seconds one RPC request may take."""
    rpc_retries: int = 5
    """Retries of a transient RPC failure inside one request (then the iteration fails and
    the loop backs off)."""
    max_backoff_s: float = 30.0
    """Longest pause between failed iterations, seconds."""
    metrics_host: str = "127.0.0.1"
    """Address ``/metrics`` and ``/healthz`` bind to."""
    metrics_port: int | None = 9108
    """Port for ``/metrics`` and ``/healthz`` (0: any free port; ``None``: no server)."""
    stall_s: float = 120.0
    """``/healthz`` turns 503 after this many seconds without a new block or a reachable node."""
    max_lag_blocks: int = 10
    """``/healthz`` turns 503 when the keeper is more blocks than this behind the head."""
    webhook_url: str | None = None
    """Slack-compatible webhook for flag changes. Secret: only its host is ever shown."""
    json_lines: bool = False
    """Write events as JSON lines on stdout (else one human line per event)."""
    events_file: Path | None = None
    """Also append events as JSON lines to this file."""
    once: bool = False
    """Process the current head, deliver the events, and exit."""
    chunk_rows: int = 1024
    """Accounts per chunk of the stressed-ES computation (bounds memory)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"--alpha {self.alpha}: expected a number in (0, 1)")
        if self.margin not in ("equity", "liquidation-buffer"):
            raise ConfigError(f"--margin {self.margin}: expected equity or liquidation-buffer")
        if self.full_refresh_blocks < 1 or self.clear_blocks < 1:
            raise ConfigError("full_refresh_blocks and clear_blocks must be >= 1")
        if self.poll_interval_s <= 0:
            raise ConfigError("poll_interval_s must be > 0")
        if not self.min_usd >= 0:
            raise ConfigError(f"--min-usd {self.min_usd}: expected a USD amount >= 0")
        if self.state_budget < 1:
            raise ConfigError(f"--states {self.state_budget}: expected >= 1")

    def __repr__(self) -> str:
        # The dataclass repr would print the secret-bearing URLs whole.
        shown = ", ".join(f"{k}={v!r}" for k, v in self.describe().items())
        return f"KeeperSettings({shown})"

    def describe(self) -> dict[str, Any]:
        """The settings with secrets redacted (for logs and ``--json``)."""
        return {
            "rpc": redact_url(self.rpc_url),
            "protocol": self.protocol,
            "provider": self.provider,
            "db": str(self.db_path),
            "alpha": self.alpha,
            "margin": self.margin,
            "scenarios": list(self.scenarios) if self.scenarios is not None else "built-in",
            "stress_from": str(self.stress_from) if self.stress_from else None,
            "mc_paths": self.mc_paths,
            "mc_seed": self.mc_seed,
            "min_usd": self.min_usd,
            "state_budget": self.state_budget,
            "webhook": redact_url(self.webhook_url) if self.webhook_url else None,
            "ws": redact_url(self.ws_url) if self.ws_url else None,
        }


class _HumanSink:
    """One readable line per event on stdout (the default without ``--json``)."""

    name = "stdout"

    async def deliver(self, event: dict[str, Any]) -> None:
        from keeper.sinks import event_text

        print(event_text(event, emoji=False), flush=True)

    async def close(self) -> None:
        pass


class Keeper:
    """One keeper: ``await start()``, then ``await iterate()`` per poll (``run`` loops)."""

    def __init__(self, settings: KeeperSettings, *, sinks: Sequence[Sink] | None = None) -> None:
        self.settings = settings
        self.metrics = KeeperMetrics()
        self.health = Health(stall_s=settings.stall_s, max_lag_blocks=settings.max_lag_blocks)
        self.chain = Chain(
            ChainSettings(
                settings.rpc_url,
                rps=settings.rps,
                timeout=settings.rpc_timeout_s,
                retries=settings.rpc_retries,
            )
        )
        cfg: dict[str, Any] = {
            "provider": settings.provider,
            "expected_chain_id": settings.expected_chain_id,
            "start_block": settings.start_block,
        }
        if settings.multicall3:
            cfg["multicall3"] = settings.multicall3
        self.adapter: ProtocolAdapter = get_adapter(settings.protocol)(
            self.chain, AdapterConfig(**cfg)
        )
        self._db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keeper-db")
        self._numpy_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keeper-es")
        self.store: Store | None = None
        self._sinks = list(sinks) if sinks is not None else self._default_sinks()
        self.publisher = Publisher(
            self._sinks, self.db, on_failure=self._sink_failed, retry_after_s=5.0
        )
        self.server: MetricsServer | None = None
        self.chain_id: int | None = None
        self.book: _Positions | None = None
        self.stress: StressInputs | None = None
        self.flags: dict[str, Flag] = {}
        self.prices: np.ndarray | None = None
        self.last: BlockRef | None = None
        self.head: BlockRef | None = None  # the newest head seen at the node
        self._head_polled_at = -math.inf  # monotonic time of the last head poll
        self._iterating = False
        self._working_on = -1  # the head the current (or last) iteration works on
        self._lock: IO[bytes] | None = None  # held while this keeper owns the database
        self._last_full: int | None = None
        self._reserves_at: int | None = None  # block the reserves were last read at
        self._force_full = True
        self._errors_seen: dict[str, int] = {}
        self._known_accounts: list[str] = []
        self._unsaved_accounts: set[str] = set()  # discovered, not yet in the database
        self._warned_emode = False
        self._outbox_dirty = asyncio.Event()
        self._stop = asyncio.Event()
        self._new_head = asyncio.Event()
        self.subscribed = False  # a newHeads subscription is live (``ws_url``)

    # -- plumbing ---------------------------------------------------------------------------

    def _default_sinks(self) -> list[Sink]:
        s = self.settings
        sinks: list[Sink] = [JsonLinesSink() if s.json_lines else _HumanSink()]
        if s.events_file is not None:
            f = JsonLinesSink(s.events_file)
            f.name = "events-file"
            sinks.append(f)
        if s.webhook_url:
            sinks.append(WebhookSink(s.webhook_url))
        return sinks

    def _sink_failed(self, name: str) -> None:
        if name == "webhook":
            self.metrics.webhook_failures.inc()

    async def db(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Run ``Store.<method>`` in the database thread."""
        assert self.store is not None
        fn = functools.partial(getattr(self.store, method), *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._db_thread, fn)

    async def _in_thread(
        self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        call = functools.partial(fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(pool, call)

    async def _in_db_thread(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db_thread, fn)

    def _sync_rpc_errors(self) -> None:
        for kind, count in self.chain.stats.errors.items():
            seen = self._errors_seen.get(kind, 0)
            if count > seen:
                self.metrics.rpc_errors.labels(kind=kind).inc(count - seen)
                self._errors_seen[kind] = count

    # -- start-up -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the database, serve metrics, and check the chain and the market."""
        s = self.settings
        path = s.db_path
        self._lock = _lock_database(path)
        self.store = await self._in_db_thread(lambda: Store(path))
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
                head = await self._poll_head()
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
        for sink in self._sinks:
            if isinstance(sink, WebhookSink):
                sink.extra.setdefault("chain_id", self.chain_id)
                sink.extra.setdefault("market", self.adapter.addresses.pool)
        await self.db("bind", self.chain_id, self.adapter.addresses.pool)
        self.flags = await self.db("flags")
        known = await self.db("accounts")
        progress = await self.db("progress")
        self._known_accounts = list(known)
        self._publish_flag_gauges()
        log.info(
            "keeper on chain %d, market %s; %d known accounts, %d flags, resuming after %s",
            self.chain_id,
            self.adapter.addresses.pool,
            len(known),
            len(self.flags),
            "nothing" if progress is None else f"block {progress.block_number}",
        )

    def _note_error(self, exc: BaseException) -> None:
        self.health.last_error = redact_text(str(exc))[:300]
        self._sync_rpc_errors()

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless asked to stop; True if a stop was requested."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        return self._stop.is_set()

    # -- one iteration ----------------------------------------------------------------------

    async def iterate(self) -> bool:
        """Poll the head and process it if it is new; True if a block was processed."""
        self._iterating = True
        try:
            head = await self._poll_head()
            self._working_on = head.number
            progress = await self.db("progress")
            if progress is not None:
                progress = await self._check_reorg(progress, head)
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
            self._iterating = False

    async def _poll_head(self) -> BlockRef:
        """The node's latest block; records it for ``/healthz`` and the lag metrics."""
        head = await self.chain.block()
        self._head_polled_at = time.monotonic()
        self.health.saw_head(head.number)
        self.metrics.head_block.set(head.number)
        self.head = head
        self._observe_lag()
        return head

    async def _check_reorg(self, progress: Any, head: BlockRef) -> Any:
        if head.number == progress.block_number and head.hash == progress.block_hash:
            return progress  # nothing new, nothing reorganised: no extra request
        h = min(progress.block_number, head.number)
        stored = (
            progress.block_hash if h == progress.block_number else await self.db("block_hash", h)
        )
        chain_hash = (await self.chain.block(h)).hash
        if stored is not None and stored == chain_hash and h == progress.block_number:
            return progress
        if stored is not None and stored == chain_hash:
            fork = (h, chain_hash)  # the chain went back to a block we processed
        else:
            fork = None
            for number, stored_hash in await self.db("recent_hashes"):
                if number > head.number:
                    continue
                if (await self.chain.block(number)).hash == stored_hash:
                    fork = (number, stored_hash)
                    break
        self.metrics.reorgs.inc()
        self._force_full = True
        if fork is None:
            log.warning(
                "reorg deeper than the stored hashes (last processed %d): starting over",
                progress.block_number,
            )
            await self.db("forget_progress")
            return None
        log.warning(
            "reorg: block %d is no longer %s; rolled back to block %d and re-reading all accounts",
            progress.block_number,
            progress.block_hash,
            fork[0],
        )
        await self.db("rewind", fork[0], fork[1])
        return await self.db("progress")

    def _observe_lag(self) -> None:
        """Lag of the last processed block behind the newest head seen."""
        head, last = self.head, self.last
        if head is not None and last is not None:
            self.metrics.blocks_behind.set(max(0, head.number - last.number))
            self.metrics.seconds_behind.set(max(0, head.timestamp - last.timestamp))

    async def _process(self, head: BlockRef, progress: Any) -> bool:
        s = self.settings
        started = time.perf_counter()
        n = head.number
        # Reserves (and the stress set) on the first block, on a full refresh and every K
        # blocks; a changed list of reserves rebuilds the book and forces a full refresh.
        reread_reserves = (
            self.book is None
            or self._force_full
            or self._reserves_at is None
            or n - self._reserves_at >= s.full_refresh_blocks
        )
        if reread_reserves:
            reserves = await self.adapter.read_reserves(n)
            if self.book is None or [r.asset for r in reserves] != self.book.assets:
                self._rebuild(reserves)
            else:
                self.book.reserves = reserves
        full = self._force_full or self._last_full is None
        book = self.book
        assert book is not None and self.stress is not None
        if self._known_accounts:
            book.add(self._known_accounts)
            self._known_accounts = []
        # Accounts: discovery on the first run, one log scan since the last block afterwards
        # (an account named by a change event that we do not know yet is a new account).
        touched: set[str] = set()
        new_accounts: list[str]
        if progress is None:
            with progress_bar("scanning logs") as bar:
                found = await self.adapter.discover_accounts(head, on_progress=bar.advance)
            new_accounts = [to_checksum_address(a) for a in found]
        else:
            lo = progress.block_number + 1
            changed = await self.adapter.touched_accounts(lo, n) if lo <= n else set()
            touched = {to_checksum_address(a) for a in changed}
            new_accounts = sorted(touched)
        # Accounts enter the database with the block that commits; until then (a failed
        # iteration retried) they stay pending, so none is lost to a restart.
        self._unsaved_accounts.update(book.add(new_accounts))
        added = sorted(self._unsaved_accounts)
        if full or progress is None:
            to_read = list(book.accounts)
        else:
            # New and touched accounts, and the rolling re-read's share of every block since
            # the last processed one (skipped blocks' shares included).
            due = book.due(progress.block_number + 1, n)
            to_read = sorted(set(added) | touched | set(due))
        prices_raw = await self.adapter.read_prices(book.assets, n)
        prices = np.array([prices_raw.usd(a) for a in book.assets], dtype=np.float64)
        if to_read:
            if full and self._last_full is None:  # this process's first full read: long
                with progress_bar("reading accounts", total=len(to_read)) as bar:
                    read = await self.adapter.read_positions(
                        to_read, book.reserves, n, on_progress=bar.advance
                    )
            else:
                read = await self.adapter.read_positions(to_read, book.reserves, n)
            book.update(to_read, read.positions)
            if full and read.emode and not self._warned_emode:
                self._warned_emode = True
                log.warning(
                    "%d account(s) use e-mode; their liquidation buffers use the reserves' own "
                    "LTs (lower than the e-mode LTs), so their margins read low",
                    len(read.emode),
                )
        # Which accounts to re-evaluate.
        prices_moved = self.prices is None or not np.array_equal(prices, self.prices)
        if full or prices_moved:
            rows = None
            evaluated = list(book.accounts)
        else:
            subset = set(to_read) | {a for a, f in self.flags.items() if f.status == "open"}
            evaluated = sorted(a for a in subset if a in book.row)
            rows = np.fromiter((book.row[a] for a in evaluated), dtype=np.int64)
        changed_flags: list[Flag] = []
        events: list[FlagEvent] = []
        if evaluated:
            coll, debt, enabled = book.arrays(rows)
            # One dedicated thread for the numpy work: a single malloc arena, so the big
            # per-chunk temporaries are reused rather than spread over every pool thread.
            result: StressEvaluation = await self._in_thread(
                self._numpy_thread,
                evaluate_book,
                coll.copy(),
                debt.copy(),
                enabled.copy(),
                prices,
                book.reserves,
                self.stress,
                s,
            )
            changed_flags, events = assess(
                self.flags,
                evaluated,
                result,
                n,
                clear_blocks=s.clear_blocks,
                contributions=self.stress.contributions,
            )
        await self.db(
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
        self.prices = prices
        self.last = head
        if full:
            self._last_full = n
            self._force_full = False
        if reread_reserves:
            self._reserves_at = n
        self.health.processed = n
        elapsed = time.perf_counter() - started
        m = self.metrics
        m.refresh_seconds.labels(kind="full" if full else "incremental").observe(elapsed)
        m.last_block.set(n)
        m.accounts_watched.set(book.n)
        for ev in events:
            m.events.labels(kind=ev.kind).inc()
        self._publish_flag_gauges()
        self._observe_lag()
        self._sync_rpc_errors()
        if events:
            self._outbox_dirty.set()
        log.info(
            "block %d: %s refresh, %d read, %d evaluated, %d events, %.2f s",
            n,
            "full" if full else "incremental",
            len(to_read),
            len(evaluated),
            len(events),
            elapsed,
        )
        return True

    def _rebuild(self, reserves: Sequence[Reserve]) -> None:
        s = self.settings
        symbols = [r.symbol for r in reserves]
        self.stress = build_stress_set(
            symbols,
            s.scenarios,
            mc_paths=s.mc_paths,
            mc_seed=s.mc_seed,
            stress_from=s.stress_from,
            alpha=s.alpha,
            budget=s.state_budget,
        )
        self._publish_contribution_shares()
        old = self.book
        self.book = _Positions(reserves, s.full_refresh_blocks)
        if old is not None:
            self.book.add(old.accounts)
        self.prices = None
        self._force_full = True

    def _publish_flag_gauges(self) -> None:
        counts = dict.fromkeys(SEVERITIES[1:], 0)
        at_risk = dict.fromkeys(SEVERITIES[1:], 0.0)
        for f in self.flags.values():
            if f.status == "open":
                counts[f.severity] = counts.get(f.severity, 0) + 1
                at_risk[f.severity] = at_risk.get(f.severity, 0.0) + f.at_risk_usd
        for sev, c in counts.items():
            self.metrics.open_flags.labels(severity=sev).set(c)
            self.metrics.at_risk_usd.labels(severity=sev).set(at_risk[sev])
        self._publish_flagged_share()

    def _publish_contribution_shares(self) -> None:
        """``es_contribution_share{rank}``: the top 10 contributors' shares of the protocol's
        ES in the ``--stress-from`` results."""
        stress = self.stress
        if stress is None or not stress.contributions or stress.protocol_es_usd <= 0:
            return
        top = sorted(stress.contributions.values(), reverse=True)[:10]
        for k, value in enumerate(top, start=1):
            self.metrics.es_share.labels(rank=str(k)).set(value / stress.protocol_es_usd)

    def _publish_flagged_share(self) -> None:
        stress = self.stress
        if stress is None or not stress.contributions or stress.protocol_es_usd <= 0:
            return
        flagged = sum(
            stress.contributions.get(a, 0.0) for a, f in self.flags.items() if f.status == "open"
        )
        self.metrics.es_share.labels(rank="flagged").set(flagged / stress.protocol_es_usd)

    # -- the loops --------------------------------------------------------------------------

    async def _publisher_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox_dirty.wait(), timeout=5.0)
            self._outbox_dirty.clear()
            await self.publisher.flush()

    async def _main_loop(self) -> None:
        s = self.settings
        delay = s.poll_interval_s
        while not self._stop.is_set():
            # A doorbell (newHeads, or the watcher seeing a newer head) that rings while this
            # iteration runs starts the next one at once instead of after a poll interval.
            self._new_head.clear()
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
            if await self._wait_for_head(s.poll_interval_s):
                return

    async def _wait_for_head(self, seconds: float) -> bool:
        """Wait for the next poll, or earlier for a doorbell; True on stop."""
        stop = asyncio.ensure_future(self._stop.wait())
        head = asyncio.ensure_future(self._new_head.wait())
        try:
            await asyncio.wait({stop, head}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            head.cancel()
        return self._stop.is_set()

    async def _lag_watch(self) -> None:
        """Keep polling the head while an iteration runs longer than a poll interval.

        The main loop polls the head only between iterations, so without this a slow
        iteration would hide how far the chain has moved on: the lag metrics and
        ``/healthz`` would judge the keeper against the block it is still working on. A new
        head seen here rings the doorbell, so the next iteration starts as soon as this one
        ends (on the newest head, never on the blocks in between). Idle, it sends nothing.
        """
        s = self.settings
        while not await self._sleep(s.poll_interval_s):
            if not self._iterating or time.monotonic() - self._head_polled_at < s.poll_interval_s:
                continue
            try:
                head = await self._poll_head()
            except ChainError as exc:
                self._note_error(exc)
                continue
            if head.number > self._working_on:
                self._new_head.set()

    async def _head_subscription(self, url: str) -> None:
        """Wake the loop on every ``newHeads`` notification of a WebSocket endpoint.

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
                            self._new_head.set()
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.warning(
                    "newHeads subscription on %s failed (%s); polling meanwhile",
                    where,
                    type(exc).__name__,
                )
            if await self._sleep(delay):
                return
            delay = min(self.settings.max_backoff_s, delay * 2)

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
            publisher = asyncio.create_task(self._publisher_loop())
            background = [publisher, asyncio.create_task(self._lag_watch())]
            if self.settings.ws_url:
                background.append(
                    asyncio.create_task(self._head_subscription(self.settings.ws_url))
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
        if self.store is not None:
            store = self.store
            await asyncio.get_running_loop().run_in_executor(self._db_thread, store.close)
            self.store = None
        self._db_thread.shutdown(wait=True)
        self._numpy_thread.shutdown(wait=True)
        if self._lock is not None:
            self._lock.close()  # releases the database for the next keeper
            self._lock = None


def _lock_database(db_path: Path) -> IO[bytes]:
    """Hold an exclusive lock on ``<db>.lock`` for as long as the keeper runs.

    Two keepers on one database would both publish every change. The lock is an ``flock``:
    the kernel drops it when the process dies, SIGKILL included, so a restart never finds a
    stale lock.
    """
    import fcntl

    lock_path = db_path.with_name(db_path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(lock_path, "a+b")  # noqa: SIM115 - held open for the keeper's lifetime
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise ConfigError(
            f"--db {db_path}: another keeper is running on this database; stop it or pass "
            "another --db"
        ) from None
    return fh


def run_keeper(settings: KeeperSettings) -> int:
    """Run a keeper to completion in a fresh event loop; the exit code."""
    return asyncio.run(Keeper(settings).run())
