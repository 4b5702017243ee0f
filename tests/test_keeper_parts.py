"""The daemon's parts alone, with fakes: the position cache, the evaluation, the head follower
(reorgs, lag, doorbell), the database front and lock, the publisher and sinks, the metrics."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from keeper.chain import BlockRef
from keeper.errors import ChainError, ConfigError
from keeper.evaluate import accounts_to_evaluate, assess, evaluate_book, take_rows
from keeper.flags import Flag, FlagEvent
from keeper.head import HeadFollower
from keeper.metrics import Health, KeeperMetrics
from keeper.positions import Positions
from keeper.sinks import HumanSink, JsonLinesSink, Publisher, WebhookSink, default_sinks
from keeper.store import AsyncStore, Progress, StoreError, lock_database
from keeper.stress_inputs import StressInputs
from simulator.stress import FlagThresholds, StressSet

A = "0x" + "0" * 39 + "1"
B = "0x" + "0" * 39 + "2"


@dataclass(frozen=True)
class _Reserve:
    asset: str
    decimals: int
    liquidation_threshold: float
    liquidation_bonus: float = 0.05
    protocol_fee: float = 0.1


@dataclass(frozen=True)
class _Pos:
    account: str
    asset: str
    collateral: int
    debt: int
    collateral_enabled: bool


RESERVES = [_Reserve("WETH", 18, 0.83), _Reserve("USDC", 6, 0.9)]


def test_positions_grow_update_and_share_the_rolling_reread() -> None:
    book = Positions(RESERVES, refresh_blocks=2)  # type: ignore[arg-type]
    assert book.add([A, B, A]) == [A, B] and book.add([A]) == []
    book.update(
        [A], [_Pos(A, "WETH", 50 * 10**18, 0, True), _Pos(A, "USDC", 0, 63_800 * 10**6, False)]
    )
    coll, debt, enabled = book.arrays()
    np.testing.assert_allclose(coll[0], [50.0, 0.0])
    np.testing.assert_allclose(debt[0], [0.0, 63_800.0])
    assert enabled[0].tolist() == [True, False] and not coll[1].any()
    # address 1 is due in odd blocks, 2 in even ones; two blocks cover both
    assert book.due(7, 7) == [A] and book.due(8, 8) == [B] and book.due(7, 8) == [A, B]
    book.update([A], [])  # nothing left: the row is cleared
    assert not book.arrays()[0].any()


def test_evaluation_opens_a_flag_naming_its_rule_and_usd_at_risk() -> None:
    eth30 = StressSet.from_scenarios(("WETH", "USDC"), [("eth-30", [0.7, 1.0])])
    stress = StressInputs(None, eth30, {A: 1234.0}, 5000.0)
    settings = SimpleNamespace(
        alpha=0.975,
        margin="liquidation-buffer",
        thresholds=FlagThresholds(),
        min_usd=100.0,
        chunk_rows=1024,
    )
    coll = np.array([[50.0, 0.0], [0.0, 0.0]])
    debt = np.array([[0.0, 63_800.0], [0.0, 0.0]])
    enabled = np.ones((2, 2), dtype=bool)
    result = evaluate_book(coll, debt, enabled, np.array([2000.0, 1.0]), RESERVES, stress, settings)
    changed, events = assess(
        {}, [A, B], result, 9, clear_blocks=3, contributions=stress.contributions
    )
    assert [f.account for f in changed] == [A]  # B has nothing at stake
    (ev,) = events
    assert ev.kind == "open" and ev.rule == "stress:eth-30" and ev.stress_name == "eth-30"
    assert ev.es_contribution_usd == 1234.0
    # 30% off $100k at LT 0.83 is $24,900 of buffer against $19,200, and the state is
    # liquidatable (HF after = 58,100 / 63,800 < 1): the liquidation bonus is added
    assert ev.stress_loss_usd > 24_900.0 and ev.at_risk_usd == ev.stress_loss_usd - 19_200.0


# -- the other parts, each with fakes -----------------------------------------------------


class FakeChain:
    """Blocks by number (``hashes[n]``), the head the last one; counts requests."""

    def __init__(self, hashes: dict[int, str]) -> None:
        self.hashes = dict(hashes)
        self.requests = 0
        self.down = False

    async def block(self, number: int | None = None) -> BlockRef:
        self.requests += 1
        if self.down:
            raise ChainError("connection refused")
        n = max(self.hashes) if number is None else number
        return BlockRef(n, self.hashes[n], 1000 + 12 * n)


class FakeStore:
    """The store calls the follower makes, in memory."""

    def __init__(self, progress: Progress, hashes: dict[int, str]) -> None:
        self._progress: Progress | None = progress
        self.hashes = dict(hashes)
        self.calls: list[str] = []

    async def __call__(self, method: str, *args: Any) -> Any:
        self.calls.append(method)
        if method == "progress":
            return self._progress
        if method == "block_hash":
            return self.hashes.get(args[0])
        if method == "recent_hashes":
            return sorted(self.hashes.items(), reverse=True)
        if method == "rewind":
            n, h = args
            self.hashes = {k: v for k, v in self.hashes.items() if k <= n}
            self._progress = Progress(n, h)
            return None
        if method == "forget_progress":
            self.hashes, self._progress = {}, None
            return None
        raise AssertionError(method)


def _follower(chain: FakeChain, store: Any) -> HeadFollower:
    return HeadFollower(
        chain,
        store,
        Health(stall_s=60, max_lag_blocks=5),
        KeeperMetrics(),
        poll_interval_s=0.01,
        stop=asyncio.Event(),
    )


def _reorgs(f: HeadFollower) -> float:
    fam = {x.name: x for x in text_string_to_metric_families(f.metrics.render().decode())}
    return fam["shortfall_keeper_reorgs"].samples[0].value


def test_head_follower_finds_the_fork_point_of_a_reorg() -> None:
    ours = {n: f"0x{n:02x}aa" for n in range(1, 11)}  # blocks 1..10 as processed

    async def main() -> None:
        # the same chain, one block further: no reorg, one request for the stored height
        chain = FakeChain({**ours, 11: "0x0bbb"})
        store = FakeStore(Progress(10, ours[10]), ours)
        f = _follower(chain, store)
        head = await f.poll()
        assert (await f.check_reorg(Progress(10, ours[10]), head)) == (
            Progress(10, ours[10]),
            False,
        )
        assert f.health.head == 11 and _reorgs(f) == 0
        # blocks 8.. replaced: progress rewinds to 7, the newest block both chains share
        chain = FakeChain(
            {
                **{n: ours[n] for n in range(1, 8)},
                8: "0x08cc",
                9: "0x09cc",
                10: "0x0acc",
                11: "0x0bcc",
            }
        )
        f = _follower(chain, store)
        progress, reorged = await f.check_reorg(Progress(10, ours[10]), await f.poll())
        assert reorged and progress == Progress(7, ours[7]) and _reorgs(f) == 1
        assert "rewind" in store.calls
        # the chain went back below our last block, on our own history: rewind to its head
        chain = FakeChain({n: ours[n] for n in range(1, 6)})
        store = FakeStore(Progress(10, ours[10]), ours)
        f = _follower(chain, store)
        progress, reorged = await f.check_reorg(Progress(10, ours[10]), await f.poll())
        assert reorged and progress == Progress(5, ours[5])
        # nothing in the window survives: progress is forgotten, discovery starts over
        chain = FakeChain({n: f"0x{n:02x}dd" for n in range(1, 12)})
        store = FakeStore(Progress(10, ours[10]), ours)
        f = _follower(chain, store)
        progress, reorged = await f.check_reorg(Progress(10, ours[10]), await f.poll())
        assert reorged and progress is None and "forget_progress" in store.calls
        # a node restarted from scratch (or still loading its state): below our height and
        # none of our blocks on its chain. The keeper waits, progress kept, no reorg counted
        chain = FakeChain({0: "0x00ee", 1: "0x01ee"})
        store = FakeStore(Progress(10, ours[10]), ours)
        f = _follower(chain, store)
        progress, reorged = await f.check_reorg(Progress(10, ours[10]), await f.poll())
        assert not reorged and progress == Progress(10, ours[10]) and _reorgs(f) == 0
        assert "forget_progress" not in store.calls and "rewind" not in store.calls

    asyncio.run(main())


def test_head_follower_measures_the_lag_and_rings_the_doorbell() -> None:
    async def main() -> None:
        chain = FakeChain({n: f"0x{n:x}" for n in range(1, 4)})
        f = _follower(chain, FakeStore(Progress(1, "0x1"), {}))
        errors: list[BaseException] = []
        f._on_error = errors.append
        f.processed(await chain.block(1))
        await f.poll()
        assert f.metrics.blocks_behind._value.get() == 2  # type: ignore[attr-defined]
        assert f.metrics.seconds_behind._value.get() == 24  # type: ignore[attr-defined]
        # idle: the watcher sends nothing; while an iteration works on block 3 and block 4
        # arrives, it polls and rings
        watcher = asyncio.create_task(f.lag_watch())
        before = chain.requests
        await asyncio.sleep(0.05)
        assert chain.requests == before and not f.doorbell.is_set()
        f.iterating, f.working_on = True, 3
        chain.hashes[4] = "0x4"
        await asyncio.wait_for(f.doorbell.wait(), timeout=2)
        assert f.head is not None and f.head.number == 4
        # a failing poll is reported, not raised
        chain.down = True
        f.doorbell.clear()
        await asyncio.sleep(0.05)
        assert errors and not watcher.done()
        f._stop.set()
        await asyncio.wait_for(watcher, timeout=2)
        assert await f.wait(5.0)  # stopped: returns at once

    asyncio.run(main())


def test_async_store_runs_calls_in_its_thread_and_locks_the_database(tmp_path: Path) -> None:
    db = tmp_path / "k.sqlite"

    async def main() -> None:
        store = AsyncStore(db)
        with pytest.raises(StoreError, match="not open"):
            await store.call("progress")
        await store.open()
        await store.call("bind", 1, "0xMarket")
        assert await store.call("progress") is None
        await store.call(
            "commit_block", 5, "0x05", new_accounts=[A], read_accounts=[A], flags=[],
            events=[], sinks=[],
        )  # fmt: skip
        assert await store.call("progress") == Progress(5, "0x05")
        assert await store.call("accounts") == [A]
        await store.close()
        await store.close()  # idempotent
        assert store.store is None

    asyncio.run(main())
    held = lock_database(db)
    try:
        with pytest.raises(ConfigError, match="another keeper"):
            lock_database(db)
    finally:
        held.close()
    lock_database(db).close()  # released with the file


def test_publisher_runs_on_the_doorbell_and_default_sinks(tmp_path: Path) -> None:
    sinks = default_sinks(json_lines=False, events_file=tmp_path / "e.jsonl", webhook_url=None)
    assert [type(s) for s in sinks] == [HumanSink, JsonLinesSink]
    assert [s.name for s in sinks] == ["stdout", "events-file"]
    hook = default_sinks(
        json_lines=True, events_file=None, webhook_url="https://h.example/x/SECRET"
    )
    assert [s.name for s in hook] == ["jsonl", "webhook"]
    event = FlagEvent(f"9:{A}:open", "open", A, 9, "high", "none", 25_000.0, 19_200.0, rule="es", at_risk_usd=5_800.0)  # type: ignore[arg-type]  # fmt: skip
    out = io.StringIO()
    human = HumanSink(out)

    async def main() -> None:
        store = AsyncStore(tmp_path / "k.sqlite")
        await store.open()
        await store.call(
            "commit_block", 9, "0x09", new_accounts=[A], read_accounts=[A],
            flags=[Flag(A, "open", "high", 9, 9, 25_000.0, 19_200.0)], events=[event],
            sinks=["stdout"],
        )  # fmt: skip
        pub = Publisher([human], store.call)
        pub.describe_market(1, "0xMarket")  # no webhook: nothing to tag
        dirty = asyncio.Event()
        task = asyncio.create_task(pub.run(dirty, every_s=60.0))
        dirty.set()
        for _ in range(100):
            if out.getvalue():
                break
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await store.call("pending", "stdout", 1e12) == []
        await store.close()

    asyncio.run(main())
    assert A in out.getvalue() and "5,800" in out.getvalue()
    w = WebhookSink("https://h.example/x/SECRET")
    Publisher([w], lambda *a: None).describe_market(1, "0xMarket")
    assert w.extra == {"chain_id": 1, "market": "0xMarket"}


def test_metrics_publish_flags_shares_and_rpc_errors() -> None:
    m = KeeperMetrics()
    flags = {
        A: Flag(A, "open", "high", 1, 2, 10.0, 5.0, at_risk_usd=5.0),
        B: Flag(B, "cleared", "low", 1, 2, 1.0, 5.0, at_risk_usd=0.0),
    }
    m.publish_contribution_shares({A: 30.0, B: 10.0}, 100.0)
    m.publish_flags(flags, {A: 30.0, B: 10.0}, 100.0)
    seen: dict[str, int] = {}
    m.sync_rpc_errors({"timeout": 2}, seen)
    m.sync_rpc_errors({"timeout": 3, "connection": 1}, seen)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(m.render().decode())
        for s in f.samples
    }
    assert samples[("shortfall_keeper_open_flags", (("severity", "high"),))] == 1
    assert samples[("shortfall_keeper_open_flags", (("severity", "low"),))] == 0
    assert samples[("shortfall_keeper_open_flags_at_risk_usd", (("severity", "high"),))] == 5.0
    assert samples[("shortfall_keeper_es_contribution_share", (("rank", "1"),))] == 0.3
    assert samples[("shortfall_keeper_es_contribution_share", (("rank", "2"),))] == 0.1
    assert samples[("shortfall_keeper_es_contribution_share", (("rank", "flagged"),))] == 0.3
    assert samples[("shortfall_keeper_rpc_errors_total", (("kind", "timeout"),))] == 3
    assert samples[("shortfall_keeper_rpc_errors_total", (("kind", "connection"),))] == 1


def test_reads_and_evaluations_are_only_what_changed() -> None:
    book = Positions(RESERVES, refresh_blocks=4)  # type: ignore[arg-type]
    c = "0x" + "0" * 39 + "3"
    book.add([A, B, c])
    assert book.to_read(None, 10, full=False) == [A, B, c]  # nothing processed yet: all
    assert book.to_read(7, 10, full=True) == [A, B, c]
    # block 8 is 0 mod 4: none of 1, 2, 3 is due; B was touched, c is new
    assert book.to_read(7, 8, full=False, added=[c], touched={B}) == [B, c]
    assert book.to_read(7, 9, full=False) == [A]  # 9 mod 4 == 1
    flags = {
        c: Flag(c, "open", "low", 1, 2, 1.0, 1.0),
        B: Flag(B, "cleared", "low", 1, 2, 1.0, 1.0),
    }
    assert accounts_to_evaluate(book, [B], flags, everyone=True) == ([A, B, c], None)
    chosen, rows = accounts_to_evaluate(book, [B], flags, everyone=False)
    assert chosen == [B, c] and rows is not None and rows.tolist() == [1, 2]


# -- e-mode ------------------------------------------------------------------------------

WETH, WSTETH = "0x" + "e" * 40, "0x" + "5" * 40
ETH_RESERVES = [
    _Reserve(WETH, 18, 0.83, 0.05),
    _Reserve(WSTETH, 18, 0.81, 0.06),
]


def _eth_category(price_source: str = "") -> Any:
    from keeper.adapters.base import EModeCategory

    members = frozenset({WETH, WSTETH})
    return EModeCategory(
        category=1,
        label="ETH correlated",
        ltv_bps=9300,
        liquidation_threshold_bps=9500,
        liquidation_bonus_bps=10_100,
        collateral=members,
        borrowable=members,
        price_source=price_source,
    )


def _looper(hf: float, prices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """100 wstETH supplied, WETH borrowed so that the e-mode HF (LT 0.95) is ``hf``."""
    coll_usd = 100.0 * prices[1]
    coll = np.array([[0.0, 100.0]])
    debt = np.array([[0.95 * coll_usd / hf / prices[0], 0.0]])
    return coll, debt, np.ones((1, 2), dtype=bool)


def test_emode_looper_is_scored_with_its_category() -> None:
    from keeper.positions import EModeClasses

    prices = np.array([2400.0, 2832.0])
    coll, debt, enabled = _looper(1.05, prices)
    # a calm state set: both ETH assets move together by at most 1%
    calm = StressSet.from_scenarios(
        (WETH, WSTETH), [(f"calm#{k}", [m, m]) for k, m in enumerate((0.99, 1.0, 1.01))]
    )
    stress = StressInputs(calm, None, None, 0.0)
    settings = SimpleNamespace(
        alpha=0.975,
        margin="liquidation-buffer",
        thresholds=FlagThresholds(),
        min_usd=100.0,
        chunk_rows=1024,
    )
    classes = EModeClasses.from_categories([_eth_category()], ETH_RESERVES)  # type: ignore[arg-type]
    assert classes.categories == (0, 1) and classes.lt[1].tolist() == [0.95, 0.95]
    assert classes.bonus[1] == pytest.approx([0.01, 0.01]) and not classes.price_sources
    result = evaluate_book(
        coll, debt, enabled, prices, ETH_RESERVES, stress, settings,
        emode=classes, categories=np.array([1]),
    )  # fmt: skip
    d = float(debt[0, 0] * prices[0])
    buffer = 0.95 * 100.0 * prices[1] - d
    assert result.margin_usd[0] == pytest.approx(buffer) and buffer == pytest.approx(0.05 * d)
    assert result.severity[0] == 0 and result.safe[0]
    # a common 1% fall lowers the WETH debt too: it takes 1% of the buffer, nothing more
    assert result.es_usd[0] == pytest.approx(0.01 * buffer)
    changed, events = assess({}, [A], result, 5, clear_blocks=3)
    assert not changed and not events
    # with the reserves' own LT (0.81) the same account reads underwater: flagged critical
    plain = evaluate_book(coll, debt, enabled, prices, ETH_RESERVES, stress, settings)
    assert plain.margin_usd[0] == pytest.approx(0.81 * 100.0 * prices[1] - d)
    assert plain.margin_usd[0] < 0 and plain.severity[0] > 0
    with pytest.raises(KeyError, match=r"\[2\]"):
        classes.classes(np.array([0, 2]))


def test_emode_price_source_values_the_category_assets() -> None:
    """A v3.0 category with a price source values its assets at the source's price for its
    accounts (``EModeLogic.getEModeConfiguration``), in the margin and under stress."""
    from keeper.positions import EModeClasses

    source = "0x" + "f" * 40
    prices = np.array([2400.0, 2832.0])
    classes = EModeClasses.from_categories([_eth_category(source)], ETH_RESERVES)  # type: ignore[arg-type]
    assert classes.price_sources == [source]
    ratio = classes.price_ratio(prices, {source: 2400.0})
    np.testing.assert_allclose(ratio, [[1.0, 1.0], [1.0, 2400.0 / 2832.0]])
    coll, debt, enabled = np.array([[0.0, 100.0]]), np.array([[80.0, 0.0]]), np.ones((1, 2), bool)
    eth20 = StressSet.from_scenarios((WETH, WSTETH), [("eth-20", [0.8, 0.8])])
    stress = StressInputs(None, eth20, None, 0.0)
    settings = SimpleNamespace(
        alpha=0.975, margin="equity", thresholds=FlagThresholds(), min_usd=100.0, chunk_rows=8
    )
    result = evaluate_book(
        coll, debt, enabled, prices, ETH_RESERVES, stress, settings,
        emode=classes, categories=np.array([1]), source_usd={source: 2400.0},
    )  # fmt: skip
    assert result.margin_usd[0] == pytest.approx(100.0 * 2400.0 - 80.0 * 2400.0)
    # both legs at one price: a common 20% fall costs 20% of the equity, no liquidation
    # (HF = 0.95 x 100 / 80 > 1 at any common price)
    assert result.stress_loss_usd[0, 0] == pytest.approx(0.2 * 20.0 * 2400.0)


def test_evaluation_cache_recomputes_only_what_a_move_reaches() -> None:
    from keeper.evaluate import EvaluationCache

    rng = np.random.default_rng(2)
    n = 60
    coll = np.zeros((n, 2))
    debt = np.zeros((n, 2))
    coll[:, 0] = rng.uniform(1, 50, n)  # WETH collateral everywhere ...
    debt[:, 1] = coll[:, 0] * 2000 * rng.uniform(0.3, 0.8, n)  # ... against USDC debt
    coll[40:, 0], coll[40:, 1] = 0.0, rng.uniform(1e4, 5e4, 20)  # the last 20: USDC only
    debt[40:, 1] = coll[40:, 1] * 0.7
    enabled = np.ones((n, 2), dtype=bool)
    stress = StressInputs(
        StressSet.from_scenarios(
            ("WETH", "USDC"),
            [(f"s{k}", np.exp(rng.normal(0, 0.1, 2))) for k in range(300)],
        ),
        StressSet.from_scenarios(("WETH", "USDC"), [("eth-30", [0.7, 1.0])]),
        {},
        0.0,
    )
    settings = SimpleNamespace(
        alpha=0.975, margin="equity", thresholds=FlagThresholds(), min_usd=100.0, chunk_rows=16
    )
    cache = EvaluationCache()
    none = np.zeros(0, dtype=np.int64)

    def fresh(c: np.ndarray, p: np.ndarray) -> Any:
        return evaluate_book(c, debt, enabled, p, RESERVES, stress, settings)

    prices = np.array([2000.0, 1.0])
    first = cache.evaluate(coll, debt, enabled, prices, RESERVES, stress, settings, changed=none)
    assert cache.last_evaluated == n
    # WETH moves: the 40 accounts holding it are recomputed, the USDC-only ones are kept
    moved = np.array([1700.0, 1.0])
    got = cache.evaluate(coll, debt, enabled, moved, RESERVES, stress, settings, changed=none)
    assert cache.last_evaluated == 40
    want = fresh(coll, moved)
    for f in ("es_usd", "margin_usd", "stress_loss_usd", "severity", "safe", "rule"):
        np.testing.assert_array_equal(getattr(got, f), getattr(want, f))
    assert (got.es_usd[:40] != first.es_usd[:40]).all()
    # nothing moved, one account read with a new balance: only it
    coll2 = coll.copy()
    coll2[45, 1] *= 0.5
    got = cache.evaluate(
        coll2, debt, enabled, moved, RESERVES, stress, settings, changed=np.array([45])
    )
    assert cache.last_evaluated == 1
    np.testing.assert_array_equal(got.es_usd, fresh(coll2, moved).es_usd)
    # a new account row (discovered and read) is evaluated; a new stress set means everyone
    grown = np.vstack([coll2, [[3.0, 0.0]]])
    debt = np.vstack([debt, [[0.0, 4000.0]]])
    enabled = np.ones((n + 1, 2), dtype=bool)
    got = cache.evaluate(
        grown, debt, enabled, moved, RESERVES, stress, settings, changed=np.array([n])
    )
    assert cache.last_evaluated == 1 and got.es_usd.shape == (n + 1,)
    np.testing.assert_array_equal(got.es_usd, fresh(grown, moved).es_usd)
    other = StressInputs(stress.probabilistic, None, {}, 0.0)
    cache.evaluate(grown, debt, enabled, moved, RESERVES, other, settings, changed=none)
    assert cache.last_evaluated == n + 1
    chosen = take_rows(got, np.array([0, n]))
    assert chosen.es_usd.tolist() == [got.es_usd[0], got.es_usd[n]]
