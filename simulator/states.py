"""Joint market states of a ``simulate`` run, and their reduction to a fixed budget.

``simulate`` records, per path and step, the market price of every asset relative to the
snapshot (scenario price x the cascade's own DEX impact), with the path's weight and the
protocol's shortfall on that path, in ``states.parquet`` (columns ``path``, ``step``,
``weight``, ``shortfall_usd``, ``market_<SYMBOL>``). The engine traces market prices only, not
oracle prices; the oracle follows the market within its deviation threshold and heartbeat, so
the market states are the ones recorded.

**Probabilities.** Every state of a path has the probability ``w_path / n_states_of_path``
(``w`` normalised over paths): the distribution of the market at a random step of a random
path.

**Reduction to a budget** (default 4,096 states; ``reduce_states``):

1. the *tail paths* are those whose shortfall is at or beyond the protocol's VaR at the
   keeper's alpha (``simulator.risk.var`` with the path weights); every state of every tail
   path is kept with its own probability (the set exceeds the budget only when the tail
   alone does);
2. the rest of the budget is drawn from the other states with replacement, with probability
   proportional to their probability, from ``numpy.random.default_rng(seed)``; a state drawn
   ``c`` times of ``k`` draws gets ``c / k`` of the non-tail probability mass;
3. the kept probabilities sum to one (tail mass + non-tail mass).

Each kept state is one scenario with one point (its price multipliers) of a
``simulator.stress.StressSet``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from simulator import risk
from simulator.errors import ResultsError
from simulator.stress import StressSet

__all__ = ["DEFAULT_BUDGET", "MARKET_PREFIX", "JointStates", "load_states", "reduce_states"]

FloatArray = npt.NDArray[np.float64]

DEFAULT_BUDGET = 4096
MARKET_PREFIX = "market_"


@dataclass(frozen=True, slots=True)
class JointStates:
    """Every recorded state: ``multipliers`` ``(n_states, n_assets)``, ``path`` and ``step``
    per state, per path ``weights`` (normalised) and ``shortfall_usd``."""

    symbols: tuple[str, ...]
    multipliers: FloatArray
    path: npt.NDArray[np.int64]
    step: npt.NDArray[np.int64]
    path_weights: FloatArray
    path_shortfall_usd: FloatArray

    def state_probabilities(self) -> FloatArray:
        counts = np.bincount(self.path, minlength=self.path_weights.size)
        return np.asarray(self.path_weights[self.path] / counts[self.path], dtype=np.float64)


def states_frame(
    symbols: tuple[str, ...],
    market: FloatArray,
    weights: FloatArray | None,
    shortfall_usd: FloatArray,
) -> pd.DataFrame:
    """The ``states.parquet`` table from traced market multipliers ``(paths, steps, assets)``."""
    n_paths, n_steps, _ = market.shape
    w = np.ones(n_paths) if weights is None else np.asarray(weights, dtype=np.float64)
    cols: dict[str, Any] = {
        "path": np.repeat(np.arange(n_paths, dtype=np.int64), n_steps),
        "step": np.tile(np.arange(n_steps, dtype=np.int64), n_paths),
        "weight": np.repeat(w, n_steps),
        "shortfall_usd": np.repeat(np.asarray(shortfall_usd, dtype=np.float64), n_steps),
    }
    for j, s in enumerate(symbols):
        cols[MARKET_PREFIX + s] = market[:, :, j].reshape(-1)
    return pd.DataFrame(cols)


def load_states(file: str | Path, symbols: tuple[str, ...] | list[str]) -> JointStates:
    """Read ``states.parquet`` over ``symbols`` (an asset it lacks keeps its price)."""
    where = Path(file)
    try:
        frame = pd.read_parquet(where, engine="pyarrow")
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise ResultsError(f"{where}: unreadable Parquet file ({exc})") from None
    missing = [c for c in ("path", "step", "weight", "shortfall_usd") if c not in frame.columns]
    if missing or frame.empty:
        raise ResultsError(f"{where}: no rows or missing column(s) {missing}")
    known = {
        str(c)[len(MARKET_PREFIX) :].casefold(): str(c)
        for c in frame.columns
        if str(c).startswith(MARKET_PREFIX)
    }
    mult = np.ones((len(frame), len(symbols)))
    for j, s in enumerate(symbols):
        col = known.get(s.casefold())
        if col is not None:
            mult[:, j] = frame[col].to_numpy(dtype=np.float64)
    if not np.isfinite(mult).all() or (mult < 0).any():
        raise ResultsError(f"{where}: market multipliers must be finite and >= 0")
    path = frame["path"].to_numpy(dtype=np.int64)
    n_paths = int(path.max()) + 1
    pw = np.zeros(n_paths)
    ps = np.zeros(n_paths)
    pw[path] = frame["weight"].to_numpy(dtype=np.float64)
    ps[path] = frame["shortfall_usd"].to_numpy(dtype=np.float64)
    if not (pw >= 0).all() or not pw.sum() > 0:
        raise ResultsError(f"{where}: path weights must be >= 0 and not all zero")
    return JointStates(
        tuple(symbols), mult, path, frame["step"].to_numpy(dtype=np.int64), pw / pw.sum(), ps
    )


def reduce_states(
    states: JointStates, *, alpha: float, budget: int = DEFAULT_BUDGET, seed: int = 0
) -> StressSet:
    """The weighted stress set of at most ``budget`` states (see the module doc)."""
    if budget < 1:
        raise ResultsError(f"state budget {budget}; expected >= 1")
    prob = states.state_probabilities()
    var = risk.var(states.path_shortfall_usd, alpha, states.path_weights)
    tail_path = states.path_shortfall_usd >= var
    in_tail = tail_path[states.path]
    if var <= 0.0:
        in_tail = np.zeros_like(in_tail)  # no bad debt at VaR: no tail paths to keep
    tail_idx = np.flatnonzero(in_tail)
    rest_idx = np.flatnonzero(~in_tail)
    rest_mass = float(prob[rest_idx].sum())
    room = budget - tail_idx.size
    if rest_idx.size <= max(room, 0):
        keep = np.concatenate([tail_idx, rest_idx])
        weights = prob[keep]
    elif room <= 0 or rest_mass <= 0.0:
        keep = tail_idx
        weights = prob[keep]
    else:
        rng = np.random.default_rng(seed)
        p = prob[rest_idx] / rest_mass
        draws = rng.choice(rest_idx.size, size=room, replace=True, p=p)
        chosen, counts = np.unique(draws, return_counts=True)
        keep = np.concatenate([tail_idx, rest_idx[chosen]])
        weights = np.concatenate([prob[tail_idx], rest_mass * counts / room])
    weights = weights / weights.sum()
    labels = tuple(f"path{int(states.path[i])}@step{int(states.step[i])}" for i in keep)
    return StressSet(
        states.symbols,
        np.ascontiguousarray(states.multipliers[keep]),
        np.arange(keep.size, dtype=np.int64),
        labels,
        weights,
    )
