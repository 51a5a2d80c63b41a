"""Statistics of results (rnnlab.stats): known values from the literature and properties
(hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnlab import stats
from rnnlab.training import metrics


def test_wilson_interval_known_values() -> None:
    # Newcombe (1998), Table I: 81 of 263 -> 0.2553 to 0.3662; 8 of 10 -> 0.4902 to 0.9433
    assert stats.wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert stats.wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    lo, hi = stats.wilson_interval(0, 20)
    assert lo == 0.0 and hi == pytest.approx(0.1611, abs=1e-4)
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)
    wide = stats.wilson_interval(8, 10, confidence=0.99)
    assert wide[0] < 0.4902 and wide[1] > 0.9433


@given(st.integers(0, 400), st.integers(1, 400))
def test_wilson_interval_holds_the_estimate(k: int, n: int) -> None:
    k = min(k, n)
    lo, hi = stats.wilson_interval(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0
    lo4, hi4 = stats.wilson_interval(4 * k, 4 * n)
    assert hi4 - lo4 < hi - lo + 1e-12  # more data, a narrower interval


def test_mcnemar_known_values() -> None:
    exact = stats.mcnemar([1] * 10 + [0] * 2 + [1] * 50, [0] * 10 + [1] * 2 + [1] * 50)
    assert (exact.only_a, exact.only_b, exact.method) == (10, 2, "exact")
    assert exact.p_value == pytest.approx(0.03857, abs=1e-5) and exact.winner == "a"
    chi2 = stats.mcnemar([1] * 25 + [0] * 10, [0] * 25 + [1] * 10)
    assert chi2.method == "chi2" and chi2.p_value == pytest.approx(0.01796, abs=1e-5)
    tie = stats.mcnemar([1, 0, 1], [1, 0, 1])
    assert tie.p_value == 1.0 and tie.winner is None
    with pytest.raises(ValueError, match="answered"):
        stats.mcnemar([1, 0], [1])


@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=200))
def test_mcnemar_is_symmetric_and_a_probability(pairs: list[tuple[bool, bool]]) -> None:
    a, b = zip(*pairs, strict=True)
    forward, backward = stats.mcnemar(a, b), stats.mcnemar(b, a)
    assert 0.0 <= forward.p_value <= 1.0
    assert forward.p_value == pytest.approx(backward.p_value)
    assert (forward.only_a, forward.only_b) == (backward.only_b, backward.only_a)


@given(
    st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=200),
    st.integers(1, 4),
)
def test_mcnemar_over_seeds_counts_each_example_once(
    pairs: list[tuple[bool, bool]], repeats: int
) -> None:
    a, b = (list(x) for x in zip(*pairs, strict=True))
    one = stats.mcnemar(a, b)
    assert stats.seeds_mcnemar([a], [b]) == one  # one seed: McNemar's test itself
    assert stats.seeds_mcnemar([a] * repeats, [b] * repeats) == one  # copies add nothing


def test_mcnemar_over_seeds_averages_each_example_over_the_seeds() -> None:
    # example 0: A right with 2 of 3 seeds, B with 1 -> A; example 1: 1 vs 1 -> neither;
    # example 2: 0 vs 3 -> B; example 3: 3 vs 2 -> A
    a = [[1, 1, 0, 1], [1, 0, 0, 1], [0, 0, 0, 1]]
    b = [[1, 1, 1, 1], [0, 0, 1, 1], [0, 0, 1, 0]]
    test = stats.seeds_mcnemar(a, b)
    assert (test.only_a, test.only_b, test.method) == (2, 1, "exact")
    with pytest.raises(ValueError, match="answered"):
        stats.seeds_mcnemar([[1, 0]], [[1, 0, 1]])


def test_two_proportions_and_the_resolvable_difference() -> None:
    assert stats.two_proportion_p(62, 100, 54, 100) == pytest.approx(0.2517, abs=1e-4)
    assert stats.two_proportion_p(500, 1000, 500, 1000) == pytest.approx(1.0)
    assert stats.resolvable_difference(2490) == pytest.approx(0.02777, abs=1e-5)
    assert stats.resolvable_difference(498) > stats.resolvable_difference(2490)


def test_bootstrap_interval_of_macro_f1() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, 500)
    y_pred = np.where(rng.random(500) < 0.8, y_true, 1 - y_true)
    lo, hi = stats.bootstrap_interval(y_true, y_pred, metrics.macro_f1, resamples=300)
    assert lo < metrics.macro_f1(y_true, y_pred) < hi and 0.7 < lo < hi < 0.9
    assert stats.bootstrap_interval([], [], metrics.macro_f1) == (0.0, 0.0)


def test_describe_p() -> None:
    assert stats.describe_p(0.0001) == "p < 0.001"
    assert stats.describe_p(0.0042) == "p = 0.004"
    assert stats.describe_p(0.41) == "p = 0.41"


def test_seed_interval_known_values() -> None:
    # mean 0.8, std 0.05 over 4 seeds: 0.8 ± 1.96 * 0.05 / 2 = 0.8 ± 0.049
    low, high = stats.seed_interval(0.8, 0.05, 4)
    assert low == pytest.approx(0.751, abs=1e-3) and high == pytest.approx(0.849, abs=1e-3)
    assert stats.seed_interval(0.99, 0.1, 2) == (pytest.approx(0.851, abs=1e-3), 1.0)
    assert stats.seed_interval(0.5, 0.0, 3) == (0.5, 0.5)


def test_mean_std_leaves_out_missing_values() -> None:
    assert stats.mean_std([0.5, None, 0.7]) == (pytest.approx(0.6), pytest.approx(0.1))
    assert stats.mean_std([None, None]) == (None, None)
    assert stats.mean_std([]) == (None, None)
    with pytest.raises(ValueError, match="differ in length"):
        stats.bootstrap_interval([0, 1], [0], metrics.accuracy)
