"""keeper.metrics: /metrics parses with the Prometheus text parser; /healthz turns 503."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from keeper.chain import ErrorKind
from keeper.metrics import Health, KeeperMetrics, MetricsServer


def test_metrics_and_healthz_over_http() -> None:
    async def main() -> None:
        metrics = KeeperMetrics()
        metrics.info.labels(
            version="0",
            protocol="aave-v3",
            chain_id="1",
            rpc="https://rpc.example",
            margin="equity",
            alpha="0.975",
        ).set(1)
        metrics.accounts_watched.set(12)
        metrics.open_flags.labels(severity="high").set(2)
        metrics.refresh_seconds.labels(kind="full").observe(0.3)
        metrics.rpc_errors.labels(kind="timeout").inc()
        health = Health(stall_s=60, max_lag_blocks=2)
        server = MetricsServer(metrics, health, "127.0.0.1", 0)
        port = await server.start()
        assert port > 0
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(base + "/healthz") as r:
                    assert r.status == 503 and "starting" in await r.text()
                health.saw_head(10)
                health.processed = 10
                async with s.get(base + "/healthz") as r:
                    assert r.status == 200
                health.saw_head(13)
                async with s.get(base + "/healthz") as r:
                    assert r.status == 503 and "3 blocks behind" in await r.text()
                health.processed = 13
                health.last_new_head_at = time.monotonic() - 120
                async with s.get(base + "/healthz") as r:
                    assert r.status == 503 and "stalled" in await r.text()
                health.last_node_ok_at = time.monotonic() - 120
                health.last_error = "ConnectionRefused http://127.0.0.1:8545"
                async with s.get(base + "/healthz") as r:
                    assert r.status == 503 and "unreachable" in await r.text()
                async with s.get(base + "/metrics") as r:
                    assert r.status == 200
                    text = await r.text()
        finally:
            await server.stop()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert families["shortfall_keeper_accounts_watched"].samples[0].value == 12
        sev = {
            s.labels["severity"]: s.value for s in families["shortfall_keeper_open_flags"].samples
        }
        assert sev == {"low": 0, "medium": 0, "high": 2, "critical": 0}
        errs = {
            s.labels["kind"]: s.value
            for s in families["shortfall_keeper_rpc_errors"].samples
            if s.name.endswith("_total")
        }
        assert errs["timeout"] == 1 and errs["rate_limited"] == 0 and errs["server_error"] == 0
        assert set(errs) == {k.value for k in ErrorKind}
        assert "shortfall_keeper_refresh_duration_seconds" in families
        assert families["shortfall_keeper_healthy"].samples[0].value == 0

    asyncio.run(main())


def test_two_keepers_do_not_share_a_registry() -> None:
    a, b = KeeperMetrics(), KeeperMetrics()
    a.accounts_watched.set(3)
    assert b"shortfall_keeper_accounts_watched 0.0" in b.render()


def test_health_follows_the_latest_head_after_a_reorg_to_a_shorter_chain() -> None:
    health = Health(stall_s=60, max_lag_blocks=2)
    health.saw_head(120)
    health.processed = 120
    health.saw_head(100)  # the node now serves a shorter chain
    health.processed = 100
    assert health.head == 100
    assert health.check() == (True, "ok")
