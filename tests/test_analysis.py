"""analysis/: scores, normalisation, IQM, stratified bootstrap and curves on data with
hand-known answers; loading rejects runs that break the contract."""
import csv
import json
import lzma
import math
import shutil

import numpy as np
import pandas as pd
import pytest

from analysis import compare, setups, stats
from experiments import grid
from analysis.load import RunContractError, load_run, load_runs
from conftest import PROGRESS_COLUMNS, load_algorithm


def test_final_score_is_mean_of_last_100_episodes():
    eps = pd.DataFrame({"variant": "v", "env": "E", "seed": 1, "global_step": np.arange(150) * 10,
                        "ep_return": np.arange(150.0)})
    assert stats.final_scores(eps).score.item() == pytest.approx(np.mean(np.arange(50, 150)))
    short = eps.iloc[:30]
    assert stats.final_scores(short).score.item() == pytest.approx(14.5)  # fewer than 100: all of them


def test_normalise_and_best_of_sweep():
    scores = pd.DataFrame({"variant": ["a", "a", "b", "b", "a", "b"], "env": ["X", "X", "X", "X", "Y", "Y"],
                           "seed": [1, 2, 1, 2, 1, 1], "score": [60.0, 80.0, 100.0, 120.0, -5.0, 5.0]})
    best = stats.best_of_sweep(scores)
    assert best.to_dict() == {"X": 110.0, "Y": 5.0}
    norm = stats.normalise(scores, {"X": 10.0, "Y": -15.0}, best)
    np.testing.assert_allclose(norm, [0.5, 0.7, 0.9, 1.1, 0.5, 1.0])


def test_iqm_hand_values():
    assert stats.iqm([0, 0, 1, 2, 3, 4, 5, 6, 100, 100]) == pytest.approx(3.5)  # middle six of ten
    assert stats.iqm([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx(4.5)
    assert stats.iqm([5.0]) == 5.0
    np.testing.assert_allclose(stats.iqm(np.array([[1, 2, 3, 100], [4, 4, 4, 4]]), axis=1), [2.5, 4.0])


def test_stratified_bootstrap_keeps_strata_sizes():
    # task A always 0, task B always 1, equal sizes: every stratified resample has mean exactly 0.5
    values, strata = [0, 0, 0, 1, 1, 1], ["A"] * 3 + ["B"] * 3
    assert stats.stratified_bootstrap_ci(values, strata, stats.aggregate_mean, reps=500) == (0.5, 0.5, 0.5)
    # without strata the resampled mean varies
    point, low, high = stats.stratified_bootstrap_ci(values, ["A"] * 6, stats.aggregate_mean, reps=500)
    assert point == 0.5 and low < 0.5 < high


def test_t_interval_and_welch_against_t_table_values():
    # [1, 2, 6]: mean 3, s = √7, t(0.975, 2 dof) = 4.303 (a t table): half-width 4.303 · √7/√3
    mean, low, high = stats.t_interval([1, 2, 6])
    assert mean == 3 and (high - low) / 2 == pytest.approx(4.303 * math.sqrt(7 / 3), rel=1e-4)
    assert np.isnan(stats.t_interval([5.0])[1])
    # equal sizes and variances: Welch's dof is 2(n − 1) = 4, t(0.975, 4) = 2.776; the SE √(1/3 + 1/3)
    diff, low, high = stats.welch_interval([10, 11, 12], [0, 1, 2])
    assert diff == 10 and (high - low) / 2 == pytest.approx(2.776 * math.sqrt(2 / 3), rel=1e-3)
    # unequal variances: the dof fall towards the noisier cell's n − 1, widening the interval
    _, low, high = stats.welch_interval([10, 14], [1, 2, 3])
    assert (high - low) / 2 > 12.706 * math.sqrt(4 + 1 / 3) * 0.5  # beyond half the 1-dof interval, by hand
    assert stats.welch_interval([1, 1], [0, 0]) == (1.0, 1.0, 1.0)
    # a weighted sum of three cells, by hand: ½(mean a − mean b) + ¼ mean c; v = ¼·1/3 + ¼·1/3 + 1/16·8/2
    a, b, c = [1, 2, 3], [0, 1, 2], [2, 6]
    point, low, high = stats.combination_interval([a, b, c], [0.5, -0.5, 0.25])
    v = [0.25 / 3, 0.25 / 3, 0.25]
    dof = sum(v) ** 2 / (v[0] ** 2 / 2 + v[1] ** 2 / 2 + v[2] ** 2 / 1)
    from scipy import stats as scipy_stats
    assert point == pytest.approx(0.5 + 1.0) and (high - low) / 2 == pytest.approx(
        scipy_stats.t.ppf(0.975, dof) * math.sqrt(sum(v)))


def test_paired_interval_by_hand_and_paired_text_marks_what_only_pairing_decides():
    # differences [1, 2, 2]: mean 5/3, s = √(1/3), t(0.975, 2 dof) = 4.303: half-width 4.303 · √(1/3) / √3 = 4.303/3
    mean, low, high = stats.paired_interval([1, 2, 3], [0, 0, 1])
    assert mean == pytest.approx(5 / 3) and (high - low) / 2 == pytest.approx(4.303 / 3, rel=1e-4)
    with pytest.raises(ValueError, match="one score per seed"):
        stats.paired_interval([1, 2, 3], [0, 0])
    from analysis.common import paired_rows, paired_text
    # env A: x and y move together seed by seed (differences 1, 1, 0.5: mean 0.83, half-width 4.303 · 0.2887 / √3
    # = 0.717, so [+0.1, +1.6]), but the seeds spread each cell far (SD 10): Welch's interval holds 0.
    # env B: y has only seeds 1-2, so the pair has 2 seeds; differences 0 and 2: mean 1, s = √2, t(0.975, 1) = 12.706
    scores = pd.DataFrame({"variant": ["x"] * 6 + ["y"] * 5, "env": ["A", "A", "A", "B", "B", "B", "A", "A", "A", "B", "B"],
                           "seed": [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2],
                           "score": [10, 20, 30, 5, 7, 100, 9, 19, 29.5, 5, 5]})
    rows = paired_rows(scores, [("x", "y")]).set_index("env")
    assert rows.seeds.to_dict() == {"A": 3, "B": 2}
    assert (rows.loc["A", "low"], rows.loc["A", "high"]) == pytest.approx((5 / 6 - 0.7171, 5 / 6 + 0.7171), abs=1e-3)
    assert rows.loc["A", "welch_low"] < 0 < rows.loc["A", "welch_high"]
    assert rows.loc["B", "mean"] == 1 and rows.loc["B", "high"] - 1 == pytest.approx(12.706, rel=1e-4)
    planned = [grid.Run(v, e, s) for v, e, s in zip(scores.variant, scores.env, scores.seed)]
    text = paired_text(scores, planned, [("x", "y")], str.upper, "Why.")
    assert text.startswith("Why. Per task, the mean of the per-seed differences X − Y over the 2-3 seeds both have")
    row = next(line for line in text.splitlines() if line.startswith("| X − Y"))
    assert [cell.strip() for cell in row.split("|")[1:-1]] == ["X − Y", "A", "B"]  # the header
    row = next(line for line in text.splitlines() if line.startswith("| (X) − (Y) "))  # the table's one row
    assert [cell.strip() for cell in row.split("|")[1:-1]] == ["(X) − (Y)", "+0.8 [+0.1, +1.6] *", "+1.0 [-11.7, +13.7]"]
    assert "excludes 0 in 1 of 2 cells, Welch's in 0" in text
    assert paired_text(scores[scores.variant == "x"], planned, [("x", "y")], str.upper, "Why.") == ""


def test_with_three_seeds_the_t_interval_covers_95_percent_and_the_percentile_bootstrap_is_the_range():
    rng = np.random.default_rng(0)
    draws = rng.normal(0.0, 1.0, (20_000, 3))
    covered = [low <= 0 <= high for _, low, high in map(stats.t_interval, draws)]
    assert np.mean(covered) == pytest.approx(0.95, abs=0.01)
    # the range of 3 draws holds the mean unless all 3 fall on one side: 1 − 2/8
    assert np.mean((draws.min(axis=1) <= 0) & (draws.max(axis=1) >= 0)) == pytest.approx(0.75, abs=0.01)
    for x in draws[:20]:  # and a percentile bootstrap of 3 seeds gives exactly that range
        _, low, high = stats.stratified_bootstrap_ci(x, np.zeros(3), stats.aggregate_mean)
        assert (low, high) == pytest.approx((x.min(), x.max()), abs=1e-12)


def test_bootstrap_is_reproducible_and_covers_the_mean():
    rng = np.random.default_rng(3)
    values = rng.normal(10.0, 2.0, 60)
    strata = np.repeat(["a", "b", "c"], 20)
    first = stats.stratified_bootstrap_ci(values, strata, stats.iqm)
    assert first == stats.stratified_bootstrap_ci(values, strata, stats.iqm)
    point, low, high = stats.stratified_bootstrap_ci(values, strata, stats.aggregate_mean)
    assert low < point < high and low < 10.0 < high and high - low < 2.0


def test_improvement_by_hand_and_against_mann_whitney():
    # x = 1, 2, 3 against y = 2, 2: the six pairs give 0, 0, ½, ½, 1, 1
    assert stats.improvement([1.0, 2.0, 3.0], [2.0, 2.0]) == 0.5
    # x = 3, 4 against y = 1, 3, 5: 1, ½, 0, 1, 1, 0 → 3.5 / 6
    assert stats.improvement([3.0, 4.0], [1.0, 3.0, 5.0]) == pytest.approx(3.5 / 6)
    from scipy import stats as scipy_stats
    rng = np.random.default_rng(0)
    for _ in range(20):  # scipy's U over n_x·n_y, ties among the draws included
        x, y = rng.integers(0, 6, rng.integers(2, 11)).astype(float), rng.integers(0, 6, rng.integers(2, 11)).astype(float)
        u = scipy_stats.mannwhitneyu(x, y, alternative="two-sided").statistic
        assert stats.improvement(x, y) == pytest.approx(u / (len(x) * len(y)))
        assert stats.improvement(x, y) + stats.improvement(y, x) == pytest.approx(1.0)


def test_probability_of_improvement_weighs_tasks_equally_and_resamples_each_cell_alone():
    xs, ys = [[10.0, 11.0], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]], [[1.0, 2.0], [2.5] * 3]
    point, low, high = stats.probability_of_improvement(xs, ys, reps=2_000)
    assert point == pytest.approx((1.0 + 0.5) / 2)  # task 1: X always above; task 2: half of X's runs above
    assert low <= point <= high and low >= 0.5  # task 1 gives 1 in every resample: never below (1 + 0) / 2
    # the same resamples written as loops: per task, X's runs drawn, then Y's, from one generator
    rng, estimates = np.random.default_rng(stats.BOOTSTRAP_SEED), np.zeros(300)
    draws = []
    for x, y in zip(xs, ys):
        ix, iy = rng.integers(0, len(x), (300, len(x))), rng.integers(0, len(y), (300, len(y)))
        draws.append((x, y, ix, iy))
    for rep in range(300):
        per_task = []
        for x, y, ix, iy in draws:
            pairs = [(x[i] > y[j]) + 0.5 * (x[i] == y[j]) for i in ix[rep] for j in iy[rep]]
            per_task.append(sum(pairs) / len(pairs))
        estimates[rep] = np.mean(per_task)
    expected = np.quantile(estimates, [0.025, 0.975])
    assert stats.probability_of_improvement(xs, ys, reps=300)[1:] == pytest.approx(tuple(expected))
    # identical cells: 0.5 exactly, and an interval around it
    same = [[1.0, 2.0, 3.0]]
    point, low, high = stats.probability_of_improvement(same, same)
    assert point == 0.5 and low < 0.5 < high


def test_performance_profile_by_hand_and_its_band_against_a_loop():
    # task A runs 0, 1, 2 and task B one run at 5: above τ = 0.5, A 2/3 and B 1; above 1.5, A 1/3 and B 1;
    # above 5, none (strictly above, as rliable counts); each task weighs ½ whatever its number of runs
    values, strata, taus = [0.0, 1.0, 2.0, 5.0], ["A", "A", "A", "B"], [0.5, 1.5, 5.0]
    point, low, high = stats.performance_profile(values, strata, taus, reps=500)
    assert point == pytest.approx([(2 / 3 + 1) / 2, (1 / 3 + 1) / 2, 0.0])
    assert np.all(low <= point) and np.all(point <= high) and high[2] == 0.0
    assert low[1] >= 0.5  # task B's one run is above 1.5 in every resample
    # the same resamples as a loop: per task in order, its runs drawn with replacement from one generator
    values, strata = np.array([3.0, 1.0, 2.0, 0.5, 4.0, 2.5, 1.5]), np.array(["A", "A", "A", "A", "B", "B", "B"])
    taus = np.linspace(0, 4, 9)
    rng, reps = np.random.default_rng(stats.BOOTSTRAP_SEED), 300
    draws = {task: rng.integers(0, (strata == task).sum(), (reps, (strata == task).sum())) for task in ("A", "B")}
    resampled = np.zeros((reps, len(taus)))
    for rep in range(reps):
        for k, tau in enumerate(taus):
            shares = [np.mean([values[strata == task][i] > tau for i in draws[task][rep]]) for task in ("A", "B")]
            resampled[rep, k] = np.mean(shares)
    point, low, high = stats.performance_profile(values, strata, taus, reps=reps)
    assert low == pytest.approx(np.quantile(resampled, 0.025, axis=0))
    assert high == pytest.approx(np.quantile(resampled, 0.975, axis=0))
    assert np.all(np.diff(point) <= 0)  # a share above τ never grows with τ


def test_improvement_rows_pair_cells_on_the_envs_both_hold_with_two_runs():
    from analysis.common import improvement_rows
    scores = pd.DataFrame({"variant": ["a"] * 5 + ["b"] * 5, "env": ["X", "X", "Y", "Y", "Z", "X", "X", "Y", "Y", "Z"],
                           "seed": [1, 2, 1, 2, 1] * 2, "score": [5.0, 6.0, 0.0, 1.0, 9.0, 1.0, 2.0, 1.0, 1.0, 0.0]})
    rows = improvement_rows(scores, [("a", "b"), ("b", "a"), ("a", "c")])
    assert list(rows.x) == ["a", "b"]  # c has no runs: no row
    a_b = rows.iloc[0]
    assert a_b.envs == ["X", "Y"]  # Z: one run each, no pairs to resample
    # X: a above b in all 4 pairs; Y: (0, 1) → 0, 0 and (1, 1) → ½, ½
    assert a_b.p == pytest.approx((1.0 + 0.25) / 2) and (a_b.env_min, a_b.env_max) == (0.25, 1.0)
    assert rows.iloc[1].p == pytest.approx(1 - a_b.p) and (a_b.seeds_min, a_b.seeds_max) == (2, 2)
    assert improvement_rows(scores, [("a", "b")], envs=["Y"]).iloc[0].p == 0.25


def test_bootstrap_cell_means_resamples_each_cells_own_seeds():
    scores = pd.DataFrame({"variant": ["a", "a", "b", "b"], "env": "X", "seed": [1, 2, 1, 2],
                           "score": [7.0, 7.0, 0.0, 1.0]})
    reps = stats.bootstrap_cell_means(scores, reps=20_000)
    assert list(reps.columns) == [("a", "X"), ("b", "X")]
    assert (reps["a", "X"] == 7.0).all()  # a cell whose seeds agree never moves
    # two seeds {0, 1}: the resampled mean is 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4
    shares = reps["b", "X"].value_counts(normalize=True)
    np.testing.assert_allclose([shares[0.0], shares[0.5], shares[1.0]], [0.25, 0.5, 0.25], atol=0.01)
    assert reps.equals(stats.bootstrap_cell_means(scores, reps=20_000))  # fixed seed


def test_normalise_replicates_uses_each_replicates_own_best():
    columns = pd.MultiIndex.from_tuples([("a", "X"), ("b", "X"), ("a", "Y"), ("b", "Y")], names=["variant", "env"])
    reps = pd.DataFrame([[60.0, 110.0, 0.0, 5.0], [110.0, 60.0, 5.0, 0.0]], columns=columns)
    out = stats.normalise_replicates(reps, {"X": 10.0, "Y": -15.0})
    # replicate 0: X best 110 → a 0.5, b 1; Y best 5 → a 0.75, b 1. Replicate 1 mirrors it.
    np.testing.assert_allclose(out[["a", "b"]].to_numpy(), [[0.625, 1.0], [1.0, 0.625]])


def test_ranking_uncertainty_by_hand():
    reps = pd.DataFrame({"a": [3.0, 3.0, 1.0, 2.0], "b": [1.0, 2.0, 3.0, 2.0], "c": [0.0, 0.0, 0.0, 0.0]})
    out = stats.ranking_uncertainty(reps, level=0.5)  # 25th and 75th percentiles of the ranks
    # ranks of a: 1, 1, 2, 1.5 (tied with b); of b: 2, 2, 1, 1.5; c is always 3
    np.testing.assert_allclose(out.p_best, [0.5 + 0.5 / 4 * 1, 0.25 + 0.5 / 4, 0.0])  # the tie shares the win
    assert out.loc["c"].rank_ci_low == out.loc["c"].rank_ci_high == 3
    np.testing.assert_allclose(out.loc["a", ["rank_ci_low", "rank_ci_high"]], [1.0, 1.625])


def test_spearman_by_hand():
    ref = pd.Series({"x": 1.0, "y": 2.0, "z": 3.0})
    assert stats.spearman(pd.Series({"z": 30.0, "x": 10.0, "y": 20.0}), ref) == pytest.approx(1.0)
    assert stats.spearman(pd.Series({"x": 3.0, "y": 2.0, "z": 1.0}), ref) == pytest.approx(-1.0)
    # ties share a rank: ranks (1.5, 1.5, 3) against (1, 2, 3) give ρ = 1.5 / (√2 · √1.5) = √3 / 2
    assert stats.spearman(pd.Series({"x": 5.0, "y": 5.0, "z": 9.0}), ref) == pytest.approx(math.sqrt(3) / 2)
    frame = pd.DataFrame([{"x": 1, "y": 2, "z": 3}, {"x": 3, "y": 2, "z": 1}])
    np.testing.assert_allclose(stats.spearman(frame, ref), [1.0, -1.0])
    # row by row: row 0 against (3, 2, 1) is −1; row 1, (3, 2, 1) against ranks (1.5, 1.5, 3) is −√3 / 2
    other = pd.DataFrame([{"z": 1, "y": 2, "x": 3}, {"x": 5.0, "y": 5.0, "z": 9.0}])
    np.testing.assert_allclose(stats.spearman_rows(frame, other), [-1.0, -math.sqrt(3) / 2])


def test_normalised_means_normalise_each_env_by_the_grids_own_best():
    # A: best d = 4, random 0 → a..d = 0.25, 0.5, 0.75, 1; B: best a = 400, random 100 → 1, 2/3, 1/3, 0
    scores = pd.DataFrame([dict(variant=v, env=e, seed=1, score=x) for e, xs in (("A", (1, 2, 3, 4)), ("B", (400, 300, 200, 100)))
                           for v, x in zip("abcd", xs)])
    means = stats.normalised_means(scores, pd.Series({"A": 0.0, "B": 100.0}))
    np.testing.assert_allclose(means[list("abcd")], [0.625, (0.5 + 2 / 3) / 2, (0.75 + 1 / 3) / 2, 0.5])


def test_seed_split_agreement_by_hand():
    # one env, random 0; seed 2 swaps c and d, seed 3 reverses seed 1's order
    order = {1: (1, 2, 3, 4), 2: (1, 2, 4, 3), 3: (4, 3, 2, 1)}
    scores = pd.DataFrame([dict(variant=v, env="A", seed=s, score=x) for s, xs in order.items() for v, x in zip("abcd", xs)])
    random = pd.Series({"A": 0.0})
    pairs, held_out = stats.seed_split_agreement(scores, random)
    # ρ = 1 − 6 Σd² / (n (n² − 1)) without ties: (1, 2) Σd² = 2 → 0.8; (1, 3) → −1; (2, 3) Σd² = 18 → −0.8
    np.testing.assert_allclose(pairs, [0.8, -1.0, -0.8])
    # seed 1 against seeds 2+3, whose means (2.5, 2.5, 3, 2) rank (2.5, 2.5, 4, 1): ρ = −1.5 / √(4.5 · 5)
    assert held_out[0] == pytest.approx(-1.5 / math.sqrt(22.5))
    assert len(held_out) == 3
    # only a, b, c ranked: seeds 1 and 2 now agree
    pairs, _ = stats.seed_split_agreement(scores, random, ranked=list("abc"))
    np.testing.assert_allclose(pairs, [1.0, -1.0, -1.0])
    # cells with other seeds, or a single seed: no split
    assert stats.seed_split_agreement(scores.iloc[:-1], random) is None
    assert stats.seed_split_agreement(scores[scores.seed == 1], random) is None
    pairs, held_out = stats.seed_split_agreement(scores[scores.seed < 3], random)
    assert pairs == [pytest.approx(0.8)] and held_out == []


def test_half_split_agreement_by_hand():
    """Four seeds, halves of two, all 6 ways. Grid g: seeds 1 and 2 order x > y > z, seeds 3 and 4 mildly the other
    way, so a half holding one of each still orders x > y > z. Grid h: every seed x > y > z."""
    rows = {1: (30, 20, 10), 2: (30, 20, 10), 3: (12, 20, 26), 4: (12, 20, 26)}
    g = pd.DataFrame([dict(variant=v, env="A", seed=s, score=float(x)) for s, xs in rows.items() for v, x in zip("xyz", xs)])
    h = g.assign(score=g.variant.map({"x": 30.0, "y": 20.0, "z": 10.0}))
    k, agreement = stats.half_split_agreement({"g": g, "h": h}, pd.Series({"A": 0.0}))
    assert k == 2
    # splits in order (1,2|3,4) (1,3|2,4) (1,4|2,3) (2,3|1,4) (2,4|1,3) (3,4|1,2): only {1,2} against {3,4}
    # reverses the three (ρ −1); the mixed halves agree (1)
    np.testing.assert_allclose(agreement["g"], [-1, 1, 1, 1, 1, -1])
    np.testing.assert_allclose(agreement["h"], [1] * 6)
    # g's half against h's other half: only g's {3,4} (the last split) reverses; h's half against g's other
    # half: only g's {3,4} (the first split's other half)
    np.testing.assert_allclose(agreement[("g", "h")], [1, 1, 1, 1, 1, -1])
    np.testing.assert_allclose(agreement[("h", "g")], [-1, 1, 1, 1, 1, 1])
    # only the variants ranked: x and z alone, the same pattern
    _, two = stats.half_split_agreement({"g": g}, pd.Series({"A": 0.0}), ranked=["x", "z"])
    np.testing.assert_allclose(two["g"], [-1, 1, 1, 1, 1, -1])
    assert stats.half_split_agreement({"g": g, "h": h[h.seed < 4]}, pd.Series({"A": 0.0})) is None  # unlike seeds
    assert stats.half_split_agreement({"g": g[g.seed == 1]}, pd.Series({"A": 0.0})) is None


def test_draw_agreement_by_hand_and_against_a_naive_loop():
    # every seed orders a > b > c on one env: every 3-seed draw agrees with the rest at ρ 1
    scores = pd.DataFrame([dict(variant=v, env="A", seed=s, score=x + s) for s in range(1, 7)
                           for v, x in zip("abc", (30.0, 20.0, 10.0))])
    random = pd.Series({"A": 0.0})
    draws, reference = stats.draw_agreement(scores, random, pd.Series({"a": 0.9, "b": 0.5, "c": 0.1}))
    assert len(draws) == 20 and (draws == 1).all() and (reference == 1).all()  # C(6, 3) splits
    _, reversed_ = stats.draw_agreement(scores, random, pd.Series({"a": 0.1, "b": 0.5, "c": 0.9}))
    assert (reversed_ == -1).all()
    # fewer than 2k seeds, or cells with other seeds: no draw
    assert stats.draw_agreement(scores[scores.seed < 6], random, pd.Series({"a": 1.0, "b": 0.0, "c": 0.5})) is None
    assert stats.draw_agreement(scores.iloc[1:], random, pd.Series({"a": 1.0, "b": 0.0, "c": 0.5})) is None
    # random scores on 2 envs, 5 variants, 7 seeds: against a loop of plain numpy and scipy
    from itertools import combinations
    from scipy.stats import spearmanr
    rng = np.random.default_rng(4)
    envs, variants, seeds = {"A": -10.0, "B": 5.0}, list("vwxyz"), range(1, 8)
    scores = pd.DataFrame([dict(variant=v, env=e, seed=s, score=rng.normal(50, 20)) for e in envs for v in variants
                           for s in seeds])
    reference = pd.Series(rng.normal(size=4), index=list("wxyz"))  # over 4 of the 5: v is normalised in, not ranked
    cube = np.array([[[scores[(scores.env == e) & (scores.variant == v) & (scores.seed == s)].score.item()
                       for s in seeds] for v in variants] for e in envs])  # env × variant × seed
    anchors = np.array(list(envs.values()))[:, None]

    def ordering(kept):  # each env: random → 0, the best of the ranked variants → 1; then the mean over envs
        means = cube[:, 1:, [s - 1 for s in kept]].mean(axis=2)
        return ((means - anchors) / (means.max(axis=1, keepdims=True) - anchors)).mean(axis=0)

    expected_draws, expected_reference = [], []
    for drawn in combinations(seeds, 3):
        rest = ordering([s for s in seeds if s not in drawn])
        expected_draws.append(spearmanr(ordering(drawn), rest).statistic)
        expected_reference.append(spearmanr(reference.to_numpy(), rest).statistic)
    draws, reference_rhos = stats.draw_agreement(scores, pd.Series(envs), reference)
    np.testing.assert_allclose(draws, expected_draws)
    np.testing.assert_allclose(reference_rhos, expected_reference)


def test_the_draw_reading_gives_the_verdict_its_share_calls_for_and_nothing_unmeasured():
    from analysis import ppo_objectives
    row = pd.Series(dict(draws=120, draw_rho=0.5, draw_rho_low=0.2, draw_rho_high=0.7, draw_paper_rho=0.1,
                         draw_paper_below=0.97))
    text = ppo_objectives.draw_text(row)
    assert "all 120 ways" in text and "97% of the splits; not a plausible" in text and "without No clipping" not in text
    assert "; a plausible 3-seed draw" in ppo_objectives.draw_text(row.replace(0.97, 0.6))
    assert ppo_objectives.draw_text(pd.Series(dict(rho=0.5))) == ""  # 3 seeds: not measured, not mentioned


def test_two_groups_are_found_where_they_are_and_not_in_one_normal_sample():
    rng = np.random.default_rng(0)
    low, high = rng.normal(1500, 150, 120), rng.normal(3300, 300, 40)
    lower_mean, upper_mean, split, separation, evidence = stats.two_groups(np.concatenate([low, high]))
    assert abs(lower_mean - 1500) < 50 and abs(upper_mean - 3300) < 150
    assert low.max() < split < high.min() and separation > 6 and evidence > 10  # every run on its own side
    # where the two weighted normals cross: by hand for equal weights and spreads, halfway
    a, b = rng.normal(0, 1, 300), rng.normal(10, 1, 300)
    assert stats.two_groups(np.concatenate([a, b]))[2] == pytest.approx(5, abs=0.3)
    # one normal group, however its sample happens to bump
    assert all(stats.two_groups(rng.normal(1500, 150, 200)) is None for _ in range(20))
    # two groups too close to tell apart (Ashman's D = 1.4), too few values in one, and a constant sample
    assert stats.two_groups(np.concatenate([rng.normal(0, 1, 500), rng.normal(2, 1, 500)])) is None
    assert stats.two_groups(np.concatenate([rng.normal(0, 1, 200), [50.0, 51.0]])) is None
    assert stats.two_groups([5.0] * 10) is None
    # a group of tied runs (Acrobot's −500: no episode reached the goal) is a group, the most distinct of all
    floor, rest = np.full(12, -500.0), rng.normal(-90, 15, 28)
    lower_mean, upper_mean, split, separation, evidence = stats.two_groups(np.concatenate([floor, rest]))
    assert lower_mean == pytest.approx(-500) and abs(upper_mean + 90) < 10 and -500 < split < rest.min()
    assert separation > 20 and evidence > 10
    # and a tie of too few runs is not (under min_share), however distinct
    assert stats.two_groups(np.concatenate([rng.normal(-90, 15, 60), [-500.0, -500.0]])) is None


def test_share_interval_is_clopper_pearson():
    # k = 0 and k = n have closed forms: 1 − (α/2)^(1/n) and (α/2)^(1/n)
    assert stats.share_interval(0, 10) == pytest.approx((0.0, 1 - 0.025 ** 0.1))
    assert stats.share_interval(10, 10) == pytest.approx((0.025 ** 0.1, 1.0))
    assert stats.share_interval(5, 10) == pytest.approx((0.1871, 0.8129), abs=1e-4)  # a binomial table's values


def test_the_two_groups_are_counted_per_row_and_column():
    from analysis.common import two_groups_text
    setting = {"a": "Clipping, eps = 0.2", "b": "Clipping, eps = 0.2", "c": "Fixed KL, beta = 3"}
    regime = {"a": "ppo2", "b": "ppo1", "c": "ppo2"}
    upper = {"a": {1, 2}, "b": set(), "c": {1, 2, 3, 4}}  # the seeds that end high
    rng = np.random.default_rng(1)
    scores = pd.DataFrame([dict(variant=v, env="HalfCheetah-v5", seed=s,
                                score=rng.normal(3300, 100) if s in upper[v] else rng.normal(1500, 100))
                           for v in "abc" for s in range(1, 11)])
    planned = [grid.Run(v, "HalfCheetah-v5", s) for v in "abc" for s in range(1, 11)]
    text = two_groups_text(scores, planned, setting.get, regime.get, order=("ppo2", "ppo1"))
    assert "the upper group holds ppo2 6 of 20, ppo1 0 of 10 runs" in text
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:4]] for line in text.splitlines()
            if line.startswith("| ") and " of " in line}
    assert rows["Clipping, eps = 0.2"] == ["2 of 10 [3%, 56%]", "0 of 10 [0%, 31%]"]
    assert rows["Fixed KL, beta = 3"] == ["4 of 10 [12%, 74%]", ""]
    # one column by default; only the planned runs count; nothing where there is one group, or no score
    assert "the upper group holds 2 of 10 runs" in two_groups_text(scores, planned[:10], setting.get)
    assert two_groups_text(scores[scores.score < 2500], planned, setting.get) == ""
    # groups that only tell the settings apart (every seed of c high, every seed of a low): no news
    apart = scores.assign(score=np.where(scores.variant == "c", 3300.0, 1500.0) + rng.normal(0, 100, len(scores)))
    assert stats.two_groups(apart.score) is not None and two_groups_text(apart, planned, setting.get) == ""
    assert two_groups_text(None, planned, setting.get) == ""
    assert two_groups_text(scores.assign(env="Hopper-v5"), planned, setting.get) == ""  # no run on the task
    # every planned task is tested, in the planned order, each with its own runs only
    hopper = scores.assign(env="Hopper-v5", score=scores.score / 3)
    both = two_groups_text(pd.concat([scores, hopper]), planned + [r._replace(env="Hopper-v5") for r in planned],
                           setting.get, regime.get, order=("ppo2", "ppo1"))
    assert both.index("**HalfCheetah-v5's runs end") < both.index("**Hopper-v5's runs end")
    assert both.count("Its 30 runs of this experiment") == 2 and both.count("ppo2 6 of 20, ppo1 0 of 10 runs") == 2


def test_whether_the_seed_decides_the_group_against_an_exact_enumeration():
    """The permutation test's p against every way the cells' upper runs could have fallen among their seeds
    (a naive loop), and its place in the two-groups reading."""
    import itertools
    from analysis.common import two_groups_text
    seeds = [1, 2, 3, 4]
    upper = {"a": {1}, "b": {1, 2}, "c": {1, 3}, "d": set(), "e": {1, 2, 3, 4}}  # d and e have one group: dropped
    cells = [(c, s, s in ups) for c, ups in upper.items() for s in seeds]
    per_seed, counted, p = stats.seed_group_test(*zip(*cells))
    assert per_seed.tolist() == [3, 1, 1, 0] and counted == 3
    observed = np.var([3, 1, 1, 0])
    spreads = [np.var(np.bincount([s for pick in picks for s in pick], minlength=5)[1:])
               for picks in itertools.product(*(itertools.combinations(seeds, len(upper[c])) for c in "abc"))]
    exact = np.mean(np.array(spreads) >= observed - 1e-12)  # 4 · 6 · 6 = 144 equally likely ways
    assert len(spreads) == 144 and p == pytest.approx(exact, abs=0.015)
    assert stats.seed_group_test(["d"] * 4, seeds, [0, 0, 0, 0]) is None
    # in the reading: per column, once 2 or more of its cells have runs in both groups
    rng = np.random.default_rng(2)
    high = {"x": {8, 3}, "y": {8, 5}, "z": {8}}  # seed 8 goes up in every cell of ppo2
    scores = pd.DataFrame([dict(variant=v, env="HalfCheetah-v5", seed=s,
                                score=rng.normal(3300, 100) if s in high[v] else rng.normal(1500, 100))
                           for v in high for s in range(1, 11)])
    planned = [grid.Run(v, "HalfCheetah-v5", s) for v in high for s in range(1, 11)]
    text = two_groups_text(scores, planned, str.upper, lambda v: "ppo2")
    assert "**Does the seed decide the group?**" in text
    assert ("- 3 cells have runs in both groups; their upper-group runs per seed (seeds 1, 2, 3, 4, 5, 6, 7, 8, 9, "
            "10): 0, 0, 1, 0, 1, 0, 0, 3, 0, 0.") in text
    one = two_groups_text(scores[scores.variant != "z"], planned[:20], str.upper, lambda v: "ppo2")
    assert "2 cells have runs in both groups" in one
    assert "Does the seed" not in two_groups_text(scores[scores.variant == "x"], planned[:10], str.upper)


def test_predicted_agreement_by_hand_and_against_a_simulation():
    # Spearman–Brown by hand: r = 0.5 → R_3 = 1.5 / 2 = 0.75; one against two: √(0.5 · 1 / 1.5) = √(1/3)
    assert stats.predicted_agreement(0.5, 3, 3) == pytest.approx(0.75)
    assert stats.predicted_agreement(0.5, 1, 2) == pytest.approx(math.sqrt(1 / 3))
    # seeds that share no ordering (r ≤ 0): no agreement to predict, 0 (the formula's value at r = 0), never NaN
    assert stats.predicted_agreement(-0.1, 3, 3) == 0.0 and stats.predicted_agreement(0.0, 3, 3) == 0.0
    assert math.isnan(stats.predicted_agreement(float("nan"), 3, 3))
    # the model it assumes: a true value plus independent noise of the same variance (single r = 0.5)
    rng = np.random.default_rng(0)
    true = rng.normal(size=200_000)
    mean_of = lambda n: true + rng.normal(size=(n, true.size)).mean(axis=0)  # noqa: E731
    assert np.corrcoef(mean_of(3), mean_of(3))[0, 1] == pytest.approx(0.75, abs=0.01)
    assert np.corrcoef(mean_of(1), mean_of(2))[0, 1] == pytest.approx(math.sqrt(1 / 3), abs=0.01)


def test_held_out_coverage_by_hand_and_against_a_simulation():
    # a cell of seeds 1-3 (1, 2, 3: mean 2, s 1) and 4-5 (10, 12): t(0.975, 2) = 4.3027 → 2 ± 4.3027/√3
    scores = pd.DataFrame({"variant": "a", "env": "E", "seed": [1, 2, 3, 4, 5], "score": [1.0, 2.0, 3.0, 10.0, 12.0]})
    cell = stats.held_out_cells(scores, [1, 2, 3]).iloc[0]
    half = 4.302653 / math.sqrt(3)
    assert (cell.k, cell.m, cell.rest_mean, cell.holds) == (3, 2, 11.0, False)
    assert (cell.low, cell.high) == pytest.approx((2 - half, 2 + half), abs=1e-5)
    # all five: mean 5.6, squared deviations 101.2, s = √(101.2 / 4), t(0.975, 4) = 2.7764
    assert cell.width_all == pytest.approx(2 * 2.776445 * math.sqrt(101.2 / 4) / math.sqrt(5), abs=1e-4)
    assert stats.held_out_cells(scores[scores.seed <= 3], [1, 2, 3]).empty  # no other seeds: nothing to hold
    # normal seeds: the share of 3-seed intervals that hold the mean of 7 others, simulated and as the formula says
    rng = np.random.default_rng(1)
    first, rest = rng.normal(size=(200_000, 3)), rng.normal(size=(200_000, 7)).mean(axis=1)
    half = 4.302653 * first.std(axis=1, ddof=1) / math.sqrt(3)
    simulated = (np.abs(rest - first.mean(axis=1)) <= half).mean()
    assert stats.held_out_expected(3, 7) == pytest.approx(simulated, abs=0.003)
    assert 0.92 < stats.held_out_expected(3, 7) < 0.94 < 0.95  # below the nominal 95%: the other mean is noisy
    assert stats.held_out_expected(3, 10_000) == pytest.approx(0.95, abs=0.001)  # a mean without noise: 95%


def test_pair_decisions_by_hand():
    # on E: a (0, 1, 2 | 10, 11) is below b (5, 6, 7 | 5, 6) with seeds 1-3 (Welch: −5 ± 2.7764·√(2/3), df 4);
    # with all five seeds (means 4.8 and 5.8, a's spread wide) the pair is undecided. c = b + 100 is above both
    # either way. On F only one variant: no pair.
    rows = [("a", "E", [0, 1, 2, 10, 11]), ("b", "E", [5, 6, 7, 5, 6]), ("c", "E", [105, 106, 107, 105, 106]),
            ("a", "F", [1, 2, 3, 4, 5])]
    scores = pd.DataFrame([{"variant": v, "env": e, "seed": i + 1, "score": float(x)}
                           for v, e, xs in rows for i, x in enumerate(xs)])
    pairs = stats.pair_decisions(scores, [1, 2, 3]).set_index(["a", "b"])
    assert len(pairs) == 3 and set(pairs.env) == {"E"}
    assert tuple(pairs.loc[("a", "b")][["first_sign", "all_sign"]]) == (-1, 0)
    assert tuple(pairs.loc[("a", "c")][["first_sign", "all_sign"]]) == (-1, -1)
    assert tuple(pairs.loc[("b", "c")][["first_sign", "all_sign"]]) == (-1, -1)
    _, low, high = stats.welch_interval([0, 1, 2], [5, 6, 7])
    assert (low, high) == pytest.approx((-5 - 2.776445 * math.sqrt(2 / 3), -5 + 2.776445 * math.sqrt(2 / 3)), abs=1e-5)


def test_the_report_says_what_the_seeds_beyond_a_subset_changed_over_the_cells_that_have_them_all():
    from analysis import report
    config = {"experiments": {"baselines": {"variants": ["a", "b"]}, "algorithms": {"variants": ["b", "c"]}},
              "scales": {"x": {"experiments": {"baselines": {"envs": ["E", "F"], "seeds": [1, 2, 3, 4, 5]},
                                               "algorithms": {"envs": ["E"], "seeds": [1, 2, 3, 4, 5]}},
                               "subsets": {"s": {"seeds": [1, 2, 3], "envs": ["E", "F"]}}}}}
    values = {"a": [0, 1, 2, 10, 11], "b": [5, 6, 7, 5, 6], "c": [105, 106, 107, 105, 106]}
    scores = pd.DataFrame([{"variant": v, "env": "E", "seed": i + 1, "score": float(x)}
                           for v, xs in values.items() for i, x in enumerate(xs)]
                          + [{"variant": "a", "env": "F", "seed": 1, "score": 1.0}])  # F: 1 of 5 seeds so far
    lines, found = report.more_seeds(config, "x", scores)
    assert lines[0] == "## What the seeds beyond s changed"
    assert lines[2].startswith("Over the cells (variant × env) of the s envs that have every planned seed, the rest "
                               "still training. Interval: does the 95% t-interval from seeds 1-3 (s/REPORT.md prints "
                               "it) hold the mean of the cell's other seeds? If every seed's score came from one normal "
                               "distribution it would 89% of the time (3 seeds against 2:")
    # 3 seeds against 2: P(|T₂| < 4.3027·√(1/3)/√(1/3 + 1/2) = 2.7213), and T₂'s CDF is ½ + t / (2√(2 + t²)): 0.887
    assert found == ["- **seeds beyond s** (3 cells with every seed so far): 2 of 3 seeds 1-3 intervals held the mean "
                     "of the other seeds (89% would for normal seeds); of 2 pairs of variants on one env, seeds 1-3 "
                     "decided 2, all seeds 1, and 0 reversed, 1 undecided now "
                     "([details](#what-the-seeds-beyond-s-changed))."]
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in lines if line.startswith("| ") and "---" not in line}
    # baselines: a and b on E (F's cells miss seeds); a's 3-seed interval 1 ± 2.48 misses 10.5, b's holds 5.5;
    # the pair a-b decided below with seeds 1-3, undecided with all (test_pair_decisions_by_hand)
    assert rows["baselines"][:2] == ["2 of 4", "1 of 2 (50%) [1%, 99%]"]
    assert rows["baselines"][3:] == ["1", "1", "0", "0", "1 |"]
    assert rows["algorithms"][:2] == ["2 of 2", "2 of 2 (100%) [16%, 100%]"]
    assert rows["algorithms"][3:] == ["1", "1", "1", "0", "0 |"]
    # each cell and pair once: a, b, c on E; pairs a-b and b-c
    assert rows["all, each cell and pair once"][:2] == ["3", "2 of 3 (67%) [9%, 99%]"]
    assert rows["all, each cell and pair once"][3:] == ["2", "2", "1", "0", "1 |"]
    assert lines[-4] == "By env, the intervals that hold the other seeds' mean: E 2 of 3."
    assert "a on E, [-1.4841, 3.4841] against 10.5." in lines[-2]
    # a cell whose first seeds all scored the same (a task's ceiling) has an interval of no width: a miss, said so
    flat = scores.assign(score=np.where((scores.variant == "b") & (scores.seed <= 3), 1000.0, scores.score))
    assert "b on E, [1000, 1000] against 5.5 (its 3 seeds scored the same: an interval of no width" in \
        report.more_seeds(config, "x", flat)[0][-2]
    assert report.more_seeds(config, "x", scores[scores.seed <= 3]) == ([], [])  # no cell has every seed yet
    del config["scales"]["x"]["subsets"]["s"]["seeds"]
    assert report.more_seeds(config, "x", scores) == ([], [])  # a subset of envs only: the seeds are all the same


def test_curves_bin_and_carry_forward():
    eps = pd.DataFrame({"variant": "v", "env": "E", "seed": 1, "global_step": [10, 20, 60],
                        "ep_return": [1.0, 3.0, 5.0]})
    c = stats.curves(eps, points=4, total_steps=100)
    np.testing.assert_array_equal(c.step, [25, 50, 75, 100])
    np.testing.assert_array_equal(c["return"], [2.0, 2.0, 5.0, 5.0])


def test_learning_speed_is_the_mean_of_the_learning_curve():
    eps = pd.DataFrame({"variant": "v", "env": "E", "seed": [1, 1, 1, 2, 2], "global_step": [10, 20, 60, 60, 90],
                        "ep_return": [1.0, 3.0, 5.0, 4.0, 6.0]})
    speed = stats.learning_speed(stats.curves(eps, points=4, total_steps=100)).set_index("seed").speed
    assert speed[1] == (2 + 2 + 5 + 5) / 4  # the curve of the test above
    assert speed[2] == (4 + 6) / 2  # no episode finished before step 50: those intervals do not count


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    ppo = load_algorithm("ppo")
    out = tmp_path_factory.mktemp("scale") / "runs" / "ppo_clip_0.2" / "CartPole-v1" / "seed1"
    ppo.train(ppo.Args(env_id="CartPole-v1", num_steps=128, minibatch_size=64, update_epochs=1,
                       total_timesteps=256, out=str(out)), quiet=True)
    return out


def test_load_runs_tidy_frames(good_run):
    runs, progress, episodes = load_runs(good_run.parent.parent.parent.parent)
    assert runs[["variant", "env", "seed", "algo"]].values.tolist() == [["ppo_clip_0.2", "CartPole-v1", 1, "ppo"]]
    assert list(progress.columns[:len(PROGRESS_COLUMNS)]) == PROGRESS_COLUMNS and len(progress) == 2
    assert (episodes.variant == "ppo_clip_0.2").all() and len(episodes) > 5


@pytest.mark.parametrize("damage,message", [
    (lambda d: (d / "run.json").unlink(), r"run.json: missing \(the run did not finish\)"),
    (lambda d: (d / "progress.csv").write_text("algo,env_id\nppo,CartPole-v1\n"), "progress.csv: columns differ"),
    (lambda d: (d / "episodes.csv").write_text("step,return\n1,2\n"), "episodes.csv: columns differ"),
    (lambda d: (d / "run.json").write_text(json.dumps({**json.loads((d / "run.json").read_text()),
                                                       "exit_status": "killed"})), "exit_status"),
    (lambda d: (d / "run.json").write_text("{not json"), "not JSON"),
    (lambda d: (d / "run.json").write_text(json.dumps({k: v for k, v in json.loads((d / "run.json").read_text()).items()
                                                       if k != "walltime_s"})), r"run.json: missing key\(s\) walltime_s"),
    # a progress.csv cut mid-line, and one cut at a line end (a shorter run that run.json contradicts)
    (lambda d: (d / "progress.csv").write_text((d / "progress.csv").read_text()[:-40]), "line 3 has"),
    (lambda d: (d / "progress.csv").write_text("".join((d / "progress.csv").read_text().splitlines(True)[:2])),
     "ends at global_step 128, run.json says 256 steps were trained"),
    (lambda d: (d / "episodes.csv").write_text("global_step,ep_return,ep_length,terminated\n"), "0 episodes, progress counts"),
    (lambda d: (d / "episodes.csv").unlink(), "missing episodes.csv"),
    # no silent wrong score: a return that is no number, or one that is not the episode progress.csv logged
    (lambda d: edit_cell(d / "episodes.csv", 0, "ep_return", "nan"), r"line 2, ep_return nan is not a finite return"),
    (lambda d: edit_cell(d / "episodes.csv", 1, "ep_return", "inf"), r"line 3, ep_return inf is not a finite return"),
    (lambda d: edit_cell(d / "episodes.csv", 2, "ep_return", "1e300"), r"line 4, ep_return 1e\+300 is not a finite"),
    (lambda d: edit_cell(d / "episodes.csv", 2, "ep_return", "499"), r"have mean return .*, progress.csv logged"),
    (lambda d: edit_cell(d / "progress.csv", 1, "value_loss", "oops"), r"line 3, column value_loss: 'oops' is not a number"),
    (lambda d: (d / "episodes.csv").unlink() or (d / "episodes.csv.gz").write_bytes(b"\x1f\x8b\x08\x00garbage"),
     "episodes.csv.gz: unreadable"),
    (lambda d: (d / "episodes.csv").unlink() or (d / "episodes.csv.xz").write_bytes(b"\xfd7zXZ\x00garbage"),
     "episodes.csv.xz: unreadable"),
    # an xz file cut short (a copy that stopped mid-way): never read as the rows it holds so far
    (lambda d: (d / "progress.csv.xz").write_bytes(lzma.compress((d / "progress.csv").read_bytes())[:-30])
     and (d / "progress.csv").unlink(), "progress.csv.xz: unreadable"),
    # files copied from another run: their identity columns contradict run.json
    (lambda d: edit_cell(d / "progress.csv", 0, "seed", "7"), r"column seed holds \['1', '7'\], the run is 1"),
    (lambda d: edit_cell(d / "progress.csv", 1, "env_id", "Hopper-v5"), r"column env_id holds .*Hopper-v5"),
])
def test_load_rejects_a_broken_run_naming_it(good_run, tmp_path, damage, message):
    broken = tmp_path / "seed1"
    shutil.copytree(good_run, broken)
    damage(broken)
    with pytest.raises(RunContractError, match=message) as info:
        load_run(broken)
    assert str(broken) in str(info.value)


def test_runs_in_the_wrong_place_are_refused_in_one_line(good_run, tmp_path):
    scale = tmp_path / "scale"
    shutil.copytree(good_run.parent.parent.parent.parent, scale)
    runs = scale / "runs" / "ppo_clip_0.2"
    shutil.copytree(runs / "CartPole-v1" / "seed1", runs / "CartPole-v1" / "seed1 (copy)")
    with pytest.raises(RunContractError, match=r"seed1 \(copy\): not a run folder name \(seed<k>\)"):
        load_runs(scale)
    shutil.rmtree(runs / "CartPole-v1" / "seed1 (copy)")
    shutil.move(runs / "CartPole-v1" / "seed1", runs / "CartPole-v1" / "seed2")  # a run.json for seed 1, in seed2/
    with pytest.raises(RunContractError, match=r"seed2/run.json: seed 1, env 'CartPole-v1', but the folder is "
                                               r"CartPole-v1/seed2"):
        load_runs(scale)


@pytest.mark.parametrize("damage,message", [
    (lambda p: p.unlink(), r"CartPole-v1.csv: missing: CartPole-v1's random-policy anchor"),
    (lambda p: p.write_text("episode,ep_return,ep_length,terminated\n0,inf,3,1\n"), r"line 2, ep_return inf is not"),
    (lambda p: p.write_text("episode,ep_return,ep_length,terminated\n0,twenty,3,1\n"),
     r"line 2, column ep_return: 'twenty' is not a number"),
    (lambda p: p.write_text("episode,score\n0,3\n"), r"columns \['episode', 'score'\], a random-policy anchor has"),
    (lambda p: p.write_text("episode,ep_return,ep_length,terminated\n"), "no episodes"),
])
def test_broken_random_policy_anchors_are_refused_naming_the_file(tmp_path, damage, message):
    from analysis.load import load_random
    anchor = tmp_path / "random" / "CartPole-v1.csv"
    anchor.parent.mkdir()
    anchor.write_text("episode,ep_return,ep_length,terminated\n0,20.0,20,1\n1,24.0,24,1\n")
    assert load_random(tmp_path, ["CartPole-v1"]).ep_return.mean() == 22.0
    damage(anchor)
    with pytest.raises(RunContractError, match=message):
        load_random(tmp_path, ["CartPole-v1"])


def test_random_text_gives_each_task_its_random_mean_and_the_episode_count(tmp_path):
    from analysis.common import random_text
    (tmp_path / "random").mkdir()
    (tmp_path / "random" / "CartPole-v1.csv").write_text("episode,ep_return,ep_length,terminated\n0,20.0,20,1\n"
                                                         "1,24.0,24,1\n")
    (tmp_path / "random" / "Acrobot-v1.csv").write_text("episode,ep_return,ep_length,terminated\n0,-500.0,500,0\n"
                                                        "1,-495.5,496,1\n")
    (tmp_path / "random" / "Hopper-v5.csv").write_text("episode,ep_return,ep_length,terminated\n0,9.0,9,1\n")
    text = random_text(tmp_path, ["CartPole-v1", "Acrobot-v1"])  # Hopper's file is there, but not asked for
    assert text.endswith("over 2 episodes per task (`experiments/random_policy.py`; the 0 of every normalised "
                         "score): Acrobot-v1 -497.8, CartPole-v1 22.0.")
    assert "1-2 episodes" in random_text(tmp_path, ["CartPole-v1", "Hopper-v5"])


def edit_cell(path, row, column, value):
    """Change one cell of a CSV file, leaving every other byte as it was."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    rows[row + 1][rows[0].index(column)] = value
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)


def test_compare_same_seed_elsewhere_is_identical_and_differences_are_named(good_run, tmp_path):
    ppo = load_algorithm("ppo")
    scale_a = tmp_path / "scale_a"  # a copy: this test adds a run to it, and good_run is shared
    shutil.copytree(good_run, scale_a / "runs" / "ppo_clip_0.2" / "CartPole-v1" / "seed1")
    scale_b = tmp_path / "scale_b"
    run_b = scale_b / "runs" / "ppo_clip_0.2" / "CartPole-v1" / "seed1"
    args = dict(env_id="CartPole-v1", num_steps=128, minibatch_size=64, update_epochs=1, total_timesteps=256)
    ppo.train(ppo.Args(**args, out=str(run_b)), quiet=True)  # same run, other folder, other clock
    assert compare.differences(scale_a, scale_b) == []

    edit_cell(run_b / "progress.csv", 1, "walltime_s", "123.0")  # a clock column may differ
    assert compare.differences(scale_a, scale_b) == []
    edit_cell(run_b / "progress.csv", 1, "value_loss", "0.5")
    assert compare.differences(scale_a, scale_b) == ["runs/ppo_clip_0.2/CartPole-v1/seed1/progress.csv: differs from line 3"]

    other = scale_b / "runs" / "ppo_clip_0.2" / "CartPole-v1" / "seed2"
    ppo.train(ppo.Args(**args, out=str(other), seed=2), quiet=True)
    meta = json.loads((other / "run.json").read_text())
    (other / "run.json").write_text(json.dumps({**meta, "versions": {**meta["versions"], "mujoco": "3.3.0"}}))
    found = compare.differences(scale_a, scale_b)
    assert "runs/ppo_clip_0.2/CartPole-v1/seed2: only in " + str(scale_b) in found and len(found) == 2
    shutil.copytree(other, scale_a / "runs" / "ppo_clip_0.2" / "CartPole-v1" / "seed2")
    (other / "run.json").write_text(json.dumps(meta))
    assert compare.differences(scale_a, scale_b)[1].startswith("runs/ppo_clip_0.2/CartPole-v1/seed2/run.json: versions differ")


def test_compare_lets_only_the_code_fields_differ_when_asked(good_run, tmp_path):
    scale_a, scale_b = tmp_path / "scale_a", tmp_path / "scale_b"
    for scale in (scale_a, scale_b):
        shutil.copytree(good_run, scale / "runs" / "ppo_clip_0.2" / "CartPole-v1" / "seed1")
    run_b = scale_b / "runs" / "ppo_clip_0.2" / "CartPole-v1" / "seed1"
    meta = json.loads((run_b / "run.json").read_text())
    (run_b / "run.json").write_text(json.dumps({**meta, "git_commit": "f" * 40, "code_sha256": "0" * 64}))
    assert [line.split(": ")[1].split(" ")[0] for line in compare.differences(scale_a, scale_b)] == ["git_commit", "code_sha256"]
    assert compare.differences(scale_a, scale_b, code_may_differ=True) == []
    (run_b / "run.json").write_text(json.dumps({**meta, "git_commit": "f" * 40, "threads": 2}))
    assert compare.differences(scale_a, scale_b, code_may_differ=True) == [
        "runs/ppo_clip_0.2/CartPole-v1/seed1/run.json: threads differs (1 vs 2)"]


def test_compare_reruns_checks_a_subset_against_the_originals_made_by_code_computing_the_same_numbers(good_run, tmp_path):
    scale_a, scale_b = tmp_path / "scale_a", tmp_path / "scale_b"
    for seed in (1, 2):  # the originals: two runs
        shutil.copytree(good_run, scale_a / "runs" / "ppo_clip_0.2" / "CartPole-v1" / f"seed{seed}")
    run_b = scale_b / "runs" / "ppo_clip_0.2" / "CartPole-v1" / "seed1"  # the rerun: one of them, at another commit
    shutil.copytree(good_run, run_b)
    meta = json.loads((run_b / "run.json").read_text())
    (run_b / "run.json").write_text(json.dumps({**meta, "git_commit": "f" * 40, "git_dirty": True}))
    assert compare.differences(scale_a, scale_b, reruns=True) == []
    assert "runs/ppo_clip_0.2/CartPole-v1/seed2: only in " + str(scale_a) in compare.differences(scale_a, scale_b)
    (run_b / "run.json").write_text(json.dumps({**meta, "code_sha256": "0" * 64}))  # code not recorded as equivalent
    assert compare.differences(scale_a, scale_b, reruns=True) == [
        f"runs/ppo_clip_0.2/CartPole-v1/seed1/run.json: code 000000000000 is not shown to compute what {meta['code_sha256'][:12]} computed"]
    made_then = next(iter(grid.code_versions()["ppo"]["fingerprints"]))  # ppo.py at the reference commit, recorded
    (run_b / "run.json").write_text(json.dumps({**meta, "code_sha256": None, "script_sha256": made_then}))
    assert compare.differences(scale_a, scale_b, reruns=True) == []
    shutil.copytree(good_run, scale_b / "runs" / "ppo_clip_0.2" / "CartPole-v1" / "seed3")  # no original
    assert "runs/ppo_clip_0.2/CartPole-v1/seed3: only in " + str(scale_b) in compare.differences(scale_a, scale_b, reruns=True)
    assert compare.differences(scale_a, tmp_path / "empty", reruns=True) == [f"no runs under {tmp_path / 'empty'}/runs"]


def test_reading_shows_ties_as_ties():
    from analysis.common import reading_curves
    table = pd.DataFrame({"env": ["CartPole-v1"] * 3, "variant": ["a", "b", "c"], "mean": [500.0, 239.0, 500.0],
                          "ci_low": [500.0, 100.0, 500.0], "ci_high": [500.0, 300.0, 500.0]})
    lines = reading_curves(table, higher_than=("b", ["a"])).splitlines()
    assert lines[0] in ("- CartPole-v1: a (500.0) = c (500.0) > b (239.0).", "- CartPole-v1: c (500.0) = a (500.0) > b (239.0).")
    assert lines[1] == "  - a vs b: higher, with non-overlapping 95% intervals."


def test_reading_orders_only_what_the_intervals_separate():
    from analysis.common import reading_curves
    table = pd.DataFrame({"env": ["E"] * 3, "variant": ["a", "b", "c"], "mean": [10.0, 9.0, 1.0],
                          "ci_low": [8.0, 7.0, 0.0], "ci_high": [12.0, 11.0, 2.0]})
    assert reading_curves(table).splitlines()[0] == "- E: a (10.0) ≈ b (9.0) > c (1.0)."


def test_reading_says_where_a_cell_rests_on_one_seed_and_leaves_the_rest_to_the_protocol():
    from analysis.common import INTERVALS, reading_curves
    table = pd.DataFrame({"env": ["E"] * 2, "variant": ["a", "b"], "mean": [10.0, 1.0], "ci_low": [8.0, 0.0],
                          "ci_high": [12.0, 2.0], "seeds": [3, 2]})
    assert "How sure" not in reading_curves(table)  # said once, in the protocol
    assert "exactly the range of the seeds, which holds the mean only 75% of the time" in INTERVALS
    table["seeds"] = [3, 1]
    assert reading_curves(table).splitlines()[-1] == (
        "- How sure: some cells have a single seed so far; they have no interval, and the ranks and shares resampled "
        "from them say nothing yet. Read them as one sample.")


def test_gae_reading_names_the_best_lambda_by_final_score_and_by_speed_and_its_rivals():
    from analysis.gae_lambda import reading_gae
    table = pd.DataFrame({"env": "E", "variant": ["g0", "g95", "g1"], "lambda": [0.0, 0.95, 1.0], "seeds": 3,
                          "mean": [100.0, 900.0, 850.0], "p_best": [0.0, 0.7, 0.3],
                          "speed_mean": [50.0, 300.0, 420.0], "speed_p_best": [0.0, 0.04, 0.96]})
    first = reading_gae(table).splitlines()[0]
    assert first == ("- E: best final score at λ = 0.95 (900.0, best in 70% of seed resamples; also best in ≥ 5% of "
                     "resamples: λ = 1 (30%); inside the GAE paper's range). Fastest learning (mean return over the "
                     "whole run) at λ = 1 (420.0, best in 96% of seed resamples; no other λ is best in ≥ 5% of "
                     "resamples; outside the GAE paper's range). λ = 0 scores 100.0, λ = 1 scores 850.0.")
    assert "λ in [0.92, 0.98] (Fig. 2)" in reading_gae(table)


def test_the_gae_reading_orders_the_lambdas_over_the_tasks_by_final_score_and_by_speed():
    from types import SimpleNamespace

    from analysis import gae_lambda
    table = pd.DataFrame({"env": "E", "variant": ["g0", "g95"], "lambda": [0.0, 0.95], "seeds": 3,
                          "mean": [100.0, 900.0], "p_best": [0.0, 1.0], "speed_mean": [50.0, 300.0],
                          "speed_p_best": [0.0, 1.0], "aggregate_tasks": "E, F", "aggregate_left_out": "",
                          "aggregate_runs": 6, "aggregate_mean": [0.4, 1.0], "aggregate_mean_ci_low": [0.3, 0.9],
                          "aggregate_mean_ci_high": [0.5, 1.1], "aggregate_iqm": [0.41, 0.99],
                          "aggregate_iqm_ci_low": [0.31, 0.9], "aggregate_iqm_ci_high": [0.51, 1.0],
                          "aggregate_speed_iqm": [0.8, 0.7], "aggregate_speed_iqm_ci_low": [0.75, 0.6],
                          "aggregate_speed_iqm_ci_high": [0.85, 0.8]})
    ctx = SimpleNamespace(scores=None, planned=[], config=None)
    text = gae_lambda.reading(table, ctx)
    assert "**Over the tasks.** Over the 2 tasks" in text
    assert "- IQM (the mean of the middle half of the runs; a few runs far out move it little): λ = 0.95 (0.99) > λ = 0 (0.41)." in text
    # by speed the order turns, and the two intervals overlap
    assert ("- Learning speed (mean return over the whole run), normalised the same way (random 0, the fastest λ's "
            "mean 1), IQM: λ = 0 (0.80) ≈ λ = 0.95 (0.70).") in text


def test_the_gae_figure_draws_each_lambdas_mean_learning_curve_in_its_colour():
    """The left column of the GAE figure, as the GAE paper's Fig. 2 draws cart-pole: per λ the mean over its seeds
    of the training return at each point of the step grid, coloured by λ; the y axis leaves out the first fifth."""
    import matplotlib.pyplot as plt

    from analysis.gae_lambda import draw_curves
    returns = {("g0", 1): [-500.0, 10, 20, 30, 40], ("g0", 2): [-500.0, 30, 40, 50, 60],
               ("g1", 1): [-500.0, 100, 110, 120, 130], ("g1", 2): [-500.0, 100, 130, 140, 150]}
    curves = pd.DataFrame([(v, "E", seed, 100.0 * (k + 1), r) for (v, seed), rs in returns.items()
                           for k, r in enumerate(rs)], columns=["variant", "env", "seed", "step", "return"])
    fig, ax = plt.subplots()
    draw_curves(ax, curves, {"g0": 0.0, "g1": 1.0}, {0.0: "C0", 1.0: "C1"}, total=1000)
    drawn = [(line.get_color(), list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()]
    assert drawn == [("C0", [100, 200, 300, 400, 500], [-500, 20, 30, 40, 50]),
                     ("C1", [100, 200, 300, 400, 500], [-500, 100, 120, 130, 140])]
    low, high = ax.get_ylim()  # the means from step 200 = 20% of the run on: the start at -500 left out
    assert low == pytest.approx(20 - 0.08 * 120) and high == pytest.approx(140 + 0.08 * 120)
    plt.close(fig)


def test_the_cart_pole_claim_counts_the_resamples_whose_fastest_lambda_is_in_the_papers_range():
    """The GAE paper's Fig. 2 puts cart-pole's fastest improvement at λ in [0.92, 0.98]: the reading sums the
    shares of resamples in which each λ of that range learns fastest (0.92 and 0.96 here, not 0.99 or 0)."""
    from analysis.gae_lambda import cartpole_claim, reading_gae
    lambdas = [0.0, 0.92, 0.96, 0.99]
    speed_p = [0.05, 0.25, 0.45, 0.25]
    table = pd.DataFrame({"env": "CartPole-v1", "variant": [f"g{x}" for x in lambdas], "lambda": lambdas, "seeds": 10,
                          "mean": 500.0, "p_best": 0.25, "speed_mean": [300.0, 440.0, 450.0, 445.0],
                          "speed_p_best": speed_p, "early_speed_mean": [100.0, 200.0, 250.0, 260.0],
                          "early_speed_p_best": [0.0, 0.1, 0.3, 0.6]})
    assert cartpole_claim(table) == ("CartPole-v1", 0.96, 0.45, pytest.approx(0.25 + 0.45), 2, 4, 0.92, 0.98, 0.99, 0.6)
    assert ("- The GAE paper's cart-pole claim on CartPole-v1: our fastest learning is at λ = 0.96 (fastest in 45% of "
            "seed resamples), inside its range [0.92, 0.98]; the fastest λ lies in that range in 70% of resamples, "
            "where 2 of our 4 λs lie (50% if every λ learned as fast). Over the first 10% of the run alone, the fastest "
            "is λ = 0.99 (60% of resamples).") in reading_gae(table).splitlines()
    # with λ = 0.99 missing on CartPole while another task has it, no claim yet
    other = table.assign(env="Hopper-v5")
    assert cartpole_claim(pd.concat([other, table[table["lambda"] != 0.99]])) is None


def table1_identities(variants):
    """What each of the paper config's variants is in Table 1, read from its arguments (ppo_objectives.identify)."""
    from analysis.ppo_objectives import identify, load_paper
    return identify(grid.load(), "paper", variants, load_paper())


def test_objectives_reading_states_the_interval_of_the_rank_correlation():
    from analysis.ppo_objectives import load_paper, paper_settings, reading_objectives
    settings = paper_settings(load_paper())
    n = len(settings)
    table = pd.DataFrame({"regime": "ppo2", "variant": [f"v{i}" for i in range(n)], "setting": settings,
                          "paper": np.linspace(0, 1, n),
                          "runs": 6, "mean": np.linspace(0, 1, n), "mean_ci_low": 0.0, "mean_ci_high": 1.0,
                          "p_best": [0.0] * (n - 2) + [0.1, 0.9], "rank": np.arange(n, 0, -1),
                          "rank_ci_low": 1.0, "rank_ci_high": 3.0, "rho": 1.0, "rho_ci_low": 0.4, "rho_ci_high": 1.0,
                          "X score": 1.0, "X seeds": 3, "Y score": 1.0, "Y seeds": 3, "aggregated_envs": "X, Y"})
    text = reading_objectives(table)
    assert ("**ppo2 regime**: Spearman's ρ with the paper over 11 settings = 1.00, 95% seed-bootstrap interval "
            "[0.40, 1.00]; the interval excludes 0: the ordering agrees") in text
    assert f"best in 90% of seed resamples; also best in ≥ 5%: {settings[-2]} (10%)" in text
    assert "How sure" not in text
    table[["rho_ci_low", "rho_ci_high"]] = [-0.2, 0.5]
    assert "includes 0: these seeds cannot tell" in reading_objectives(table)
    # a partial grid: one cell so far has a single seed, another env none at all (the paper scale's first runs)
    table["X seeds"], table["Y seeds"], table["runs"] = [1] + [3] * (n - 1), np.nan, [1] + [3] * (n - 1)
    table["aggregated_envs"] = "X"  # no env whole: every env with runs (whole_envs)
    assert "some cells have a single seed so far" in reading_objectives(table)
    assert "Caution" not in reading_objectives(table)  # every setting has runs on X alone: the same envs
    table.loc[0, "Y seeds"], table["aggregated_envs"] = 2, "X, Y"  # one setting now also has runs on Y
    assert "Caution: so far the settings have runs on different envs (1 to 2 each)" in reading_objectives(table)
    # X is whole, Y not: the aggregates are over X alone, and the reading says so instead of the caution
    table["X seeds"], table["runs"], table["aggregated_envs"] = 3, 3, "X"
    text = reading_objectives(table)
    assert "Over 1 env(s) so far, the ones holding every setting with all its seeds: X." in text
    assert "Caution" not in text
    assert "How sure" not in text  # the caveat counts the seeds of X's cells, not Y's 2
    # two regimes, one complete and one with single seeds so far: a caveat for each, saying which
    ppo1 = table.assign(regime="ppo1", variant="w" + table.variant.str[1:], **{"X seeds": 1})
    text = reading_objectives(pd.concat([table, ppo1], ignore_index=True))
    assert "How sure (ppo2 regime)" not in text
    assert "- How sure (ppo1 regime): some cells have a single seed so far" in text


def test_published_reading_places_each_published_mean_against_our_interval_at_the_same_budget_only():
    from analysis.algorithms import reading_published
    # baselines ppo2 at 1M: Hopper 2316.16, HalfCheetah 1668.58; trpo_mpi Hopper 1912.9 (analysis/published)
    table = pd.DataFrame({"variant": ["ppo_clip_0.2", "ppo_clip_0.2", "trpo"], "env": ["Hopper-v5", "HalfCheetah-v5", "Hopper-v5"],
                          "mean": [2000.0, 1000.0, 2500.0], "ci_low": [1500.0, 900.0, 2400.0], "ci_high": [2500.0, 1100.0, 2600.0]})
    config = grid.load()
    matches = setups.variant_matches(config, "paper", ["vpg_gae", "trpo", "ppo_clip_0.2"])
    at_1m = {"Hopper-v5": 1_000_000, "HalfCheetah-v5": 1_000_000}
    text = reading_published(table, at_1m, matches)
    assert "- ppo_clip_0.2 on Hopper-v5: 2000 [1500, 2500]; baselines ppo2 (v2?, 6 seeds, [P]) 2316, inside our interval; " \
           "ours is 0.86× it." in text
    assert "HalfCheetah-v5: 1000 [900, 1100]; baselines ppo2 (v2?, 6 seeds, [P]) 1669, above our interval" in text
    assert "trpo on Hopper-v5: 2500 [2400, 2600]; baselines trpo_mpi (v2?, 6 seeds, [P]) 1913, below our interval" in text
    # the summary counts the same placements: ppo2 is inside on Hopper, above ours on HalfCheetah (cleanrl too);
    # median of the ratios, by hand: (2000/2316.16 + 1000/1668.58) / 2 = 0.731, (2000/2382.86 + 1000/1442.64) / 2 = 0.766
    summary = {line.split("|")[1].strip() + " / " + line.split("|")[2].strip(): [c.strip() for c in line.split("|")[3:-1]]
               for line in text.split("\n\n")[0].splitlines()[2:]}
    assert list(summary) == ["trpo / baselines trpo_mpi", "trpo / spinningup_tf1 trpo",  # the variants' order
                             "ppo_clip_0.2 / baselines ppo2", "ppo_clip_0.2 / cleanrl ppo_continuous_action"]
    assert summary == {"ppo_clip_0.2 / baselines ppo2": ["2", "0", "1", "1", "0.73× (0.60–0.86)"],
                       "ppo_clip_0.2 / cleanrl ppo_continuous_action": ["2", "0", "1", "1", "0.77× (0.69–0.84)"],
                       "trpo / baselines trpo_mpi": ["1", "1", "0", "0", "1.31× (1.31–1.31)"],
                       "trpo / spinningup_tf1 trpo": ["1", "1", "0", "0", "2.15× (2.15–2.15)"]}
    quick = reading_published(table, {env: 300_000 for env in at_1m}, matches)
    assert "inside" not in quick and "Not compared: baselines ppo2, baselines trpo_mpi, cleanrl" in quick


def test_rank_correlation_only_between_settings_scored_on_the_same_envs():
    """ρ with the paper's column compares normalised scores across settings. A partial grid aggregates
    over the envs that hold every setting with all its seeds; with no such env, one setting lacking an env
    would be averaged over other tasks, so ρ is withheld. Below 4 settings there is no ρ either."""
    from types import SimpleNamespace
    from analysis.ppo_objectives import load_paper, objectives_one_regime
    paper = load_paper()
    # our scores ordered as the paper's column orders these 4 settings (-0.39 < 0.62 < 0.70 < 0.82)
    level = {"ppo_none": 10.0, "ppo_kl_fixed_0.3": 20.0, "ppo_clip_0.3": 30.0, "ppo_clip_0.2": 40.0}
    scores = pd.DataFrame([dict(variant=v, env=e, seed=s, score=x + s) for v, x in level.items()
                           for e in ("A", "B") for s in (1, 2, 3)])

    def table(scores):
        variants = list(dict.fromkeys(scores.variant))
        data = SimpleNamespace(scores=scores, variants=variants, table1=table1_identities(variants), planned_seeds=3,
                               random_score=pd.Series({"A": 0.0, "B": 0.0}))
        return objectives_one_regime(data, "ppo2", paper).set_index("variant")

    def rho(scores):
        t = table(scores)
        return t["rho"].iloc[0] if "rho" in t else np.nan

    assert rho(scores) == pytest.approx(1.0)
    assert table(scores).aggregated_envs.eq("A, B").all()
    # B lacks a setting: A alone is whole, so the aggregates and ρ are over A; B's raw scores stay in the table
    one_env_short = scores[~((scores.variant == "ppo_clip_0.2") & (scores.env == "B"))]
    short = table(one_env_short)
    assert rho(one_env_short) == pytest.approx(1.0) and short.aggregated_envs.eq("A").all()
    assert short.loc["ppo_none", "mean"] == pytest.approx(12 / 42)  # (10 + mean seed 2) / best (40 + 2), on A only
    assert short.loc["ppo_none", "B score"] == 12 and np.isnan(short.loc["ppo_clip_0.2", "B score"])
    # and A lacks a seed too: no env is whole, each setting's mean is over its own envs, and ρ is withheld
    no_env_whole = one_env_short[~((one_env_short.variant == "ppo_none") & (one_env_short.env == "A") &
                                   (one_env_short.seed == 3))]
    assert np.isnan(rho(no_env_whole)) and table(no_env_whole).aggregated_envs.eq("A, B").all()
    assert np.isnan(rho(scores[scores.variant != "ppo_none"]))  # 3 settings


def test_rank_correlation_is_checked_without_no_clipping_and_against_our_own_seeds():
    """Beside ρ with the paper: ρ without the no-clipping setting, and how well our own seeds agree
    (single-seed grids against each other, Spearman–Brown for a rerun, one seed against the others)."""
    from types import SimpleNamespace
    from analysis.ppo_objectives import load_paper, objectives_one_regime
    paper = load_paper()
    # ordered as the paper orders these 5 (-0.39 < 0.62 < 0.70 < 0.76 < 0.82) in seeds 1 and 2; seed 3 swaps
    # the two clipping settings at the top
    level = {"ppo_none": 10.0, "ppo_kl_fixed_0.3": 20.0, "ppo_clip_0.3": 30.0, "ppo_clip_0.1": 35.0, "ppo_clip_0.2": 40.0}
    swap = {"ppo_clip_0.1": 8.0, "ppo_clip_0.2": -8.0}
    scores = pd.DataFrame([dict(variant=v, env="A", seed=s, score=x + (swap.get(v, 0.0) if s == 3 else 0.0))
                           for v, x in level.items() for s in (1, 2, 3)])
    data = SimpleNamespace(scores=scores, variants=list(level), table1=table1_identities(level), planned_seeds=3,
                           random_score=pd.Series({"A": 0.0}))
    row = objectives_one_regime(data, "ppo2", paper).iloc[0]
    # single seeds, by hand (n = 5, 1 − 6 Σd² / 120): (1, 2) → 1; (1, 3) and (2, 3): Σd² = 2 → 0.9
    assert (row.seed_pair_rho_min, row.seed_pair_rho_max) == (pytest.approx(0.9), pytest.approx(1.0))
    r = (1 + 0.9 + 0.9) / 3
    assert row.seed_pair_rho == pytest.approx(r) and row.rerun_rho == pytest.approx(3 * r / (1 + 2 * r))
    assert row.held_out_rho_predicted == pytest.approx(math.sqrt(r * 2 * r / (1 + r)))
    # one seed against the other two: seed 3 against seeds 1+2 swaps the top two (0.9); seeds 2+3 (or 1+3) put
    # clip 0.1 (39) above clip 0.2 (36), so seed 1 (or 2) against them swaps them too (0.9)
    assert row.held_out_rho == pytest.approx(0.9)
    # without No clipping, 4 settings: in the mean clip 0.1 (35 + 8/3) passes clip 0.2 (40 − 8/3), a swap
    # against the paper's order, Σd² = 2: ρ = 1 − 12 / 60 = 0.8
    assert row.rho_without_none == pytest.approx(0.8)
    # one setting fewer: 3 left without No clipping, too few for a ρ of its own
    fewer = objectives_one_regime(SimpleNamespace(**{**vars(data), "scores": scores[scores.variant != "ppo_clip_0.3"],
                                                     "variants": [v for v in level if v != "ppo_clip_0.3"]}), "ppo2", paper)
    assert "rho_without_none" not in fewer and fewer.rerun_rho.notna().all()


def test_with_more_seeds_than_the_paper_rho_with_the_paper_is_held_against_a_3_seed_grid_not_a_rerun_of_ours():
    """ρ(ours, paper) sets our k-seed grid against the paper's 3-seed one, so what seed noise allows it is the
    agreement of k seeds with 3 (Spearman–Brown: √(R_k R_3)), lower than two k-seed grids' R_k. With 3 seeds
    the two are the same and the table holds no extra column (the 3-seed discussions' fingerprints stay)."""
    from types import SimpleNamespace
    from analysis.ppo_objectives import DRAW_COLUMNS, load_paper, objectives_one_regime, rerun_reading, rho_checks_text
    paper = load_paper()
    level = {"ppo_none": 10.0, "ppo_kl_fixed_0.3": 20.0, "ppo_clip_0.3": 30.0, "ppo_clip_0.1": 35.0, "ppo_clip_0.2": 40.0}
    swap = {"ppo_clip_0.1": 8.0, "ppo_clip_0.2": -8.0}  # seeds 3 and 6 swap the top two
    scores = pd.DataFrame([dict(variant=v, env="A", seed=s, score=x + (swap.get(v, 0.0) if s % 3 == 0 else 0.0))
                           for v, x in level.items() for s in range(1, 7)])
    data = SimpleNamespace(scores=scores, variants=list(level), table1=table1_identities(level), planned_seeds=6,
                           random_score=pd.Series({"A": 0.0}))
    row = objectives_one_regime(data, "ppo2", paper).iloc[0]
    # pairs of single seeds: 1, 2, 4, 5 alike (6 pairs, ρ 1), 3 and 6 alike (1 pair, ρ 1), the 8 mixed pairs 0.9
    r = (7 * 1 + 8 * 0.9) / 15
    reliability = lambda n: n * r / (1 + (n - 1) * r)  # noqa: E731
    assert row.rerun_rho == pytest.approx(reliability(6))
    assert row.paper_rerun_rho == pytest.approx(math.sqrt(reliability(6) * reliability(3)))
    assert row.paper_rerun_rho < row.rerun_rho
    assert (row.paper_rerun_rho_min, row.paper_rerun_rho_max) == (
        pytest.approx(math.sqrt(6 * 0.9 / 5.5 * 3 * 0.9 / 2.8)), pytest.approx(1.0))
    assert f"ours and a 3-seed grid drawn like ours, as the paper's was, at about ρ {row.paper_rerun_rho:.2f}" in \
        rho_checks_text(row)
    # halves of 3 seeds, all 20 ways: a half holding both 3 and 6 (4 ways) swaps the top two (40.33 against 34.67)
    # and its other half does not: ρ 0.9; so does a half holding neither (4 ways); one each (12 ways): ρ 1
    assert (row.half_seeds, row.half_other_seeds) == (3, 3)
    assert row.half_rho == pytest.approx((8 * 0.9 + 12 * 1.0) / 20)
    assert row.half_rho_predicted == pytest.approx(reliability(3))
    assert (f"and {reliability(3):.2f} for 3 seeds against the other 3 where we observe 0.96" in rho_checks_text(row)
            and "upper estimates" not in rho_checks_text(row))
    ahead = row.copy()
    ahead["half_rho"] = reliability(3) - 0.06
    assert "the model runs ahead of the seeds as they are added, so read its figures for whole grids as upper " \
           "estimates" in rho_checks_text(ahead)
    # with 4 or 5 seeds (no 3-seed draws) the verdict's yardstick is the 3-seed one: an interval that reaches it
    # but not a 6-seed rerun reaches
    between = row.drop(list(DRAW_COLUMNS), errors="ignore")
    between["rho_ci_high"] = (row.paper_rerun_rho + row.rerun_rho) / 2
    assert f"reaches a 3-seed rerun's {row.paper_rerun_rho:.2f}" in rerun_reading(between)
    three = objectives_one_regime(SimpleNamespace(**{**vars(data), "scores": scores[scores.seed <= 3],
                                                     "planned_seeds": 3}), "ppo2", paper)
    assert not three.columns.str.startswith("paper_rerun").any() and "3-seed grid" not in rho_checks_text(three.iloc[0])


def test_with_the_3_seed_draws_measured_the_reading_prints_no_range_of_extreme_seed_pairs_and_no_second_verdict():
    """The least and the most agreeing of 10 seeds' 45 pairs map, through Spearman–Brown, to about 0 and 1: no
    spread at all. Where the 3-seed draws measure the spread (6 or more seeds), the reading gives the expected
    agreements alone and leaves the verdict to the draws; with fewer seeds it keeps the pairs' range."""
    from analysis.ppo_objectives import DRAW_COLUMNS, rerun_reading, rho_checks_text
    row = pd.Series(dict(rho=0.61, rho_ci_low=0.38, rho_ci_high=0.80, seed_pair_rho=0.53, seed_pair_rho_min=-0.10,
                         seed_pair_rho_max=0.94, rerun_rho=0.92, rerun_rho_min=0.0, rerun_rho_max=0.99,
                         held_out_rho=0.66, held_out_rho_predicted=0.70, paper_rerun_rho=0.85, paper_rerun_rho_min=0.0,
                         paper_rerun_rho_max=0.99, draws=120, draw_rho=0.71, draw_rho_low=0.48, draw_rho_high=0.91,
                         draw_paper_rho=0.59, draw_paper_below=0.78))
    text = rho_checks_text(row)
    assert "at about ρ 0.92 (from pairs of our single seeds, whose grids agree at ρ 0.53 on average; Spearman–Brown, " \
           "which predicts 0.70 for one seed against the others where we observe 0.66); ours and a 3-seed grid drawn " \
           "like ours, as the paper's was, at about ρ 0.85. These are the expected agreements" in text
    assert "0.00" not in text and "0.99" not in text and "-0.10" not in text
    assert rerun_reading(row) == ""
    fewer = row.drop(list(DRAW_COLUMNS), errors="ignore")  # 4 or 5 seeds: no draws
    assert "(0.00 to 0.99 from the least and the most agreeing pair of our seeds" in rho_checks_text(fewer)
    assert "ours and a 3-seed grid drawn like ours, as the paper's was, at about ρ 0.85 (0.00 to 0.99)" in \
        rho_checks_text(fewer)
    assert "inside the pairs' range 0.00–0.99" in rerun_reading(fewer)


def test_seeds_that_order_the_settings_oppositely_predict_no_agreement_and_never_print_nan():
    from types import SimpleNamespace
    from analysis.ppo_objectives import load_paper, objectives_one_regime, rho_checks_text
    paper = load_paper()
    level = {"ppo_none": 10.0, "ppo_kl_fixed_0.3": 20.0, "ppo_clip_0.3": 30.0, "ppo_clip_0.1": 35.0, "ppo_clip_0.2": 40.0}
    # seeds 1 and 2 as above; seed 3 reverses the four settings above No clipping (40 − x + 20 maps 20..40 onto 40..20)
    scores = pd.DataFrame([dict(variant=v, env="A", seed=s, score=60.0 - x if s == 3 and v != "ppo_none" else x)
                           for v, x in level.items() for s in (1, 2, 3)])
    data = SimpleNamespace(scores=scores, variants=list(level), table1=table1_identities(level), planned_seeds=3,
                           random_score=pd.Series({"A": 0.0}))
    row = objectives_one_regime(data, "ppo2", paper).iloc[0]
    # without No clipping, by hand: seeds 1, 2 agree (1); seed 3 against either reverses 4 ranks (−1); mean −1/3
    assert (row.seed_pair_rho_min_without_none, row.seed_pair_rho_max_without_none) == (-1.0, 1.0)
    assert row.seed_pair_rho_without_none == pytest.approx(-1 / 3)
    assert (row.rerun_rho_without_none, row.rerun_rho_min_without_none) == (0.0, 0.0)
    assert row.rerun_rho_max_without_none == pytest.approx(1.0)
    text = rho_checks_text(row)
    assert "nan" not in text and "agree at about 0.00 (0.00 to 1.00, from pairs of seeds that agree at ρ -1.00 to 1.00)" in text


def test_the_regimes_are_compared_over_the_envs_both_hold_whole_against_hand_computed_rank_correlations():
    from types import SimpleNamespace
    from analysis.ppo_objectives import load_paper, paper_settings, regime_comparison, regimes_text
    paper = load_paper()
    settings = paper_settings(paper)
    column = paper.paper_normalised_score.reindex(settings)
    position = dict(zip(column.sort_values(kind="stable").index, range(11)))  # 0 = the paper's worst
    config = grid.load()
    identities = table1_identities(grid.experiment_variants(config, "paper", "ppo_objectives"))
    variant = {(i.setting, i.regime): v for v, i in identities.items()}
    rows = []
    for name in settings:
        i, setting, one = position[name], variant[(name, "ppo2")], variant[(name, "ppo1")]
        # env A: ppo2 ascends with the paper's order i, but seed 2 puts setting 0 (2.5) above setting 1 (1);
        # ppo1 descends, in both seeds
        rows += [(setting, "A", 1, i + 1.0), (setting, "A", 2, {0: 2.5, 1: 1.0}.get(i, i + 1.0)),
                 (one, "A", 1, 11.0 - i), (one, "A", 2, 11.0 - i)]
        # env B, which would reverse the comparison, is not whole in ppo1 (setting 0 lacks seed 2): left out
        rows += [(setting, "B", 1, 11.0 - i), (setting, "B", 2, 11.0 - i)]
        rows += [(one, "B", 1, i + 1.0)] + ([(one, "B", 2, i + 1.0)] if i else [])
    scores = pd.DataFrame(rows, columns=["variant", "env", "seed", "score"])
    data = SimpleNamespace(scores=scores, variants=list(scores.variant.unique()), table1=identities, planned_seeds=2,
                           random_score=pd.Series({"A": 0.0, "B": 0.0}))
    c = regime_comparison(data, paper)
    assert c["regimes_envs"] == "A"
    # ranks by hand (n = 11, ρ = 1 − 6 Σd² / 1320): ppo2 puts setting 0 second, setting 1 first, setting i ≥ 2 at
    # i + 1; ppo1 puts setting i at 11 − i: Σd² = 81 + 81 + Σ(2i − 10)² over i = 2..10 = 438
    assert c["regimes_rho"] == pytest.approx(1 - 6 * 438 / 1320)
    # ppo2's two seeds differ by one adjacent swap (Σd² = 2), ppo1's agree: R = 2r / (1 + r) for each
    r = 1 - 12 / 1320
    assert c["regimes_rho_ceiling"] == pytest.approx(math.sqrt(2 * r / (1 + r) * 1.0))
    # resampling ppo2's seeds gives the order with or without the swap (or a tie): ρ with ppo1 between −1 and −r
    assert (c["regimes_rho_ci_low"], c["regimes_rho_ci_high"]) == (pytest.approx(-1.0), pytest.approx(-r))
    ppo2_means = [{0: 1.75, 1: 1.5}.get(position[s], position[s] + 1.0) for s in settings]
    ppo1_means = [11.0 - position[s] for s in settings]
    def rank_correlation(a, b):  # Pearson's r of average ranks (the paper's column has a tie at 0.71)
        return np.corrcoef(pd.Series(a).rank(), pd.Series(b).rank())[0, 1]
    expected = {"ppo1": rank_correlation(ppo1_means, column), "ppo2": rank_correlation(ppo2_means, column)}
    assert c["regimes_rho_paper_ppo1"] == pytest.approx(expected["ppo1"])
    assert c["regimes_rho_paper_ppo2"] == pytest.approx(expected["ppo2"])
    assert c["delta_rho"] == pytest.approx(expected["ppo1"] - expected["ppo2"])
    assert c["delta_rho_ci_low"] <= c["delta_rho"] <= c["delta_rho_ci_high"] < 0  # ppo1 reverses the paper's order
    assert expected["ppo2"] > 0.98 and expected["ppo1"] < -0.99
    text = regimes_text(pd.Series(c))
    assert "the regimes order the settings differently, beyond seed noise" in text
    assert text.endswith("excludes 0: the paper-era code orders the settings further from the paper.")
    # no env whole in both regimes yet: nothing to compare
    assert regime_comparison(SimpleNamespace(**{**vars(data), "scores": scores[scores.env == "B"]}), paper) == {}
    assert regimes_text(pd.Series({"rho": 0.4})) == ""


def test_the_regimes_noise_ceiling_is_measured_on_disjoint_halves_of_the_seeds_against_hand_values():
    """Four seeds on one env. ppo2: every seed orders the settings as the paper does. ppo1: seeds 1 and 2 as well,
    seeds 3 and 4 the other way at half the spread, so only their half of two reverses the order (a mixed half's
    mean still ascends). By hand over the 6 splits: ppo2 against itself 1; ppo1 against itself (4 − 2) / 6 = 1/3;
    across, in either direction, only the split with ppo1's {3, 4} reverses: 4/6."""
    from types import SimpleNamespace
    from analysis.ppo_objectives import load_paper, paper_settings, regime_comparison, regimes_text
    paper = load_paper()
    settings = paper_settings(paper)
    position = dict(zip(paper.paper_normalised_score.reindex(settings).sort_values(kind="stable").index, range(11)))
    identities = table1_identities(grid.experiment_variants(grid.load(), "paper", "ppo_objectives"))
    variant = {(i.setting, i.regime): v for v, i in identities.items()}
    rows = []
    for name in settings:
        i = position[name]
        rows += [(variant[(name, "ppo2")], "A", s, i + 1.0) for s in (1, 2, 3, 4)]
        rows += [(variant[(name, "ppo1")], "A", s, i + 1.0 if s < 3 else (11.0 - i) / 2) for s in (1, 2, 3, 4)]
    scores = pd.DataFrame(rows, columns=["variant", "env", "seed", "score"])
    data = SimpleNamespace(scores=scores, variants=list(scores.variant.unique()), table1=identities, planned_seeds=4,
                           random_score=pd.Series({"A": 0.0}))
    c = regime_comparison(data, paper)
    assert (c["regimes_half_seeds"], c["regimes_half_other_seeds"]) == (2, 2)
    assert c["regimes_half_ppo2"] == pytest.approx(1.0) and c["regimes_half_ppo1"] == pytest.approx(1 / 3)
    assert c["regimes_half_across"] == pytest.approx(2 / 3)
    text = regimes_text(pd.Series(c))
    assert ("one regime's half orders the settings like the other regime's other half at ρ 0.67 on average, and like "
            "its own other half at ppo1 0.33, ppo2 1.00; with the same true ordering the regimes would agree at about "
            "their geometric mean, 0.58, so seed noise alone can explain why the two orderings differ") in text
    below = pd.Series({**c, "regimes_half_across": 0.29})
    assert "the regimes agree with each other less than with themselves (disattenuated, their true orderings " \
           "correlate at about 0.50)" in regimes_text(below)


def test_the_reading_says_whether_seed_noise_alone_explains_the_rank_correlation():
    from analysis.ppo_objectives import rerun_reading
    row = pd.Series({"rho": 0.32, "rho_ci_low": 0.04, "rho_ci_high": 0.62, "rerun_rho": 0.75, "rerun_rho_min": 0.58,
                     "rerun_rho_max": 0.92})
    assert rerun_reading(row).endswith("over all the settings, ρ's interval [0.04, 0.62] ends below a rerun's 0.75 but "
                                       "inside the pairs' range 0.58–0.92. Seed noise explains much of the disagreement, "
                                       "and these seeds cannot tell whether part of it is systematic.")
    assert "Seed noise alone can explain" in rerun_reading(row.replace(0.62, 0.8))
    assert "below even the least agreeing pair's 0.58" in rerun_reading(row.replace(0.62, 0.5))
    # two verdicts that differ each keep their own conclusion
    both = pd.concat([row.replace(0.62, 0.8), pd.Series({"rho_without_none": 0.1, "rho_ci_low_without_none": -0.3,
                      "rho_ci_high_without_none": 0.3, "rerun_rho_without_none": 0.6, "rerun_rho_min_without_none": 0.4,
                      "rerun_rho_max_without_none": 0.8})])
    text = rerun_reading(both)
    assert "reaches a rerun's 0.75: seed noise alone can explain" in text
    assert "without No clipping, ρ's interval [-0.30, 0.30] lies below even the least agreeing pair's 0.40: seed noise " \
           "alone does not explain" in text
    assert rerun_reading(pd.Series({"rho": 0.3, "rho_ci_low": 0.0, "rho_ci_high": 0.6})) == ""  # not measured


def two_regimes_table(ppo1_clip_3):
    """Table 1 (table_ppo_objectives: the table and its wide tables) of four settings under each regime on envs A
    and B (B is A doubled: the same normalised scores), seeds 1-3 scoring 1 apart (2 on B) around each level. ppo1
    is 5 below ppo2 in every setting but ε = 0.2, where it is the best of all (50), and ε = 0.3, at `ppo1_clip_3`."""
    import matplotlib.pyplot as plt
    from analysis.ppo_objectives import table_ppo_objectives
    table, wides, fig = table_ppo_objectives(two_regimes_data(ppo1_clip_3))
    plt.close(fig)
    return table, wides


def two_regimes_data(ppo1_clip_3):
    """The runs two_regimes_table is made from, as analysis.common.Data holds them."""
    from types import SimpleNamespace
    ppo2 = {"ppo_none": 10.0, "ppo_clip_0.1": 30.0, "ppo_clip_0.2": 40.0, "ppo_clip_0.3": 20.0}
    ppo1 = {"ppo1_none": 5.0, "ppo1_clip_0.1": 25.0, "ppo1_clip_0.2": 50.0, "ppo1_clip_0.3": ppo1_clip_3}
    rows = [dict(variant=v, env=e, seed=s, score=x * k + s * k) for v, x in {**ppo2, **ppo1}.items()
            for e, k in (("A", 1), ("B", 2)) for s in (1, 2, 3)]
    variants = [*ppo2, *ppo1]
    return SimpleNamespace(scores=pd.DataFrame(rows), variants=variants, table1=table1_identities(variants),
                           envs=["A", "B"], planned_seeds=3, random_score=pd.Series({"A": 0.0, "B": 0.0}),
                           seeds_note=lambda n: "")


def test_performance_profiles_of_both_regimes_on_the_common_scale():
    """regime_profiles on two_regimes_table's runs: on the common scale (52 = 1 on A, 104 on B) a run of ppo1 is 5
    below its ppo2 twin in every setting but ε = 0.2 (10 above) and ε = 0.3 (here 5 below too), so its profile is
    the ppo2 one moved left by 5/52, except at ε = 0.2; and the pooled panel holds every setting's runs."""
    from analysis.ppo_objectives import common_normalised, regime_profiles, table_ppo_objectives
    data = two_regimes_data(ppo1_clip_3=15.0)
    table, _, fig = table_ppo_objectives(data)
    assert len(fig.axes) == 1 + 8  # Table 1's means, then 4 settings and the pooled panel, four to a row
    settings = list(dict.fromkeys(table.setting))
    profiles = regime_profiles(table, common_normalised(data, table), settings, {s: s for s in settings})
    assert list(profiles) == settings + ["all 4 settings"]
    for title, by_regime in profiles.items():
        assert list(by_regime) == ["ppo2", "ppo1"]
        (taus, ppo2, low, high), (_, ppo1, _, _) = by_regime["ppo2"], by_regime["ppo1"]
        assert taus[0] == 0 and np.all(low <= ppo2) and np.all(ppo2 <= high)
        if title == "Clipping, eps = 0.2":
            assert np.all(ppo1 >= ppo2) and np.any(ppo1 > ppo2)
        elif title != "all 4 settings":
            assert np.all(ppo1 <= ppo2) and np.any(ppo1 < ppo2)
    # by hand: no clipping under ppo2 scores 11, 12, 13 on A (22, 24, 26 on B), so (11/52, 12/52, 13/52) on both
    taus, ppo2, _, _ = profiles["No clipping or penalty"]["ppo2"]
    for tau, share in zip(taus, ppo2):
        assert share == pytest.approx(np.mean([x / 52 > tau for x in (11, 12, 13)]))
    # pooled: each task's 12 runs of a regime together, the tasks averaged
    ppo2_runs = data.scores[data.scores.variant.str.startswith("ppo_") & (data.scores.env == "A")].score / 52
    taus, pooled, _, _ = profiles["all 4 settings"]["ppo2"]
    assert pooled == pytest.approx([np.mean(ppo2_runs > tau) for tau in taus])


def test_both_regimes_on_one_common_scale_against_hand_values():
    """Each regime's own scale puts its best setting at 1; on the common scale the best of either regime is 1 per
    env, so a regime that is lower everywhere shows it (two_regimes_table: ppo1 5 below ppo2 but at ε = 0.2)."""
    from analysis.ppo_objectives import common_text
    table, wides = two_regimes_table(ppo1_clip_3=15.0)
    t = table.set_index("variant")
    # own scales: each regime's best is 1 (42 for ppo2, 52 for ppo1); the common scale divides both by 52
    assert t.loc["ppo_clip_0.2", "mean"] == pytest.approx(1.0) and t.loc["ppo1_clip_0.2", "mean"] == pytest.approx(1.0)
    assert t.loc["ppo_clip_0.2", "common_mean"] == pytest.approx(42 / 52)
    assert t.loc["ppo1_clip_0.1", "common_mean"] == pytest.approx(27 / 52)
    # ppo1 − ppo2 at ε = 0.1: (27 − 32) / 52 on both envs; each normalised cell has SD 1/52, so with weights ±½
    # v = 4 · ¼ · (1/52)² / 3 and Welch–Satterthwaite gives 8 dof: t(0.975, 8) = 2.306
    diff = t.loc["ppo1_clip_0.1", ["regime_diff", "regime_diff_ci_low", "regime_diff_ci_high"]]
    half = 2.306 * math.sqrt(1 / 3) / 52
    assert tuple(diff) == pytest.approx((-5 / 52, -5 / 52 - half, -5 / 52 + half), abs=1e-4)
    assert t.loc["ppo_clip_0.1", "regime_diff"] == t.loc["ppo1_clip_0.1", "regime_diff"]  # on both rows
    # corrected for the 4 settings compared (Bonferroni): each interval at 1 − 0.05/4, t(0.99375, 8) = 3.206
    family = t.loc["ppo1_clip_0.1", ["regime_diff_family_low", "regime_diff_family_high"]]
    half = 3.206 * math.sqrt(1 / 3) / 52
    assert tuple(family) == pytest.approx((-5 / 52 - half, -5 / 52 + half), abs=1e-4)
    common = next(w for w in wides if w.index.name == "setting: both regimes on one scale")
    assert common.loc["Clipping, eps = 0.1", "ppo1 − ppo2 [95% t-interval]"] == "-0.10 [-0.12, -0.07]"
    text = common_text(table)
    assert text.startswith("per env, random 0 and the best Table 1 setting of either regime 1, over A, B. ppo1 − ppo2 "
                           "is below 0 in 3 of 4 settings (-0.10 to +0.19); its 95% t-interval lies below 0 in 3 "
                           "(No clipping or penalty, Clipping, eps = 0.1, Clipping, eps = 0.3) and above 0 in 1 "
                           "(Clipping, eps = 0.2). Corrected for comparing 4 settings at once (Bonferroni: each "
                           "interval at the 98.75% level, so that together they hold with 95% probability), it lies "
                           "below 0 in 3 (No clipping or penalty, Clipping, eps = 0.1, Clipping, eps = 0.3) and above "
                           "0 in 1 (Clipping, eps = 0.2).")
    assert "ρ with the paper on this scale: ppo2 1.00" in text  # 10 < 20 < 30 < 40 as the paper's −0.39 < 0.70 < 0.76 < 0.82
    from types import SimpleNamespace
    from analysis.ppo_objectives import summary
    runs = pd.DataFrame([dict(variant=v, env=e, seed=s) for v in table.variant for e in "AB" for s in (1, 2, 3)])
    ctx = SimpleNamespace(planned=[grid.Run(**r) for r in runs.to_dict("records")], runs=runs, scores=None)
    assert summary(table, ctx).endswith("On one common scale ppo1 (the paper-era code) scores below ppo2 in 3 of 4 "
                                        "settings (ppo1 − ppo2 from -0.10 to +0.19), with the 95% interval below 0 "
                                        "in 3 and above 0 in 1 (3 and 1 with the 4 intervals corrected to hold "
                                        "together, Bonferroni).")
    # by order alone: every ppo1 run below every ppo2 run of its setting, but at ε = 0.2 (50 against 40) above
    level = {"ppo_none": 10.0, "ppo_clip_0.1": 30.0, "ppo_clip_0.2": 40.0, "ppo_clip_0.3": 20.0, "ppo1_none": 5.0,
             "ppo1_clip_0.1": 25.0, "ppo1_clip_0.2": 50.0, "ppo1_clip_0.3": 15.0}
    ctx.scores = runs.assign(score=[level[v] * (1 + (e == "B")) + s for v, e, s in zip(runs.variant, runs.env, runs.seed)])
    assert summary(table, ctx).endswith("Compared by order alone (P(X > Y), no scale), a ppo1 run ends below a ppo2 "
                                        "run of the same setting more often than not in 3 of 4 settings, the 95% "
                                        "interval below 0.5 in 3 and above in 1 (3 and 1 corrected).")


def test_on_the_common_scale_the_regimes_rho_with_the_paper_is_differenced_replicate_by_replicate():
    """ppo2 orders its four settings as the paper does (ρ 1); ppo1 puts ε = 0.3 (28) above ε = 0.1 (25), one
    adjacent swap: ρ = 1 − 6·2 / (4·15) = 0.8. The cells' seeds never overlap across settings (29-31 against 26-28
    on A), so every replicate keeps both orders and the interval of ρ(ppo1) − ρ(ppo2) is the point, −0.2."""
    from analysis.ppo_objectives import common_text
    table, _ = two_regimes_table(ppo1_clip_3=28.0)
    t = table.set_index("variant")
    assert t.loc["ppo1_clip_0.3", "common_rho"] == pytest.approx(0.8) and t.loc["ppo_none", "common_rho"] == 1.0
    assert tuple(t.loc["ppo_none", ["common_delta_rho", "common_delta_rho_ci_low", "common_delta_rho_ci_high"]]) == \
        pytest.approx((-0.2, -0.2, -0.2))
    text = common_text(table)
    assert "; the difference ppo1 − ppo2, -0.20 [-0.20, -0.20], excludes 0: on this scale the paper-era code orders " \
           "the settings further from the paper." in text
    # one regime only: no difference, and the text says nothing of it
    one = table[table.regime == "ppo2"].drop(columns=["common_delta_rho"])
    assert "the difference" not in common_text(one)


def test_a_partial_table1_is_aggregated_over_the_envs_it_holds_whole_and_says_so():
    """Env A holds every planned setting with all 3 seeds, env B lacks one; the early-stopping variant
    has runs on B only. The table, its note and the figure aggregate over A and say so; B's runs stay
    in the per-env table."""
    from types import SimpleNamespace
    import matplotlib.pyplot as plt
    from analysis.common import NOT_ON_WHOLE_ENVS
    from analysis.ppo_objectives import table_ppo_objectives
    level = {"ppo_none": 10.0, "ppo_kl_fixed_0.3": 20.0, "ppo_clip_0.3": 30.0, "ppo_clip_0.2": 40.0}
    rows = [dict(variant=v, env=e, seed=s, score=x + s) for v, x in level.items() for e in ("A", "B")
            for s in (1, 2, 3) if (v, e) != ("ppo_clip_0.2", "B")]
    rows += [dict(variant="ppo_none_es_0.01", env="B", seed=1, score=25.0)]
    variants = [*level, "ppo_none_es_0.01"]
    data = SimpleNamespace(scores=pd.DataFrame(rows), variants=variants, table1=table1_identities(variants),
                           envs=["A", "B"], planned_seeds=3, random_score=pd.Series({"A": 0.0, "B": 0.0}),
                           seeds_note=lambda n: "" if n >= 3 else f" ({n} of 3 seeds)")
    table, (wide, per_env), fig = table_ppo_objectives(data)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert [label for label in labels if label.startswith("ppo2:")][0].endswith("; over A only"), labels
    plt.close(fig)
    assert "the ppo2 regime's means, ranks and ρ are over A only" in data.note
    ours = wide["ppo2: mean, own scale [95% CI]"]
    assert ours["No clipping or penalty"] == "0.29 [0.26, 0.31]"  # seeds 11, 12, 13 over A's best, 42
    assert ours["No clipping + KL early stopping (target 0.01)"] == NOT_ON_WHOLE_ENVS
    assert per_env.loc["No clipping + KL early stopping (target 0.01)", "B"] == "25 (1 of 3 seeds)"
    assert per_env.loc["No clipping or penalty", "B"] == "12"


def test_a_one_seed_result_is_never_ordered_nor_placed_against_a_published_number():
    """A partial grid: a cell with 1 seed has a zero-width 'interval', which must not read as a firm result."""
    from analysis.common import reading_curves
    from analysis.algorithms import reading_published
    table = pd.DataFrame({"env": "Walker2d-v5", "variant": ["ppo_clip_0.2", "trpo", "vpg_gae"], "seeds": [1, 3, 3],
                          "mean": [3936.0, 2414.0, 313.0], "ci_low": [3936.0, 2300.0, 300.0],
                          "ci_high": [3936.0, 2500.0, 330.0]})
    assert reading_curves(table).splitlines()[0] == \
        "- Walker2d-v5: ppo_clip_0.2 (3936.0, 1 seed) ≈ trpo (2414.0) > vpg_gae (313.0)."
    matches = setups.variant_matches(grid.load(), "paper", ["vpg_gae", "trpo", "ppo_clip_0.2"])
    text = reading_published(table, {"Walker2d-v5": 1_000_000}, matches)  # 3425 would be 'below' a [3936, 3936]
    assert "- ppo_clip_0.2 on Walker2d-v5: 3936 (1 seed so far, no interval); baselines ppo2 (v2?, 6 seeds, [P]) " \
           "3425, not placed yet; ours is 1.15× it." in text
    assert "trpo on Walker2d-v5: 2414 [2300, 2500]; baselines trpo_mpi (v2?, 6 seeds, [P]) 2343, inside" in text


def test_a_hand_written_discussion_is_shown_only_beside_the_numbers_it_was_written_from(tmp_path):
    from analysis.discussions import FINGERPRINT, PART_FINGERPRINT, discussion, table_fingerprint
    table = pd.DataFrame({"variant": ["trpo"], "env": ["Hopper-v5"], "seeds": [3], "mean": [2374.0000000001],
                          "text": ["2374.0 [2086.2, 2746.3]"]})
    assert discussion(table, "paper", "algorithms", root=tmp_path) == []  # none written
    (tmp_path / "paper").mkdir()
    path = tmp_path / "paper" / "algorithms.md"
    path.write_text(FINGERPRINT.format(table_fingerprint(table)) + "\nTRPO is fine.\n")
    shown = discussion(table, "paper", "algorithms", root=tmp_path)
    assert shown[0].startswith("**Discussion** (written by hand") and shown[2] == "TRPO is fine."
    # the floats' last digits do not matter, the printed numbers do
    assert discussion(table.assign(mean=2374.0), "paper", "algorithms", root=tmp_path) == shown
    changed = discussion(table.assign(text="2400.0 [2100.0, 2750.0]"), "paper", "algorithms", root=tmp_path)
    assert changed[0].startswith("**Discussion withheld:**") and "TRPO is fine." not in "".join(changed)
    assert discussion(table.assign(seeds=2), "paper", "algorithms", root=tmp_path)[0].startswith("**Discussion withheld")
    # Table 1 has no text column: its numbers as printed count (scores to units, the rest to 2 decimals)
    t1 = pd.DataFrame({"regime": ["ppo2"], "variant": ["ppo_clip_0.2"], "mean": [0.8412], "rho": [0.48],
                       "Hopper-v5 score": [2017.2], "Hopper-v5 seeds": [3]})
    assert table_fingerprint(t1) == table_fingerprint(t1.assign(mean=0.8441, **{"Hopper-v5 score": 2016.9}))
    assert table_fingerprint(t1) == table_fingerprint(t1.assign(**{"Hopper-v5 seeds": 3.0}))  # int or float
    for changed in ({"mean": 0.8512}, {"rho": 0.47}, {"Hopper-v5 score": 2030.0}, {"Hopper-v5 seeds": 2},
                    {"variant": "ppo_clip_0.1"}):
        assert table_fingerprint(t1.assign(**changed)) != table_fingerprint(t1), changed
    # a discussion in parts, one per regime: each shown while its own regime's rows are unchanged
    both = pd.concat([t1, t1.assign(regime="ppo1", mean=0.5)], ignore_index=True)
    path = tmp_path / "paper" / "ppo_objectives.md"
    path.write_text(PART_FINGERPRINT.format("ppo2", table_fingerprint(both[both.regime == "ppo2"])) + "\nppo2 text.\n"
                    + PART_FINGERPRINT.format("ppo1", table_fingerprint(both[both.regime == "ppo1"])) + "\nppo1 text.\n")
    shown = discussion(both, "paper", "ppo_objectives", root=tmp_path)
    assert shown[0].startswith("**Discussion** (written by hand") and shown[2:] == ["ppo2 text.", "", "ppo1 text.", ""]
    # the two regimes' comparison, the same in every row, belongs to neither regime's part
    assert discussion(both.assign(regimes_rho=0.51, delta_rho=0.7), "paper", "ppo_objectives", root=tmp_path) == shown
    later = both.copy()
    later.loc[later.regime == "ppo1", "mean"] = 0.6  # more ppo1 runs: its part is withheld, ppo2's stays
    shown = discussion(later, "paper", "ppo_objectives", root=tmp_path)
    assert shown[2] == "ppo2 text." and "ppo1 text." not in shown
    fingerprint = table_fingerprint(later[later.regime == "ppo1"])
    assert shown[4] == (f"**Discussion withheld:** the ppo1 part of `{path}` was written from other numbers than the "
                        f"table's ppo1 rows' (fingerprint {fingerprint}); it needs rewriting for these.")
    assert discussion(later[later.regime == "ppo1"], "paper", "ppo_objectives", root=tmp_path)[0].startswith(
        "**Discussion withheld:** the ppo2 part")  # no ppo2 rows at all: withheld, never shown


def test_a_discussion_is_withheld_when_a_number_it_quotes_is_in_none_of_the_generated_text(tmp_path):
    """The five statements the report issue found, in miniature: a percentage of the wrong base, a rank the paper
    does not give, a second-half median quoted as the end value. Each is caught; the right ones pass, a derived
    number through its working."""
    from analysis.discussions import FINGERPRINT, discussion, quoted_numbers, table_fingerprint, unverified
    generated = ("| Walker2d-v5 | 3889.4 | 3053.0 |\n| paper rank | 2 | 8 |\n- entropy at the end 7.2, second-half "
                 "median 7.4; ρ 0.48 [0.24, 0.77]; ppo1 − ppo2 -0.07 [-0.14, -0.01]; 13% of episodes")
    assert unverified("loses 27% on Walker2d (3889 → 3053)", generated) == ["27%"]
    assert unverified("loses 21.5%<!-- = (3053 - 3889) / 3889 * 100 --> (3889 → 3053)", generated) == []
    assert unverified("loses 27%<!-- = (3889 - 3053) / 3053 * 100 -->", generated) == []  # a right working, its base shown
    assert unverified("loses 22%<!-- = (3053 - 3889) / 3889 * 100 -->", generated) == [
        "22% (= (3053 - 3889) / 3889 * 100 = -21.50)"]
    assert unverified("ranked 1st and 10th by the paper", generated) == ["1st", "10th"]
    assert unverified("ranked 2nd and 8th by the paper", generated) == []
    assert unverified("its entropy is still 7.4 nats at the end", generated) == []  # found: the check is of numbers
    assert unverified("ρ = 0.48 [0.24, 0.77], below by 0.07 (13%), 0.5", generated) == ["0.5"]
    # what is not a result is not checked: counts, citations, sections, budgets, env names, code
    skipped = "3 seeds; Schulman et al. 2017, §6.1, Table 1, Fig. 2; 100k and 1M steps; Walker2d-v5; `lr = 3e-4`"
    assert quoted_numbers(skipped) == []
    # in the report: shown when its fingerprint and its numbers check out, else withheld naming the numbers
    table = pd.DataFrame({"variant": ["a"], "env": ["E"], "seeds": [3], "text": ["3889.4 [3000.0, 4000.0]"]})
    folder = tmp_path / "paper"
    folder.mkdir()
    head = FINGERPRINT.format(table_fingerprint(table))
    (folder / "x.md").write_text(f"{head}\nIt ends at 3889, not 4100.\n")
    text = "\n".join(discussion(table, "paper", "x", root=tmp_path, generated=generated))
    assert "It ends at" not in text and "quotes numbers found in none of the tables" in text and ": 4100." in text
    (folder / "x.md").write_text(f"{head}\nIt ends at 3889.\n")
    assert "It ends at 3889." in "\n".join(discussion(table, "paper", "x", root=tmp_path, generated=generated))


def test_the_report_names_the_code_by_fingerprint_and_flags_code_not_shown_to_compute_this_checkouts_numbers():
    from analysis.report import code_text
    ppo_now, ppo_then = grid.fingerprint_now("ppo"), next(iter(grid.code_versions()["ppo"]["fingerprints"]))
    runs = pd.DataFrame({"algo": ["ppo", "ppo", "ppo", "vpg"],
                         "code_sha256": [ppo_now, ppo_then, "f" * 64, "c" * 64],  # "f"*64 sorts last
                         "git_commit": ["1" * 40, "2" * 40, "2" * 40, "3" * 40],
                         "git_dirty": [False, None, True, False], "cpu": ["Intel(R) Xeon(R) Processor"] * 4})
    same, other = "the same numbers as this checkout's", "not shown to compute this checkout's numbers"
    first, second = sorted([ppo_now, ppo_then])
    assert code_text(runs) == (f"Code: by fingerprint (`experiments/code_versions.yaml`), ppo.py {first[:12]} (1 run, "
                               f"{same}), ppo.py {second[:12]} (1 run, {same}), ppo.py ffffffffffff (1 run, {other}), "
                               f"vpg.py cccccccccccc (1 run, {other}); the runs were started at 3 git commit(s) "
                               f"(run.json's `git_commit`), 1 run from a working tree with uncommitted changes.")
    assert code_text(runs.assign(git_dirty=False)).endswith("(run.json's `git_commit`).")
    # code known to compute other numbers on the CPU model that made its runs (code_versions.yaml, differs_on)
    (cpu, known), = grid.code_versions()["ppo"]["differs_on"].items()
    batched = runs.iloc[:1].assign(code_sha256=known["fingerprints"][0])
    assert f"(1 run, {same})" in code_text(batched) and f"(1 run, {other})" in code_text(batched.assign(cpu=cpu))


def test_late_per_run_takes_each_runs_own_late_iterations():
    from analysis import stats
    # run a: 4 iterations over 400 steps; run b: 2 iterations over 100 steps (its own total sets "late")
    progress = pd.DataFrame({"variant": ["v"] * 6, "env": ["E"] * 6, "seed": [1, 1, 1, 1, 2, 2],
                             "global_step": [100, 200, 300, 400, 50, 100],
                             "grad_norm": [9.0, 5.0, 1.0, 3.0, 7.0, 4.0],
                             "explained_variance": [np.nan, np.nan, 0.2, 0.6, np.nan, np.nan]})
    median = stats.late_per_run(progress, "grad_norm", 0.5)  # steps > 200 of a, > 50 of b
    assert median.grad_norm.tolist() == [2.0, 4.0]
    mean = stats.late_per_run(progress, "explained_variance", 0.5, "mean")
    assert mean.explained_variance.iloc[0] == pytest.approx(0.4) and np.isnan(mean.explained_variance.iloc[1])


def test_late_diagnostics_tables_mean_and_range_over_seeds_and_name_missing_runs():
    from analysis.baselines import late_diagnostics
    from experiments.grid import Run
    planned = [Run(v, e, s) for v in ("rtg", "vb") for e in ("A", "B") for s in (1, 2)]
    rows = []
    for variant, env, seed, norm, ev in [("rtg", "A", 1, 10.0, np.nan), ("rtg", "A", 2, 14.0, np.nan),
                                         ("rtg", "B", 1, 6.0, np.nan), ("vb", "A", 1, 2.0, 0.5),
                                         ("vb", "A", 2, 3.0, 0.7), ("other", "A", 1, 99.0, 0.9)]:
        # the KL of the second half's one update (step 200): a tenth of the norm, squared
        rows += [{"variant": variant, "env": env, "seed": seed, "global_step": step, "grad_norm": norm,
                  "approx_kl": (norm / 10) ** 2 if step == 200 else 77.0, "explained_variance": ev}
                 for step in (100, 200)]
    text = late_diagnostics(pd.DataFrame(rows), planned)
    lines = text.splitlines()
    norm_rows = [line for line in lines if line.startswith("| rtg") or line.startswith("| vb")]
    assert [cell.strip() for cell in norm_rows[0].split("|")[1:4]] == ["rtg", "12.0 (10.0–14.0)", "6.00 (6.00–6.00) (1 of 2 seeds)"]
    assert [cell.strip() for cell in norm_rows[1].split("|")[1:4]] == ["vb", "2.50 (2.00–3.00)", "missing run"]
    # KL per update over the second half only (the first half's 77 left out): mean of 1.0 and 1.96
    assert [cell.strip() for cell in norm_rows[2].split("|")[1:4]] == ["rtg", "1.5 (1–2)", "0.36 (0.36–0.36) (1 of 2 seeds)"]
    assert [cell.strip() for cell in norm_rows[3].split("|")[1:4]] == ["vb", "0.065 (0.04–0.09)", "missing run"]
    # explained variance: only the variant that logs it, and the unplanned run is left out
    assert [cell.strip() for cell in norm_rows[4].split("|")[1:4]] == ["vb", "0.60 (0.50–0.70)", "missing run"]
    assert len(norm_rows) == 5 and "99" not in text and "0.90" not in text and "77" not in text
    assert "Below 0" not in text  # the caveat comes only with a negative explained variance
    rows = [{**r, "explained_variance": -3.0} if r["variant"] == "vb" and r["seed"] == 2 else r for r in rows]
    assert "| vb " in late_diagnostics(pd.DataFrame(rows), planned) and "- Below 0:" in late_diagnostics(pd.DataFrame(rows), planned)


def test_the_regimes_update_sizes_side_by_side_against_hand_values():
    from analysis.ppo_objectives import regime_steps
    from experiments.grid import Run
    identities = table1_identities(["ppo_clip_0.2", "ppo_kl_fixed_1", "ppo_clip_0.2_es_0.01", "ppo1_clip_0.2",
                                    "ppo1_kl_fixed_1"])
    table = pd.DataFrame([{"regime": i.regime, "variant": v, "setting": i.setting, "objective": i.objective,
                           "paper": 0.8 if "early" not in i.setting else np.nan} for v, i in identities.items()])
    envs = {"InvertedPendulum-v5": 1, "Hopper-v5": 3}  # action dimensions
    planned = [Run(v, e, s) for v in table.variant for e in envs for s in (1, 2)]
    # at step 200, the second half and the last 10% of each run; step 100 only tries to pull the statistics off
    late = {("ppo_clip_0.2", "InvertedPendulum-v5"): [(0.01, 0.5), (0.03, 0.5)],
            ("ppo1_clip_0.2", "InvertedPendulum-v5"): [(0.04, 1.0), (0.04, 2.0)],
            ("ppo_clip_0.2", "Hopper-v5"): [(0.01, 0.5)],  # seed 2 missing; ppo1 has no run here
            ("ppo_kl_fixed_1", "InvertedPendulum-v5"): [(0.02, 0.5), (0.02, 0.5)],
            ("ppo1_kl_fixed_1", "InvertedPendulum-v5"): [(0.01, 0.5), (0.01, 0.5)],
            ("ppo_kl_fixed_1", "Hopper-v5"): [(0.1, 2.0), (0.1, 2.0)],
            ("ppo1_kl_fixed_1", "Hopper-v5"): [(0.3, 2.0), (0.3, 2.0)],
            ("ppo_clip_0.2_es_0.01", "InvertedPendulum-v5"): [(0.005, 0.5), (0.005, 0.5)],
            ("other", "InvertedPendulum-v5"): [(9.0, 9.0)]}  # not planned: left out
    entropy = lambda sigma, d: d * (0.5 * math.log(2 * math.pi * math.e) + math.log(sigma))  # noqa: E731
    progress = pd.DataFrame([{"variant": v, "env": e, "seed": seed, "global_step": step,
                              "approx_kl": kl if step == 200 else 50.0,
                              "entropy": entropy(sigma if step == 200 else 30.0, envs[e])}
                             for (v, e), values in late.items() for seed, (kl, sigma) in enumerate(values, 1)
                             for step in (100, 200)])
    text = regime_steps(table, progress, planned, identities)

    def cells(markdown):  # setting → its cells, the envs sorted (Hopper first)
        return {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:4]]
                for line in markdown.splitlines() if line.startswith("| ") and "ppo2 / ppo1" not in line}
    kl, sigma = map(cells, text.split("σ of the policy"))
    clip, fixed, es = (identities[v].setting for v in ("ppo_clip_0.2", "ppo_kl_fixed_1", "ppo_clip_0.2_es_0.01"))
    assert kl == {clip: ["0.01 (1 of 2 seeds) / missing run", "0.02 / 0.04"], fixed: ["0.1 / 0.3", "0.02 / 0.01"],
                  es: ["missing run / not planned", "0.005 / not planned"]}
    assert sigma == {clip: ["0.50 (1 of 2 seeds) / missing run", "0.50 / 1.50"], fixed: ["2.00 / 2.00", "0.50 / 0.50"],
                     es: ["missing run / not planned", "0.50 / not planned"]}
    # ppo1 / ppo2 cell by cell: clipping 0.04 / 0.02 = 2 on one env; fixed KL 0.01 / 0.02 and 0.3 / 0.1
    assert text.endswith("clipping median 2.00× (range 2.00–2.00, 1 cell); fixed KL median 1.75× "
                         "(range 0.50–3.00, 2 cells).")
    assert regime_steps(table[table.regime == "ppo2"], progress, planned, identities) == ""  # one regime



def test_when_in_a_run_ppo1s_updates_outgrow_ppo2s_against_hand_values():
    from analysis.ppo_objectives import regime_steps
    from experiments.grid import Run
    identities = table1_identities(["ppo_clip_0.2", "ppo1_clip_0.2", "ppo_kl_adaptive_0.01", "ppo1_kl_adaptive_0.01"])
    table = pd.DataFrame([{"regime": i.regime, "variant": v, "setting": i.setting, "objective": i.objective,
                           "paper": 0.8} for v, i in identities.items()])
    planned = [Run(v, "Hopper-v5", s) for v in table.variant for s in (1, 2)]
    # 10 iterations of 100 steps: the first 10% is iteration 1, the last 10% iteration 10; ppo2 anneals its
    # learning rate by a tenth per iteration (1.0 at the first, 0.1 at the last), ppo1 keeps it
    kl = {"ppo_clip_0.2": [(0.01, 0.002), (0.01, 0.004)], "ppo1_clip_0.2": [(0.02, 0.03), (0.01, 0.03)],
          "ppo_kl_adaptive_0.01": [(0.01, 0.01), (0.01, 0.01)], "ppo1_kl_adaptive_0.01": [(0.01, 0.02), (0.01, 0.02)],
          "other": [(9.0, 9.0)]}  # not planned: left out
    progress = pd.DataFrame([{"variant": v, "env": "Hopper-v5", "seed": seed, "global_step": 100 * i, "entropy": 1.0,
                              "approx_kl": first if i == 1 else last if i == 10 else 50.0,
                              "learning_rate": 3e-4 * (1 - (i - 1) / 10 if v.startswith("ppo_") else 1.0)}
                             for v, values in kl.items() for seed, (first, last) in enumerate(values, 1)
                             for i in range(1, 11)])
    text = regime_steps(table, progress, planned, identities)
    # clipping: ppo1 (0.02 + 0.01) / 2 = 0.015 against 0.01 first, 0.03 against (0.002 + 0.004) / 2 = 0.003 last
    assert text.endswith("- The same multiple in the first and in the last 10% of each run's steps (median KL per "
                         "update there), where the learning rate is on average ppo2's 1.00× and ppo1's 1.00× its start, "
                         "then ppo2's 0.10× and ppo1's 1.00×: clipping 1.50× (1.50–1.50), then 10.00× (10.00–10.00); "
                         "adaptive KL 1.00× (1.00–1.00), then 2.00× (2.00–2.00) (median over cells, with the range).")
    assert "The same multiple" not in regime_steps(table, progress.drop(columns="learning_rate"), planned, identities)

def test_fixed_policy_noise_tables_against_hand_computed_ratios(tmp_path):
    from analysis.baselines import fixed_policy_noise
    config = {"scales": {"s": {"gradient_noise": {"warmup_batches": 1, "batches": 4},
                               "experiments": {"baselines": {"envs": ["A", "B"], "seeds": [1, 2]}}}}}
    # env A, both seeds: variances 8, 4, 2, 1; ‖E ĝ‖² 16 each; rtg's norm 4. GAE's squared distance 4 with
    # noise² 1 (distance 2/4 = 0.50, noise 1/4 = 0.25); the value baseline's 0.5 ≤ noise² 1 counts 0.
    # B has only seed 1; there the variances do not fall at every step, and reward-to-go's ‖E ĝ‖² (0.5) is
    # within its noise² (4 / 4 batches), so B has no yardstick for distances.
    for env, seed, variances in [("A", 1, [8, 4, 2, 1]), ("A", 2, [8, 4, 2, 1]), ("B", 1, [8, 4, 6, 1])]:
        path = tmp_path / "gradient_noise" / env / f"seed{seed}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"env_id": env, "seed": seed, "weight": ["total_return", "reward_to_go", "value_baseline", "gae"],
                      "warmup_batches": 1, "batches": 4, "batch_size": 100, "grad_variance": variances,
                      "mean_grad_sq": [16.0, 16.0 if env == "A" else 0.5, 16.0, 16.0],
                      "bias_sq_vs_reward_to_go": [9.0, 0.0, 0.5, 4.0],
                      "bias_noise_sq": [1.0, 0.0, 1.0, 1.0], "explained_variance": 0.5}).to_csv(path, index=False)
    text = fixed_policy_noise(tmp_path, config, "s")
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| weight"):
            cells = [c.strip() for c in line.split("|")[1:4]]
            rows.setdefault(cells[0], []).append(cells[1:])
    assert rows["reward_to_go"][0] == ["0.5 (0.5–0.5)", "0.5 (0.5–0.5) (1 of 2 seeds)"]  # variance / total's
    assert rows["gae"][0] == ["0.125 (0.125–0.125)", "0.125 (0.125–0.125) (1 of 2 seeds)"]
    assert rows["value_baseline"][0][1] == "0.75 (0.75–0.75) (1 of 2 seeds)"
    assert rows["total_return"][0][0] == "2 (2–2)" and rows["gae"][1][0] == "16 (16–16)"  # ‖E ĝ‖² / tr Cov
    assert rows["gae"][2][0] == "0.50 (0.50–0.50), noise 0.25"
    assert rows["value_baseline"][2][0] == "0.00 (0.00–0.00), noise 0.25"
    assert rows["total_return"][1][0] == "0.75 (0.75–0.75), noise 0.25"
    assert rows["gae"][2][1] == "no yardstick"
    assert "on 1 of 2 envs (A)" in text and "No yardstick: reward-to-go's own expected gradient is lost in its noise" \
        " (the same rule) on B seed 1;" in text
    assert "total_return 2 of 2; value_baseline 0 of 2; gae 2 of 2." in text
    assert fixed_policy_noise(tmp_path / "nothing", config, "s") == ""


def test_the_gae_papers_range_is_read_from_its_published_row():
    from analysis.gae_lambda import gae_paper_range
    assert gae_paper_range() == (0.9, 0.99)  # Schulman et al. 2016 §7: "in the range [0.9, 0.99]"


def test_the_time_limit_2x2_differences_and_reading_against_hand_values():
    """Four cells (regime × time limit) on two envs: the differences of means by hand, each with Welch's
    interval from the two cells' own seeds, a missing cell named, and the share of ppo1's gap to ppo2 that is
    left once both bootstrap the time limit."""
    from types import SimpleNamespace
    from analysis.time_limits import time_limit_rows
    from analysis.time_limits import reading_time_limits
    from experiments.grid import Run
    cells = {("ppo2", "bootstrapped"): "p2b", ("ppo2", "terminal"): "p2t", ("ppo1", "bootstrapped"): "p1b",
             ("ppo1", "terminal"): "p1t"}
    a, b = "InvertedPendulum-v5", "Reacher-v5"
    seeds = {("p2b", a): [10, 10, 10], ("p2t", a): [7, 8, 9], ("p1b", a): [9, 9, 9], ("p1t", a): [1, 2, 3],
             ("p2b", b): [5, 6], ("p2t", b): [4, 6, 8], ("p1t", b): [4, 6, 8]}  # p1b has no run on b yet
    scores = pd.DataFrame([dict(variant=v, env=e, seed=s, score=x) for (v, e), xs in seeds.items()
                           for s, x in enumerate(xs, 1)])
    data = SimpleNamespace(scores=scores, envs=[a, b], planned_seeds=3,
                           seeds_note=lambda n: "" if n >= 3 else f" ({n} of 3 seeds)")
    table, wide = time_limit_rows(data, cells)
    diff = table[table.kind == "difference"].set_index(["label", "env"])
    expected = {("ppo2: terminal − bootstrapped", a): -2, ("ppo1: terminal − bootstrapped", a): -7,
                ("ppo1 − ppo2: each regime's own time limit", a): 2 - 10, ("ppo1 − ppo2: both bootstrapped", a): -1,
                ("ppo1 − ppo2: both terminal", a): 2 - 8,
                ("ppo2: terminal − bootstrapped", b): 6 - 5.5, ("ppo1 − ppo2: each regime's own time limit", b): 0.5,
                ("ppo1 − ppo2: both terminal", b): 0}
    assert diff["mean"].dropna().to_dict() == pytest.approx(expected)
    assert list(diff.loc[("ppo1 − ppo2: each regime's own time limit", a), ["variant", "minus"]]) == ["p1t", "p2b"]
    # Welch against a constant cell: the other cell's t-interval, s = 1, n = 3, t(0.975, 2 dof) = 4.303
    low, high = diff.loc[("ppo2: terminal − bootstrapped", a), ["ci_low", "ci_high"]]
    assert (low, high) == pytest.approx((-2 - 4.303 / math.sqrt(3), -2 + 4.303 / math.sqrt(3)), abs=1e-3)
    assert tuple(diff.loc[("ppo1 − ppo2: both bootstrapped", a), ["ci_low", "ci_high"]]) == (-1, -1)
    assert diff.loc[("ppo2: terminal − bootstrapped", b), "text"].endswith("(2 of 3 seeds)")  # the fewer seeds
    assert wide.loc["ppo1, time limit bootstrapped (p1b)", b] == "missing run"
    assert wide.loc["ppo1 − ppo2: both bootstrapped", b] == "missing run"
    assert list(wide.index[:4]) == [f"{r}, time limit {t} ({v})" for (r, t), v in cells.items()]
    # a discussion's fingerprint covers which difference each row is, not only its variant and text
    from analysis.discussions import table_fingerprint
    relabelled = table.replace({"label": {"ppo1 − ppo2: both terminal": "ppo1 − ppo2: both bootstrapped"}})
    assert table_fingerprint(relabelled) != table_fingerprint(table)

    planned = [Run(v, e, s) for v in cells.values() for e in (a, b) for s in (1, 2, 3)]
    entropy = 0.5 * math.log(2 * math.pi * math.e) + math.log(0.25)  # σ 0.25 in one action dimension
    progress = pd.DataFrame([dict(variant="p1t", env=a, seed=s, global_step=100, approx_kl=0.01 * s, entropy=entropy)
                             for s in (1, 2, 3)])
    text = reading_time_limits(table, progress, planned)
    assert ("- ppo1 − ppo2: each regime's own time limit: InvertedPendulum-v5 -8.0" in text
            and "Reacher-v5 +0.5" in text)
    # the gap is seen on a only: -8 as the regimes run, -1 with both bootstrapping, so 7/8 of it is the time limit
    assert ("- InvertedPendulum-v5: ppo1 − ppo2 is -8.0 as the regimes run and -1.0 with the time limit bootstrapped "
            "in both (an interval that excludes 0): the time limit accounts for 88% of the gap (of the means).") in text
    assert "- Reacher-v5: ppo1 − ppo2 is" not in text
    # a gap that widens, or turns, with both bootstrapping is not given a share outside 0-100%
    for left, said in ((-10, "the gap of the means does not narrow with both bootstrapping."),
                       (3, "the gap of the means turns the other way with both bootstrapping.")):
        moved = table.copy()
        moved.loc[(moved.label == "ppo1 − ppo2: both bootstrapped") & (moved.env == a), "mean"] = left
        assert f"-8.0 as the regimes run and {left:+.1f} with" in reading_time_limits(moved, progress, planned)
        assert said in reading_time_limits(moved, progress, planned)
    kl_row = next(line for line in text.splitlines() if line.startswith("| ppo1, time limit terminal (p1t)"))
    assert [c.strip() for c in kl_row.split("|")[2:4]] == ["0.02 (0.01–0.03)", "missing run"]
    sigma_row = [line for line in text.splitlines() if line.startswith("| ppo1, time limit terminal (p1t)")][1]
    assert [c.strip() for c in sigma_row.split("|")[2:4]] == ["0.25 (0.25–0.25)", "missing run"]


def test_a_run_that_learned_and_lost_it_is_named_as_collapsed_against_hand_values():
    """A run collapsed when it learned (its best trailing 100-episode mean got a quarter of the way from the random
    policy's mean to the task's best final score) and its final score ends nearer random than that best; one that
    never rose above random, rose too little to have learned, or held most of its best, did not."""
    from analysis.common import collapse_text, collapsed_runs
    from experiments.grid import Run
    env = "InvertedPendulum-v5"
    curves = {1: [10, 500, 1000, 1000, 400, 8],   # rose to 1000, fell below (1000 + 5) / 2 after step 4
              2: [10, 500, 1000, 1000, 900, 600],  # still above the midpoint 502.5: not collapsed
              3: [3, 4, 2, 4, 3, 3],               # never beat random (5): not collapsed, it never rose
              4: [3, 6, 50, 40, 9, 6]}             # 50 < 5 + (600 - 5) / 4, the task's best final 600: not learned
    kls = [0.01, 0.02, 0.01, 0.03, 2.0, 150.0]
    # σ over the last 10% (the last of 6 iterations): 0.1 for seed 1; 0.5, 0.3, 0.2 for those that did not collapse
    sigmas = {1: 0.1, 2: 0.5, 3: 0.3, 4: 0.2}
    progress = pd.DataFrame([dict(variant="p", env=env, seed=seed, global_step=step * 100, return_last100=r,
                                  approx_kl=kl, entropy=math.log(sigmas[seed] if step == 6 else 1.0)
                                  + 0.5 * math.log(2 * math.pi * math.e))  # one action dimension
                             for seed, curve in curves.items() for step, (r, kl) in enumerate(zip(curve, kls), 1)])
    scores = pd.DataFrame([dict(variant="p", env=env, seed=seed, score=curve[-1]) for seed, curve in curves.items()])
    planned = [Run("p", env, seed) for seed in curves]
    collapsed = collapsed_runs(progress, scores, pd.Series({env: 5.0}), planned)
    assert collapsed.seed.tolist() == [1]
    row = collapsed.iloc[0]
    # best 1000 first at step 300; last at or above 502.5 at step 400, so below from 500; the largest KL at 600;
    # the second half (steps above 300): median of 0.03, 2.0, 150.0
    assert (row.best, row.best_step, row.fell_step, row.final) == (1000, 300, 500, 8)
    assert (row.max_kl, row.max_kl_step, row.late_kl) == (150.0, 600, 2.0)
    assert (round(row.sigma, 9), round(row.held_sigma, 9)) == (0.1, 0.3)  # 0.3: median of 0.5, 0.3, 0.2
    text = collapse_text(collapsed, planned)
    assert "1 of 4 planned runs:" in text
    assert ("- p on InvertedPendulum-v5, seed 1: best 1000.0 (from step 300), below 502.5, the midpoint between it "
            "and the random policy's 5.0, from step 500, final 8.0; its largest KL of one update 150 at step 600, against a median of 2 over "
            "the second half; σ at the end 0.1, against a median of 0.3 over the runs of its cell that did not "
            "collapse.") in text
    # without an entropy column (a discrete policy's σ is not read) the line ends at the KL
    assert collapse_text(collapsed_runs(progress.drop(columns="entropy"), scores, pd.Series({env: 5.0}), planned),
                         planned).rstrip().endswith("against a median of 2 over the second half.")
    assert collapse_text(collapsed.iloc[:0], planned).endswith("0 of 4 planned runs.")
    # a run that is not planned is not read
    assert collapsed_runs(progress, scores, pd.Series({env: 5.0}), planned[1:]).empty


def test_runs_that_reached_gymnasiums_solved_score_are_counted_against_hand_values():
    """gymnasium's reward_threshold (CartPole-v1 475; Pendulum-v1 has none): per run whether its trailing
    100-episode mean reached it, the first step it did, and whether its final score is at or above it."""
    from analysis.common import solved_runs, solved_text
    from experiments.grid import Run
    curves = {("a", 1): [20, 480, 500, 500],  # reached at step 200, holds it
              ("a", 2): [20, 100, 475, 300],  # reached exactly 475 at step 300, ends below
              ("a", 3): [20, 60, 90, 474],    # never quite
              ("b", 1): [20, 300, 490, 490]}  # reached at step 300
    progress = pd.DataFrame([dict(variant=v, env="CartPole-v1", seed=seed, global_step=step * 100, return_last100=r)
                             for (v, seed), curve in curves.items() for step, r in enumerate(curve, 1)])
    scores = pd.DataFrame([dict(variant=v, env="CartPole-v1", seed=seed, score=curve[-1])
                           for (v, seed), curve in curves.items()])
    planned = [Run(v, "CartPole-v1", seed) for v, seed in curves]
    solved = solved_runs(progress, scores, planned).set_index(["variant", "seed"])
    assert solved.reached.tolist() == [True, True, False, True]
    assert solved.first_step.tolist()[:2] == [200, 300] and np.isnan(solved.first_step[("a", 3)])
    assert solved.ends_solved.tolist() == [True, False, False, True]
    text = solved_text(progress, scores, planned, {"a": "A", "b": "B"}.get)
    assert "(CartPole-v1 475)" in text
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in text.splitlines() if line.startswith("| ")]
    assert cells[1:] == [["A", "2 of 3 (step 250), 1 end there"], ["B", "1 of 1 (step 300), 1 end there"]]
    # no threshold, or none reached: nothing to say
    pendulum = progress.assign(env="Pendulum-v1")
    assert solved_runs(pendulum, scores.assign(env="Pendulum-v1"), [Run("a", "Pendulum-v1", 1)]).empty
    assert solved_text(pendulum, scores.assign(env="Pendulum-v1"),
                       [Run(v, "Pendulum-v1", s) for v, s in curves], str) == ""
    assert solved_text(progress.assign(return_last100=0.0), scores, planned, str) == ""
    # as a reading's part: after a blank line, and nothing without scores (a partial report with no run yet)
    from types import SimpleNamespace
    from analysis.common import solved_reading
    ctx = SimpleNamespace(progress=progress, scores=scores, planned=planned)
    assert solved_reading(ctx, str) == "\n\n" + solved_text(progress, scores, planned, str)
    assert solved_reading(SimpleNamespace(progress=progress, scores=None, planned=planned), str) == ""


def test_many_collapsed_runs_are_counted_per_cell_and_listed_in_a_collapsed_block():
    """Past COLLAPSES_LISTED runs, a table of how many of each cell's runs collapsed (every row, columns in the
    order given), the runs' lines below it in a <details> block; in the planned runs' order."""
    from analysis.common import COLLAPSES_LISTED, collapse_text, collapsed_runs
    from experiments.grid import Run
    envs = ["HalfCheetah-v5", "Hopper-v5"]
    planned = [Run(v, e, s) for v in ("a1", "a2", "b1", "b2", "c1") for e in envs for s in (1, 2, 3, 4)]
    lost = [r for r in planned if r.variant in ("a1", "a2") and (r.variant, r.seed) != ("a2", 4)] + [
        Run("b1", "Hopper-v5", 2)]  # all 8 of a1's runs, 6 of a2's, 1 of b1's

    def curve(run):  # the random policy scores 0: from 100, a run that collapsed ends at 5, one that held at 90
        return [0, 100, 100, 5 if run in lost else 90]

    progress = pd.DataFrame([dict(variant=r.variant, env=r.env, seed=r.seed, global_step=100 * i, return_last100=x)
                             for r in planned for i, x in enumerate(curve(r), 1)])
    scores = pd.DataFrame([dict(variant=r.variant, env=r.env, seed=r.seed, score=curve(r)[-1]) for r in planned])
    collapsed = collapsed_runs(progress, scores, pd.Series({e: 0.0 for e in envs}), list(reversed(planned)))
    assert len(collapsed) == len(lost) > COLLAPSES_LISTED
    assert [tuple(r) for r in collapsed[["variant", "env", "seed"]].itertuples(index=False)] == list(reversed(lost))
    text = collapse_text(collapsed, planned, row_of=lambda v: v[0], column_of=lambda v: f"regime {v[1]}",
                         order=["regime 2", "regime 1"])
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert [c.strip() for c in table[0].split("|")[1:-1]] == ["runs that collapsed", "regime 2", "regime 1"]
    assert [c.strip() for c in table[2].split("|")[1:-1]] == ["a", "6 of 8", "8 of 8"]
    assert [c.strip() for c in table[3].split("|")[1:-1]] == ["b", "0 of 8", "1 of 8"]
    assert [c.strip() for c in table[4].split("|")[1:-1]] == ["c", "", "0 of 8"]  # none collapsed; no regime 2 run
    block = text[text.index("<details>"):]
    assert block.count("\n- ") == len(lost) and block.rstrip().endswith("</details>")
    assert collapse_text(collapsed, planned).count("\n- ") == len(lost)  # without cells, every line, no table
    assert "|" not in collapse_text(collapsed, planned)


@pytest.mark.parametrize("subset, discussions", [
    ("seeds1-3", 7),  # one per experiment, Table 1's in three (ppo2, ppo1, the two against each other)
    ("", 7)])  # 10 seeds: the same seven
def test_every_number_of_the_committed_paper_discussions_is_printed_by_the_report_they_stand_in(subset, discussions):
    """A committed paper report (the 3-seed subset's, the 10-seed one) shows every hand-written discussion (none
    withheld), and each number they quote is found in the rest of the report, the generated part (its tables to
    cite, readings and per-seed scores)."""
    from conftest import ROOT
    from analysis.discussions import discussion_parts, unverified
    report = (ROOT / "results" / "paper" / subset / "REPORT.md").read_text()
    assert "Discussion withheld" not in report
    parts = [text for path in sorted((ROOT / "analysis" / "discussion" / "paper" / subset).glob("*.md"))
             for _, _, text in discussion_parts(path.read_text())]
    assert len(parts) == discussions
    generated = report
    for text in parts:
        assert text in report
        generated = generated.replace(text, "")
    for text in parts:
        assert unverified(text, generated) == [], text[:80]


def test_the_committed_paper_report_repeats_the_3_seed_reports_summary_word_for_word():
    """The 10-seed paper report gives the 3-seed subset's findings beside its own: the subset's summary lines,
    as its own report states them (both generated from the subset's tables)."""
    from conftest import ROOT
    def findings(text, heading):  # the first list of "- **experiment**: ..." lines after the heading
        lines = text.split(f"\n{heading}\n", 1)[1].splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("- **"))
        return lines[start:start + next(i for i, line in enumerate(lines[start:]) if not line.startswith("- **"))]
    three = (ROOT / "results" / "paper" / "seeds1-3" / "REPORT.md").read_text()
    ten = (ROOT / "results" / "paper" / "REPORT.md").read_text()
    own = findings(three, "## Summary")
    assert len(own) == 5  # one finding per experiment
    assert findings(ten, "## The same findings from seeds1-3") == own


def test_a_table_header_names_every_step_budget_of_its_columns():
    from analysis.common import budget_label
    steps = {"Acrobot-v1": 500_000, "Ant-v5": 1_000_000, "CartPole-v1": 500_000, "Hopper-v5": 1_000_000,
             "Walker2d-v5": 1_000_000}
    assert budget_label(steps, list(steps)) == "1M steps; 500k on Acrobot-v1, CartPole-v1"
    assert budget_label(steps, ["Hopper-v5", "Walker2d-v5"]) == "1M steps"
    assert budget_label(steps, ["Acrobot-v1"]) == "500k steps"


def aggregate_data(rows, random_score, variants):
    """A stand-in for common.Data over hand-written scores: (variant, env, seed, score) rows."""
    from types import SimpleNamespace

    from analysis.common import Data
    scores = pd.DataFrame(rows, columns=["variant", "env", "seed", "score"])
    data = SimpleNamespace(scores=scores, variants=variants, envs=list(dict.fromkeys(scores.env)),
                           random_score=pd.Series(random_score), planned_seeds=3, config=None)
    data.normalised = lambda best_from: Data.normalised(data, best_from)
    data.seeds_note = lambda n: Data.seeds_note(data, n)
    return data


def test_each_variant_over_the_tasks_against_hand_values_leaving_out_tasks_no_variant_learns():
    from analysis import common
    rows = ([("x", "A", s, v) for s, v in enumerate([10, 12, 14], 1)] + [("y", "A", s, v) for s, v in enumerate([4, 6, 8], 1)]
            + [("x", "B", s, v) for s, v in enumerate([38, 40, 42], 1)] + [("y", "B", s, v) for s, v in enumerate([20, 22, 24], 1)]
            # C: every variant below the random policy (0), so best − random < 0 would turn the scale over
            + [("x", "C", s, v) for s, v in enumerate([-5, -3, -4], 1)] + [("y", "C", s, v) for s, v in enumerate([-6, -7, -8], 1)]
            + [("x", "D", 1, 5.0), ("x", "D", 2, 6.0)])  # D: no run of y, so no comparison there
    data = aggregate_data(rows, {"A": 0.0, "B": 10.0, "C": 0.0, "D": 0.0}, ["y", "x"])
    cells = common.per_env_table(data)
    envs, scores, columns = common.task_aggregates(data, cells)
    assert envs == ["A", "B"] and columns["aggregate_left_out"] == {"x": "C", "y": "C"}
    # per task random → 0, best mean → 1: A by 12, B by (40 − 10)
    x = [10 / 12, 1, 14 / 12, 28 / 30, 1, 32 / 30]
    y = [4 / 12, 6 / 12, 8 / 12, 10 / 30, 12 / 30, 14 / 30]
    assert sorted(scores[scores.variant == "x"].normalised) == pytest.approx(sorted(x))
    assert columns["aggregate_mean"] == pytest.approx({"x": np.mean(x), "y": np.mean(y)})
    # IQM of 6 runs: the middle 4 (one cut from each end)
    assert columns["aggregate_iqm"] == pytest.approx({"x": np.mean(sorted(x)[1:5]), "y": np.mean(sorted(y)[1:5])})
    assert columns["aggregate_runs"] == {"x": 6, "y": 6}
    for v in "xy":
        for s in ("mean", "iqm"):
            assert columns[f"aggregate_{s}_ci_low"][v] <= columns[f"aggregate_{s}"][v] <= columns[f"aggregate_{s}_ci_high"][v]
    table = cells.assign(**{c: cells.variant.map(columns[c]) for c in common.AGGREGATE_COLUMNS})
    names = {"x": "X", "y": "Y"}
    wide = common.aggregate_wide(table, names, ["y", "x"])
    assert list(wide.index) == ["Y", "X"] and wide.loc["X", "mean [95% CI]"].startswith(f"{np.mean(x):.2f} [")
    text = common.aggregate_text(table, names)
    assert "Over the 2 tasks" in text and "(A, B)" in text and "Left out: C" in text
    assert "weighs that task less" not in text  # every cell has 3 seeds
    assert "weighs that task less" in common.aggregate_text(table.assign(seeds=[3, 2] + [3] * (len(table) - 2)), names)
    assert "IQM (the mean of the middle half of the runs; a few runs far out move it little): X (1.00) > Y (" in text
    assert "- Below the top one, X (IQM 1.00 [" in text and f"with disjoint IQM intervals: Y ({np.mean(sorted(y)[1:5]):.2f})." in text
    assert "performance profiles" in text and "performance profiles" not in common.aggregate_text(table, names, profiles=False)
    close = table.assign(aggregate_iqm_ci_high=table.aggregate_iqm_ci_high + 1)  # every interval reaching the top's
    assert "Every variant's IQM interval overlaps the top one's, X's (" in common.aggregate_text(close, names)
    assert common.aggregate_summary(pd.read_csv(__import__("io").StringIO(table.to_csv(index=False))), names).startswith(
        " Over 2 tasks by IQM")  # as the report reads it back from the CSV
    # two groups of runs: the best cell's t-interval reaches below random, but each of its runs ends above it
    grouped = aggregate_data([("x", "E", 1, 1.0), ("x", "E", 2, 1.0), ("x", "E", 3, 100.0), ("y", "E", 1, 0.5),
                              ("y", "E", 2, 0.5), ("y", "E", 3, -1.0)], {"E": 0.0}, ["x", "y"])
    grouped_cells = common.per_env_table(grouped)
    assert grouped_cells.set_index("variant").ci_low["x"] < 0
    assert common.task_aggregates(grouped, grouped_cells)[0] == ["E"]
    # no task where every variant has runs and one beats random: no aggregate, and nothing said of one
    only_c = aggregate_data([r for r in rows if r[1] in "CD"], {"C": 0.0, "D": 0.0}, ["y", "x"])
    assert common.task_aggregates(only_c, common.per_env_table(only_c)) is None
    assert common.aggregate_text(cells, names) == "" and common.aggregate_wide(cells, names, ["x"]) is None


def test_the_aggregates_panel_draws_each_variants_interval_profile_and_iqm_during_training():
    import matplotlib.pyplot as plt

    from analysis import common
    rows = [(v, e, s, float(s + (5 if v == "x" else 0) + (10 if e == "B" else 0))) for v in "xy" for e in "AB"
            for s in (1, 2, 3)]
    data = aggregate_data(rows, {"A": 0.0, "B": 0.0}, ["x", "y"])
    cells = common.per_env_table(data)
    aggregates = common.task_aggregates(data, cells)
    table = cells.assign(**{c: cells.variant.map(aggregates[2][c]) for c in common.AGGREGATE_COLUMNS})
    fig = plt.figure(figsize=(3, 8))
    colours = {"X": "C0", "Y": "C1"}
    during = {"x": (np.array([0.5, 1.0]), np.array([0.4, 1.0]), np.array([0.3, 0.9]), np.array([0.5, 1.1])),
              "y": (np.array([0.5, 1.0]), np.array([0.2, 0.5]), np.array([0.1, 0.4]), np.array([0.3, 0.6]))}
    common.draw_aggregates(fig, aggregates, during, table, {"x": "X", "y": "Y"}, ["x", "y"], colours)
    intervals, profile, training, spare = fig.axes
    assert [t.get_text() for t in intervals.get_yticklabels()] == ["X", "Y"]
    assert len(intervals.containers) == 4  # IQM and mean per variant
    lines = [line for line in profile.get_lines() if len(line.get_xdata()) == common.PROFILE_TAUS]
    assert [line.get_color() for line in lines] == ["C0", "C1"]
    assert lines[0].get_ydata()[0] == 1.0 and lines[0].get_ydata()[-1] == 0.0  # every run above 0, none above the top
    drawn = [line for line in training.get_lines() if line.get_color() != "grey"]  # not the line at 1
    assert [(line.get_color(), list(line.get_ydata())) for line in drawn] == [("C0", [0.4, 1.0]), ("C1", [0.2, 0.5])]
    plt.close(fig)


def test_the_iqm_during_training_normalises_each_curve_as_its_final_score_and_resamples_whole_runs():
    from analysis import common
    # two tasks of different budgets, two runs of one variant each; curves on a grid of 4 points per run
    rows = [("x", "A", 1, 10.0), ("x", "A", 2, 20.0), ("x", "B", 1, 110.0), ("x", "B", 2, 130.0)]
    data = aggregate_data(rows, {"A": 0.0, "B": 100.0}, ["x"])
    data.steps = {"A": 400, "B": 800}
    returns = {("A", 1): [0, 5, 10, 10], ("A", 2): [np.nan, 10, 15, 20],  # no episode yet at A's first point
               ("B", 1): [100, 105, 110, 110], ("B", 2): [100, 110, 120, 130]}
    data.curves = lambda: pd.DataFrame(
        [("x", env, seed, data.steps[env] * (k + 1) / 4, r) for (env, seed), rs in returns.items()
         for k, r in enumerate(rs)], columns=["variant", "env", "seed", "step", "return"])
    share, point, low, high = common.aggregate_curves(data, ["A", "B"])["x"]
    assert list(share) == [0.5, 0.75, 1.0]  # the first point is left out: a run has no return there yet
    # per task random 0, best mean final score 1: A by 15, B by (120 − 100); IQM of 4 runs: the middle 2
    normalised = {("A", 1): [5 / 15, 10 / 15, 10 / 15], ("A", 2): [10 / 15, 15 / 15, 20 / 15],
                  ("B", 1): [5 / 20, 10 / 20, 10 / 20], ("B", 2): [10 / 20, 20 / 20, 30 / 20]}
    runs = np.array(list(normalised.values()))
    assert point == pytest.approx([np.sort(runs[:, k])[1:3].mean() for k in range(3)])
    strata = ["A", "A", "B", "B"]
    for k in range(3):  # each point as stratified_bootstrap_ci gives it
        assert (low[k], high[k]) == pytest.approx(stats.stratified_bootstrap_ci(runs[:, k], strata, stats.iqm)[1:])


def test_the_algorithms_update_sizes_against_hand_values():
    """The KL per update of each variant on each task with a Gaussian policy: per run the median over the second
    half of its steps, then the mean over seeds (min–max); a cell without runs says so; no discrete task."""
    from analysis.algorithms import reading_update_sizes
    from experiments.grid import Run
    planned = [Run(v, e, s) for v in ("trpo", "ppo") for e in ("Hopper-v5", "CartPole-v1") for s in (1, 2, 3)]
    # steps 100-400 of each run: the second half is steps 300 and 400 (above half of 400)
    kls = {1: [9, 9, 0.010, 0.012], 2: [9, 9, 0.008, 0.008], 3: [9, 9, 0.012, 0.014]}
    progress = pd.DataFrame([dict(variant="trpo", env=e, seed=s, global_step=100 * (i + 1), approx_kl=kl, entropy=0.0)
                             for e in ("Hopper-v5", "CartPole-v1") for s, run in kls.items()
                             for i, kl in enumerate(run)])
    text = reading_update_sizes(progress, planned)
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in text.splitlines() if line.startswith("|")}
    # per-run medians 0.011, 0.008, 0.013: mean 0.0107, min 0.008, max 0.013
    assert rows["variant"] == ["Hopper-v5"]  # CartPole's actions are discrete: no column
    assert rows["trpo"] == ["0.011 (0.008–0.013)"]
    assert rows["ppo"] == ["missing run"]
    assert reading_update_sizes(progress[progress.env == "CartPole-v1"], planned) == ""
