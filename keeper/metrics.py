"""Prometheus metrics and ``/healthz`` of the keeper, served by aiohttp on the daemon's loop.

Metrics live in the keeper's own ``CollectorRegistry`` (never the process-global one), so
several keepers in one process (tests) do not collide. Labels never carry a URL: the RPC
and webhook hosts appear only redacted (scheme and host) in ``shortfall_keeper_info``.

``/healthz`` answers 200 ``ok`` when the keeper is healthy and 503 with the reason when:
the first block is not processed yet; the node has not been reachable for ``stall_s``; no
new block has arrived for ``stall_s`` (a stalled node); or the keeper is more than
``max_lag_blocks`` behind the head.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from keeper.chain import ErrorKind
from simulator.stress import SEVERITIES

__all__ = ["RPC_ERROR_KINDS", "Health", "KeeperMetrics", "MetricsServer"]

log = logging.getLogger(__name__)

#: RPC error kinds counted in ``shortfall_keeper_rpc_errors_total``: the ``keeper.chain``
#: classification, so every kind the chain counts has a series from the start (at 0).
RPC_ERROR_KINDS: tuple[str, ...] = tuple(k.value for k in ErrorKind)


@dataclass
class Health:
    """What ``/healthz`` judges, updated by the daemon.

    Attributes:
        stall_s: seconds without a reachable node or a new block before unhealthy.
        max_lag_blocks: blocks the keeper may trail the head before unhealthy.
        head: latest head block number seen.
        processed: last block fully processed (``None`` before the first).
        last_new_head_at: monotonic time the head number last increased.
        last_node_ok_at: monotonic time of the last successful head poll.
        last_error: the last loop error (redacted), for the 503 body.
    """

    stall_s: float = 120.0
    max_lag_blocks: int = 10
    head: int | None = None
    processed: int | None = None
    last_new_head_at: float = field(default_factory=time.monotonic)
    last_node_ok_at: float = field(default_factory=time.monotonic)
    last_error: str = ""

    def saw_head(self, number: int) -> None:
        """The node answered with head ``number`` (the latest answer wins: after a reorg
        to a shorter chain the head goes down)."""
        now = time.monotonic()
        self.last_node_ok_at = now
        if self.head is None or number != self.head:
            self.last_new_head_at = now
        self.head = number

    def check(self) -> tuple[bool, str]:
        """``(healthy, reason)``."""
        now = time.monotonic()
        if now - self.last_node_ok_at > self.stall_s:
            why = f"node unreachable for {now - self.last_node_ok_at:.0f} s"
            return False, f"{why}: {self.last_error}" if self.last_error else why
        if now - self.last_new_head_at > self.stall_s:
            return False, f"no new block for {now - self.last_new_head_at:.0f} s (node stalled)"
        if self.processed is None:
            return False, "starting: first block not processed yet"
        if self.head is not None and self.head - self.processed > self.max_lag_blocks:
            return False, f"{self.head - self.processed} blocks behind the head"
        return True, "ok"


class KeeperMetrics:
    """The keeper's metrics, in their own registry."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        p = "shortfall_keeper_"
        self.info = Gauge(
            p + "info",
            "Keeper build and target (RPC host redacted)",
            ["version", "protocol", "chain_id", "rpc", "margin", "alpha"],
            registry=r,
        )
        self.accounts_watched = Gauge(p + "accounts_watched", "Accounts being watched", registry=r)
        self.open_flags = Gauge(
            p + "open_flags", "Open flags by severity", ["severity"], registry=r
        )
        for s in SEVERITIES[1:]:
            self.open_flags.labels(severity=s).set(0)
        self.last_block = Gauge(p + "last_block", "Last fully processed block number", registry=r)
        self.head_block = Gauge(
            p + "head_block", "Latest block number seen at the node", registry=r
        )
        self.blocks_behind = Gauge(
            p + "blocks_behind_head", "Head block minus last processed block", registry=r
        )
        self.seconds_behind = Gauge(
            p + "seconds_behind_head",
            "Head block timestamp minus last processed block timestamp, seconds",
            registry=r,
        )
        self.refresh_seconds = Histogram(
            p + "refresh_duration_seconds",
            "Time to process one block (reads, stressed ES, commit), seconds",
            ["kind"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0),
            registry=r,
        )
        self.rpc_errors = Counter(
            p + "rpc_errors", "RPC errors by kind (retried or not)", ["kind"], registry=r
        )
        for k in RPC_ERROR_KINDS:
            self.rpc_errors.labels(kind=k)
        self.webhook_failures = Counter(
            p + "webhook_failures", "Failed webhook POSTs (each attempt)", registry=r
        )
        self.events = Counter(p + "flag_events", "Flag events by kind", ["kind"], registry=r)
        for k in ("open", "escalate", "deescalate", "clear"):
            self.events.labels(kind=k)
        self.at_risk_usd = Gauge(
            p + "open_flags_at_risk_usd",
            "USD at risk (binding loss minus margin) summed over open flags, by severity",
            ["severity"],
            registry=r,
        )
        for s in SEVERITIES[1:]:
            self.at_risk_usd.labels(severity=s).set(0)
        self.es_share = Gauge(
            p + "es_contribution_share",
            "Share of the protocol's ES (--stress-from results) of its top contributors, by "
            "rank (1 = largest); 'flagged' is the share of the accounts with an open flag",
            ["rank"],
            registry=r,
        )
        self.reorgs = Counter(p + "reorgs", "Reorgs detected", registry=r)
        self.loop_errors = Counter(
            p + "loop_errors", "Iterations that failed and were retried", registry=r
        )
        self.healthy = Gauge(p + "healthy", "1 when /healthz answers 200", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def publish_flags(
        self, flags: Mapping[str, Any], contributions: Mapping[str, float] | None, es_usd: float
    ) -> None:
        """Open flags and their USD at risk by severity, and (with ``--stress-from``
        contributions, ``es_usd`` the protocol's ES) the flagged accounts' share of it."""
        counts = dict.fromkeys(SEVERITIES[1:], 0)
        at_risk = dict.fromkeys(SEVERITIES[1:], 0.0)
        for f in flags.values():
            if f.status == "open":
                counts[f.severity] = counts.get(f.severity, 0) + 1
                at_risk[f.severity] = at_risk.get(f.severity, 0.0) + f.at_risk_usd
        for sev, c in counts.items():
            self.open_flags.labels(severity=sev).set(c)
            self.at_risk_usd.labels(severity=sev).set(at_risk[sev])
        if contributions and es_usd > 0:
            flagged = sum(contributions.get(a, 0.0) for a, f in flags.items() if f.status == "open")
            self.es_share.labels(rank="flagged").set(flagged / es_usd)

    def publish_contribution_shares(
        self, contributions: Mapping[str, float] | None, es_usd: float, top: int = 10
    ) -> None:
        """``es_contribution_share{rank}``: the ``top`` contributors' shares of the
        protocol's ES ``es_usd`` in the ``--stress-from`` results."""
        if not contributions or es_usd <= 0:
            return
        largest = sorted(contributions.values(), reverse=True)[:top]
        for k, value in enumerate(largest, start=1):
            self.es_share.labels(rank=str(k)).set(value / es_usd)

    def sync_rpc_errors(self, errors: Mapping[str, int], seen: dict[str, int]) -> None:
        """Bring ``rpc_errors_total`` up to the chain's error counts ``errors``; ``seen``
        holds what was counted before (updated)."""
        for kind, count in errors.items():
            before = seen.get(kind, 0)
            if count > before:
                self.rpc_errors.labels(kind=kind).inc(count - before)
                seen[kind] = count


class MetricsServer:
    """Serves ``/metrics`` and ``/healthz`` on ``host:port`` (port 0: any free port)."""

    def __init__(self, metrics: KeeperMetrics, health: Health, host: str, port: int) -> None:
        self.metrics = metrics
        self.health = health
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def _metrics(self, _: web.Request) -> web.Response:
        ok, _why = self.health.check()
        self.metrics.healthy.set(1 if ok else 0)
        return web.Response(
            body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _healthz(self, _: web.Request) -> web.Response:
        ok, why = self.health.check()
        self.metrics.healthy.set(1 if ok else 0)
        return web.Response(status=200 if ok else 503, text=why + "\n")

    async def start(self) -> int:
        """Start serving; returns the bound port."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
