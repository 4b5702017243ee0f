"""The circular block bootstrap draws every return before as_of, the last ones included;
the Student-t fit says when it hits its bound."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.errors import NumericalWarning
from simulator.scenarios import calibrate as cal
from simulator.scenarios import generate as gen


@pytest.mark.parametrize("block_len", [1, 5, 20])
def test_the_last_returns_before_as_of_are_drawn_as_often_as_any(block_len: int) -> None:
    t = 300
    returns = np.arange(t, dtype=np.float64)[:, None]  # row i holds i
    rng = np.random.default_rng(11)
    draws = gen.bootstrap_block(rng, returns, 20_000, 24, block_len)
    counts = np.bincount(draws.astype(int).ravel(), minlength=t)
    # the last block_len - 1 rows (the most recent days: right after a crash, the crash)
    assert (counts[t - block_len :] > 0).all()
    expected = draws.size / t
    assert counts.min() > 0.8 * expected and counts.max() < 1.2 * expected
    # a path's first day is the last row as often as any other row
    first = np.bincount(draws[:, 0, 0].astype(int), minlength=t)
    assert first[t - 1] > 0.5 * 20_000 / t
    # blocks are consecutive, wrapping around the end
    d = np.diff(draws[:, :block_len, 0], axis=1) % t
    assert (d == 1).all()


def test_student_t_fit_warns_at_its_bound() -> None:
    rng = np.random.default_rng(0)
    heavy = rng.standard_cauchy(3000)
    with pytest.warns(
        NumericalWarning, match=r"degrees of freedom .* outside \[2.5, 100\]; using 2.5"
    ):
        assert cal.fit_t_dof(heavy) == 2.5
    with pytest.warns(NumericalWarning, match="using 100"):
        assert cal.fit_t_dof(rng.normal(size=20000)) == 100.0
    dof = cal.fit_t_dof(rng.standard_t(5, 20000))
    assert 4.0 < dof < 6.5
