"""Numerical kernels of the scenario kinds: factor log-price paths, block by block.

Every random kernel takes an injected :class:`numpy.random.Generator` and draws a whole
block of paths in a fixed order, so a block's numbers do not depend on which rows of it a
caller keeps. :func:`block_generator` derives the stream of block ``b`` from the seed alone
(``SeedSequence(entropy=seed, spawn_key=(b,))``): results do not depend on how work is split
across processes.

Correlated draws use :func:`cholesky_psd` (plain Python, so the factor is the same on every
machine) and explicit loops over factors rather than BLAS, whose summation order may vary.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "BLOCK_PATHS",
    "block_generator",
    "bootstrap_block",
    "cholesky_psd",
    "fhs_block",
    "gas_from_drawdown",
    "knot_path",
    "mixing_groups",
    "montecarlo_block",
    "scale_intraday",
    "spread_substeps",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

#: Paths per random block. Fixed: changing it changes every Monte Carlo number.
BLOCK_PATHS = 1024


def block_generator(seed: int, block: int) -> np.random.Generator:
    """The random stream of block ``block`` (paths ``block*BLOCK_PATHS`` onwards)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(block,))))


def cholesky_psd(
    corr: Sequence[Sequence[float]], tol: float = 1e-10
) -> tuple[tuple[float, ...], ...]:
    """Lower Cholesky factor of a positive semi-definite matrix, in plain Python.

    A pivot below ``tol`` (a singular matrix, e.g. correlations of one) gives a zero
    column, which is exact for a PSD matrix. Plain Python floats keep the factor identical
    on every machine (LAPACK builds may differ in the last bit).
    """
    n = len(corr)
    low = [[0.0] * n for _ in range(n)]
    for j in range(n):
        d = float(corr[j][j]) - math.fsum(low[j][k] * low[j][k] for k in range(j))
        if d <= tol:
            continue
        ljj = math.sqrt(d)
        low[j][j] = ljj
        for i in range(j + 1, n):
            s = float(corr[i][j]) - math.fsum(low[i][k] * low[j][k] for k in range(j))
            low[i][j] = s / ljj
    return tuple(tuple(row) for row in low)


def _correlate(eps: FloatArray, chol: Sequence[Sequence[float]]) -> FloatArray:
    """``eps @ chol.T`` over the last axis, with a fixed summation order."""
    out = np.empty_like(eps)
    n = len(chol)
    for i in range(n):
        acc = eps[..., 0] * chol[i][0]
        for j in range(1, i + 1):
            if chol[i][j] != 0.0:
                acc += eps[..., j] * chol[i][j]
        out[..., i] = acc
    return out


def _levels(returns: FloatArray) -> FloatArray:
    """Cumulative log levels with a zero first step: ``(n, s, f) -> (n, s + 1, f)``."""
    n, s, f = returns.shape
    out = np.zeros((n, s + 1, f))
    np.cumsum(returns, axis=1, out=out[:, 1:, :])
    return out


def montecarlo_block(
    rng: np.random.Generator,
    n: int,
    n_steps: int,
    dt_days: float,
    vol_daily: Sequence[float],
    drift_daily: Sequence[float],
    chol: Sequence[Sequence[float]],
    dof: float | None,
    jump_intensity_per_day: float = 0.0,
    jump_mean: float = 0.0,
    jump_std: float = 0.0,
    jump_beta: Sequence[float] = (),
    mixing: Literal["day", "step"] = "day",
) -> FloatArray:
    """Correlated log-price paths of the factors, shape ``(n, n_steps + 1, n_factors)``.

    Step log-returns are ``drift * dt + vol * sqrt(dt) * z (+ jumps)`` with ``z`` standard
    normal with correlation ``chol @ chol.T`` or, if ``dof`` is given, a normal variance
    mixture: ``z = sqrt((dof - 2) / W) * normal`` with ``W ~ chi2(dof)`` shared by the
    factors (tail dependence), which has unit variance.

    ``mixing`` says which steps share one ``W`` (see :func:`mixing_groups`): ``"day"``
    (steps starting in the same 24 hours of the scenario) makes the log-return over each
    whole day exactly multivariate Student-t with ``dof`` degrees of freedom, daily
    volatility ``vol`` and correlation ``chol @ chol.T``, which is the distribution the
    regimes are calibrated to (daily returns); within the day the path is a Gaussian
    random walk with that day's random variance. ``"step"`` draws one ``W`` per step:
    each step is Student-t, and a day of many steps is close to normal (the CLT thins
    the daily tails). With steps of a day or more the two coincide.

    Jumps: a Poisson number ``N`` of jumps per step with intensity
    ``jump_intensity_per_day * dt``; their total log size is
    ``N * jump_mean + sqrt(N) * jump_std * u`` (a sum of ``N`` normal jumps), applied to
    factor ``i`` with loading ``jump_beta[i]``.

    Draw order (fixed): normals ``(n, n_steps, n_factors)``, chi-square
    ``(n, n_groups)``, Poisson counts ``(n, n_steps)``, jump normals ``(n, n_steps)``.
    """
    f = len(vol_daily)
    eps = rng.standard_normal((n, n_steps, f))
    z = _correlate(eps, chol)
    del eps
    if dof is not None:
        group = mixing_groups(n_steps, dt_days, mixing)
        w = rng.chisquare(dof, size=(n, int(group[-1]) + 1))
        z *= np.sqrt((dof - 2.0) / w)[:, group, None]
    scale = np.asarray(vol_daily, dtype=np.float64) * math.sqrt(dt_days)
    z *= scale
    z += np.asarray(drift_daily, dtype=np.float64) * dt_days
    if jump_intensity_per_day > 0.0:
        counts = rng.poisson(jump_intensity_per_day * dt_days, size=(n, n_steps)).astype(np.float64)
        u = rng.standard_normal((n, n_steps))
        size = counts * jump_mean + np.sqrt(counts) * jump_std * u
        z += size[:, :, None] * np.asarray(jump_beta, dtype=np.float64)
    return _levels(z)


def mixing_groups(n_steps: int, dt_days: float, mixing: Literal["day", "step"]) -> IntArray:
    """Index of the Student-t mixing variable of each step, shape ``(n_steps,)``.

    ``"step"``: ``0, 1, ..., n_steps - 1``. ``"day"``: the scenario day in which the step
    starts, ``floor(t * dt_days)`` (to a relative 1e-9, so 24 steps of 1/24 day make
    exactly one day); consecutive groups, starting at 0 (steps of a day or more get one
    group each).
    """
    t = np.arange(n_steps)
    if mixing == "step" or dt_days >= 1.0:
        return t
    day: IntArray = np.floor(t * dt_days * (1.0 + 1e-9)).astype(np.intp)
    return day


def bootstrap_block(
    rng: np.random.Generator, returns: FloatArray, n: int, n_obs: int, block_len: int
) -> FloatArray:
    """Circular block bootstrap of whole rows of ``returns`` (shape ``(T, f)``).

    Each path glues together blocks of ``block_len`` consecutive historical days (all
    factors of a day together, so cross-asset dependence and short-range serial
    dependence survive). Blocks start at any of the ``T`` rows and wrap around the end of
    the sample (Politis & Romano 1992), so every row, the last ones before ``as_of``
    included, is drawn with the same probability; a moving-block bootstrap without the
    wrap would never draw the last ``block_len - 1`` rows first, and would draw them less
    often overall. Returns log-returns of shape ``(n, n_obs, f)``.
    """
    t = returns.shape[0]
    block_len = min(block_len, t)
    n_blocks = -(-n_obs // block_len)
    starts = rng.integers(0, t, size=(n, n_blocks))
    idx = ((starts[:, :, None] + np.arange(block_len)) % t).reshape(n, -1)[:, :n_obs]
    out: FloatArray = returns[idx]
    return out


def fhs_block(
    rng: np.random.Generator,
    std_resid: FloatArray,
    mu: FloatArray,
    omega: FloatArray,
    alpha: FloatArray,
    gamma: FloatArray,
    beta: FloatArray,
    sigma2_next: FloatArray,
    n: int,
    n_obs: int,
    block_len: int,
) -> FloatArray:
    """Filtered historical simulation with per-factor GJR-GARCH(1,1) volatility.

    Standardised residual vectors (whole rows, so cross-asset dependence is kept) are
    drawn by :func:`bootstrap_block` and re-coloured with the GARCH recursion started from
    the one-step-ahead variance at the as-of date::

        r_t = mu + sigma_t z_t
        sigma2_{t+1} = omega + (alpha + gamma [r_t < mu]) (r_t - mu)^2 + beta sigma2_t

    All parameters are per factor, shape ``(f,)``, in the units of the fitted returns
    (``calibrate.fit_garch`` fits log-returns times a per-series ``scale`` that gives them
    a standard deviation of 10). Returns shape ``(n, n_obs, f)``, same units.
    """
    z = bootstrap_block(rng, std_resid, n, n_obs, block_len)
    out = np.empty_like(z)
    sigma2 = np.broadcast_to(sigma2_next, (n, z.shape[2])).copy()
    for t in range(n_obs):
        e = np.sqrt(sigma2) * z[:, t, :]
        out[:, t, :] = mu + e
        sigma2 = omega + (alpha + gamma * (e < 0.0)) * e * e + beta * sigma2
    return out


def scale_intraday(levels: FloatArray, dt_days: float, scale: float) -> None:
    """Scale, in place, each day's excursion from the straight line between its open and
    close by ``scale`` (log levels, shape ``(n, n_steps + 1, f)``).

    Days are the groups of :func:`mixing_groups` (``"day"``); the level at each day's open
    and close is unchanged, so daily returns keep their law, while the intraday lows and
    highs (the wicks a liquidation sees) move ``scale`` times further from the line.
    A trailing partial day is scaled the same way between its first and last step.
    """
    n_steps = levels.shape[1] - 1
    if scale == 1.0 or dt_days >= 1.0 or n_steps < 2:
        return
    group = mixing_groups(n_steps, dt_days, "day")
    bounds = np.flatnonzero(np.diff(np.append(group, group[-1] + 1))) + 1  # day ends (steps)
    start = 0
    for end in bounds:
        if end - start >= 2:
            a = levels[:, start, :].copy()
            b = levels[:, end, :].copy()
            frac = (np.arange(start, end + 1) - start)[None, :, None] / (end - start)
            line = a[:, None, :] + (b - a)[:, None, :] * frac
            line *= 1.0 - scale
            seg = levels[:, start : end + 1, :]
            seg *= scale  # line + scale (seg - line), in place
            seg += line
            levels[:, start, :] = a  # open and close exactly as drawn
            levels[:, end, :] = b
        start = int(end)


def spread_substeps(returns: FloatArray, per_obs: int, n_steps: int) -> FloatArray:
    """Split each observation's log-return evenly over ``per_obs`` steps; keep ``n_steps``.

    Returns log levels of shape ``(n, n_steps + 1, f)``.
    """
    if per_obs > 1:
        returns = np.repeat(returns / per_obs, per_obs, axis=1)
    return _levels(np.ascontiguousarray(returns[:, :n_steps, :]))


def knot_path(knots: Sequence[tuple[float, float]], n_steps: int, step_hours: float) -> FloatArray:
    """Log multiplier on the step grid, linear in log price between ``(hours, multiplier)``
    knots, flat after the last one. Shape ``(n_steps + 1,)``; the first value is 0."""
    times = np.array([0.0] + [t for t, _ in knots if t > 0.0])
    values = np.array([0.0] + [math.log(v) for t, v in knots if t > 0.0])
    grid = np.arange(n_steps + 1) * step_hours
    out: FloatArray = np.interp(grid, times, values)
    out[0] = 0.0
    return out


def gas_from_drawdown(
    log_level: FloatArray, base_gwei: float, spike_gwei: float, full_drawdown: float
) -> FloatArray:
    """Gas price that rises with the drawdown of a reference factor, gwei.

    ``gas = base + spike * min(1, drawdown / full_drawdown)`` where ``drawdown`` is the fall
    from the running maximum of the reference price (``log_level``, shape ``(n, s + 1)``).
    """
    peak = np.maximum.accumulate(log_level, axis=1)
    drawdown = -np.expm1(log_level - peak)
    gas: FloatArray = base_gwei + spike_gwei * np.minimum(drawdown / full_drawdown, 1.0)
    return gas
