"""simulator.risk: every bad input raises InputError naming the argument and the problem."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy import sparse

from simulator import risk
from simulator.errors import InputError, ShortfallError

GOOD = np.arange(1.0, 101.0)

BAD_LOSSES: list[tuple[Any, str]] = [
    ([], r"losses: is empty"),
    (np.array([]), r"losses: is empty"),
    ([1.0, math.nan, 2.0], r"losses: contains 1 NaN or infinite value\(s\) \(first at index 1"),
    ([1.0, 2.0, math.inf], r"losses: contains 1 NaN or infinite.*index 2"),
    ([-math.inf], r"losses: contains 1 NaN or infinite"),
    (5.0, r"losses: expected a 1-D array .* got 0-D"),
    ([[1.0, 2.0], [3.0, 4.0]], r"losses: expected a 1-D array .* got 2-D shape \(2, 2\)"),
    (["a", "b"], r"losses: cannot be read as an array of numbers"),
]

BAD_ALPHAS: list[Any] = [0.0, 1.0, -0.5, 1.5, math.nan, math.inf, True, "0.9", None]

BAD_WEIGHTS: list[tuple[Any, str]] = [
    (np.ones(99), r"weights: length 99 does not match the number of scenarios 100"),
    (np.r_[np.ones(99), -1.0], r"weights: 1 negative value\(s\) \(first at index 99"),
    (np.zeros(100), r"weights: all zero"),
    (np.r_[np.ones(99), math.nan], r"weights: contains 1 NaN or infinite"),
    (np.r_[np.ones(99), math.inf], r"weights: contains 1 NaN or infinite"),
    (np.ones((100, 1)), r"weights: expected a 1-D array"),
    ([], r"weights: is empty"),
]

EMPIRICAL: list[Callable[..., Any]] = [risk.var, risk.es, risk.tail_weights]


@pytest.mark.parametrize("fn", [*EMPIRICAL, risk.evt_fit, risk.evt_var, risk.evt_es, risk.es_ci])
@pytest.mark.parametrize(("losses", "message"), BAD_LOSSES)
def test_bad_losses(fn: Callable[..., Any], losses: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        fn(losses)


@pytest.mark.parametrize("fn", EMPIRICAL)
@pytest.mark.parametrize(("weights", "message"), BAD_WEIGHTS)
def test_bad_weights(fn: Callable[..., Any], weights: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        fn(GOOD, 0.975, weights)


@pytest.mark.parametrize("alpha", BAD_ALPHAS)
def test_bad_alpha_everywhere(alpha: Any) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: risk.var(GOOD, alpha),
        lambda: risk.es(GOOD, alpha),
        lambda: risk.es(GOOD, alpha, np.ones(100)),
        lambda: risk.tail_weights(GOOD, alpha),
        lambda: risk.es_contributions(GOOD[:, None], alpha),
        lambda: risk.var_normal(0.0, 1.0, alpha),
        lambda: risk.es_normal(0.0, 1.0, alpha),
        lambda: risk.var_student_t(0.0, 1.0, 4.0, alpha),
        lambda: risk.es_student_t(0.0, 1.0, 4.0, alpha),
        lambda: risk.evt_var(GOOD, alpha),
        lambda: risk.evt_es(GOOD, alpha),
        lambda: risk.es_ci(GOOD, alpha, n_boot=10),
        lambda: risk.kupiec_pof(1, 100, alpha),
        lambda: risk.acerbi_szekely_z2(GOOD, 50.0, 60.0, alpha),
    ]
    for call in calls:
        with pytest.raises(InputError, match=r"alpha: must be"):
            call()


def test_input_error_is_a_value_error_and_a_shortfall_error() -> None:
    with pytest.raises(ValueError, match="alpha"):
        risk.es(GOOD, 2.0)
    with pytest.raises(ShortfallError):
        risk.es([], 0.9)


def test_messages_show_plain_numbers() -> None:
    """The offending value reads as a number, not as numpy's repr (np.float64(nan))."""
    cases = [
        (lambda: risk.es([1.0, math.nan]), "value nan)"),
        (lambda: risk.es([1.0, -math.inf]), "value -inf)"),
        (lambda: risk.es([1.0, 2.0], 0.5, [1.0, -0.25]), "index 1: -0.25)"),
        (lambda: risk.acerbi_szekely_z2([1.0, 2.0], 1.0, [1.0, -2.0]), "got -2.0 at index 1"),
    ]
    for call, text in cases:
        with pytest.raises(InputError) as exc:
            call()
        assert text in str(exc.value) and "np." not in str(exc.value), str(exc.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mu": math.nan}, r"mu: must be finite"),
        ({"mu": "0"}, r"mu: must be a real number"),
        ({"sigma": 0.0}, r"sigma: must be > 0"),
        ({"sigma": -1.0}, r"sigma: must be > 0"),
        ({"sigma": math.inf}, r"sigma: must be finite"),
    ],
)
def test_bad_normal_parameters(kwargs: dict[str, Any], message: str) -> None:
    args = {"mu": 0.0, "sigma": 1.0, "alpha": 0.975, **kwargs}
    for fn in (risk.var_normal, risk.es_normal):
        with pytest.raises(InputError, match=message):
            fn(**args)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scale": 0.0}, r"scale: must be > 0"),
        ({"df": 0.0}, r"df: must be > 0"),
        ({"df": math.nan}, r"df: must be finite"),
        ({"mu": math.inf}, r"mu: must be finite"),
    ],
)
def test_bad_student_t_parameters(kwargs: dict[str, Any], message: str) -> None:
    args = {"mu": 0.0, "scale": 1.0, "df": 4.0, "alpha": 0.975, **kwargs}
    for fn in (risk.var_student_t, risk.es_student_t):
        with pytest.raises(InputError, match=message):
            fn(**args)


def test_student_t_es_needs_df_above_one() -> None:
    assert math.isfinite(risk.var_student_t(0.0, 1.0, 1.0, 0.99))
    with pytest.raises(InputError, match=r"df: must be > 1 for a finite expected shortfall"):
        risk.es_student_t(0.0, 1.0, 1.0, 0.99)


@pytest.mark.parametrize(
    ("by_part", "message"),
    [
        (GOOD, r"losses_by_part: expected a 2-D array of shape \(n_scenarios, n_parts\)"),
        (np.ones((0, 3)), r"losses_by_part: is empty"),
        (np.ones((3, 0)), r"losses_by_part: is empty"),
        (np.array([[1.0, math.nan]]), r"losses_by_part: contains 1 NaN.*index \(0, 1\)"),
        (sparse.csr_array(np.array([[1.0, math.inf]])), r"losses_by_part \(stored values\)"),
        (sparse.csr_array((0, 4)), r"losses_by_part: is empty"),
        (sparse.coo_array(np.ones(4)), r"losses_by_part: expected shape \(n_scenarios, n_parts\)"),
    ],
)
def test_bad_losses_by_part(by_part: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        risk.es_contributions(by_part, 0.9)


def test_contribution_weights_must_match_scenarios() -> None:
    with pytest.raises(InputError, match=r"weights: length 3 does not match .* 100"):
        risk.es_contributions(np.ones((100, 2)), 0.9, np.ones(3))
    with pytest.raises(InputError, match=r"weights: length 3 does not match .* 100"):
        risk.es_contributions(sparse.csr_array(np.ones((100, 2))), 0.9, np.ones(3))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": math.nan}, r"threshold: must be finite"),
        ({"threshold_quantile": 1.0}, r"threshold_quantile: must be strictly between 0 and 1"),
        ({"min_exceedances": 2}, r"min_exceedances: must be >= 3"),
        ({"min_exceedances": 2.5}, r"min_exceedances: must be an integer"),
    ],
)
def test_bad_evt_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        risk.evt_var(GOOD, 0.99, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"level": 1.0}, r"level: must be strictly between 0 and 1"),
        ({"n_boot": 0}, r"n_boot: must be an integer >= 1"),
        ({"n_boot": 10.0}, r"n_boot: must be an integer >= 1"),
        ({"rng": "seed"}, r"rng: expected a numpy Generator, an int seed or None"),
        ({"rng": np.random.RandomState(0)}, r"rng: expected a numpy Generator"),
    ],
)
def test_bad_bootstrap_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        risk.es_ci(GOOD, 0.9, **kwargs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((-1, 100), r"exceptions: must be between 0 and n=100, got -1"),
        ((101, 100), r"exceptions: must be between 0 and n=100, got 101"),
        ((1, 0), r"n: must be >= 1"),
        ((1.5, 100), r"exceptions: must be an integer"),
        ((1, 100.0), r"n: must be an integer"),
        ((True, 100), r"exceptions: must be an integer"),
    ],
)
def test_bad_kupiec_arguments(args: tuple[Any, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        risk.kupiec_pof(*args, 0.99)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((GOOD, np.ones(5), 2.0), r"var_forecasts: length 5 does not match realised_losses"),
        ((GOOD, 1.0, np.ones(5)), r"es_forecasts: length 5 does not match realised_losses"),
        ((GOOD, 1.0, -1.0), r"es_forecasts: must be >= 0"),
        ((GOOD, math.nan, 1.0), r"var_forecasts: contains 100 NaN"),
        ((GOOD, 1.0, np.ones((100, 2))), r"es_forecasts: expected a 1-D array"),
        (([], 1.0, 1.0), r"realised_losses: is empty"),
        (([math.nan], 1.0, 1.0), r"realised_losses: contains 1 NaN"),
    ],
)
def test_bad_z2_arguments(args: tuple[Any, Any, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        risk.acerbi_szekely_z2(*args, 0.99)


def test_bad_z2_pvalue_arguments() -> None:
    def sampler(gen: np.random.Generator, n_sim: int) -> np.ndarray:
        return gen.normal(size=(n_sim, 7))

    with pytest.raises(InputError, match=r"sampler: returned shape \(10, 7\), expected"):
        risk.acerbi_szekely_z2_pvalue(GOOD, 1.0, 2.0, 0.9, sampler, 10)
    with pytest.raises(InputError, match=r"n_sim: must be an integer >= 1"):
        risk.acerbi_szekely_z2_pvalue(GOOD, 1.0, 2.0, 0.9, sampler, 0)

    def nan_sampler(gen: np.random.Generator, n_sim: int) -> np.ndarray:
        return np.full((n_sim, 100), math.nan)

    with pytest.raises(InputError, match=r"sampler output: contains"):
        risk.acerbi_szekely_z2_pvalue(GOOD, 1.0, 2.0, 0.9, nan_sampler, 3)


def test_results_are_frozen() -> None:
    ci = risk.es_ci(GOOD, 0.9, n_boot=10)
    with pytest.raises(AttributeError):
        ci.es = 0.0  # type: ignore[misc]
    res = risk.evt_var(GOOD, 0.95, min_exceedances=10)
    with pytest.raises(AttributeError):
        res.value = 0.0  # type: ignore[misc]
