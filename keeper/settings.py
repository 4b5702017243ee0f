"""The keeper's settings: everything it needs to run (the CLI builds them from its flags)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keeper.errors import ConfigError
from keeper.flags import DEFAULT_CLEAR_BLOCKS
from keeper.redact import redact_url
from simulator.stress import (
    DEFAULT_ALPHA,
    DEFAULT_MC_PATHS,
    DEFAULT_MC_SEED,
    DEFAULT_MIN_USD,
    FlagThresholds,
    MarginKind,
)

__all__ = ["KeeperSettings"]


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
