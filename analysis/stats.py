"""Scores and statistics (docs/DESIGN.md §7): final scores, normalisation, mean and IQM with 95%
stratified-bootstrap intervals (rliable's definitions, Agarwal et al. 2021), learning curves
on a fixed step grid."""
import functools
import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

BOOTSTRAP_SEED = 0
BOOTSTRAP_REPS = 10_000


def final_scores(episodes, last=100):
    """Final score of each run: mean return of its last `last` training episodes (PPO paper §6.1)."""
    return (episodes.sort_values("global_step").groupby(["variant", "env", "seed"]).ep_return
            .apply(lambda r: r.iloc[-last:].mean()).rename("score").reset_index())


def normalise(scores, random_score, best_score):
    """(score − random) / (best − random), per env: random → 0, best → 1 (PPO paper §6.1).
    random_score and best_score map env → value."""
    lo = scores.env.map(random_score)
    hi = scores.env.map(best_score)
    return (scores.score - lo) / (hi - lo)


def best_of_sweep(scores):
    """Per env, the mean score of the best variant of the sweep (Table 1's 'best result')."""
    return scores.groupby(["env", "variant"]).score.mean().groupby("env").max()


def gaussian_sigma(entropy, action_dim):
    """The geometric mean σ over the action dimensions of a diagonal Gaussian policy, from its entropy:
    H = Σᵢ (½ ln(2πe) + ln σᵢ), so (Πᵢ σᵢ)^(1/d) = exp(H/d − ½ ln(2πe)). Exact for our policies, whose
    σ does not depend on the state, so the logged mean entropy over a batch is the entropy of every state."""
    return np.exp(np.asarray(entropy, float) / action_dim - 0.5 * math.log(2 * math.pi * math.e))


def planned_rows(frame, planned):
    """The rows of a per-run frame (keyed by variant, env, seed) that belong to the planned runs (grid.Run tuples)."""
    keys = pd.MultiIndex.from_tuples([tuple(r) for r in planned], names=["variant", "env", "seed"])
    return frame[frame.set_index(["variant", "env", "seed"]).index.isin(keys)]


def late_per_run(progress, column, start, statistic="median", end=1.0):
    """Per run, the `statistic` ('median' or 'mean') of a progress.csv column over the iterations logged after
    `start` and up to `end` (fractions) of that run's steps; NaN entries (a column a variant does not log) are
    skipped. One row per (variant, env, seed) with the value in `column`."""
    total = progress.groupby(["variant", "env", "seed"]).global_step.transform("max")
    late = progress[(progress.global_step > start * total) & (progress.global_step <= end * total)]
    return late.groupby(["variant", "env", "seed"])[column].agg(statistic).reset_index()


def iqm(x, axis=-1):
    """Interquartile mean: the mean of the middle 50% (scipy.stats.trim_mean(x, 0.25), rliable's IQM)."""
    x = np.sort(np.asarray(x, float), axis=axis)
    n = x.shape[axis]
    cut = int(np.floor(0.25 * n))
    return np.take(x, range(cut, n - cut), axis=axis).mean(axis=axis)


def aggregate_mean(x, axis=-1):
    return np.mean(x, axis=axis)


def t_interval(values, level=0.95):
    """(mean, low, high): the mean of a cell's runs and its Student-t interval, mean ± t·s/√n, with s the sample
    SD (ddof 1) and t the (1 + level)/2 quantile at n − 1 degrees of freedom. It keeps its coverage with a few
    seeds when their scores are roughly normal. A percentile bootstrap of 3 seeds does not: its "95%" interval
    is the seeds' range (the lowest resample mean, all three draws of the lowest seed, has probability
    1/27 > 2.5%), which holds the true mean only 75% of the time (unless all 3 fall on one side, 1 − 2/2³).
    The interval is NaN for fewer than 2 runs."""
    x = np.asarray(values, float)
    mean = float(x.mean()) if len(x) else float("nan")
    if len(x) < 2:
        return mean, float("nan"), float("nan")
    half = scipy_stats.t.ppf((1 + level) / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return mean, mean - half, mean + half


def welch_interval(a, b, level=0.95):
    """(mean(a) − mean(b), low, high): the difference of two cells' means with Welch's t-interval (unequal
    variances; Welch–Satterthwaite degrees of freedom), the cells' runs independent. NaN interval unless both
    cells have 2 or more runs; where both SDs are 0 the interval is the point."""
    return combination_interval([a, b], [1.0, -1.0], level)


def paired_interval(a, b, level=0.95):
    """(mean(a − b), low, high): the mean of per-seed differences a[i] − b[i] with its Student-t interval (t_interval
    of the differences). For two settings run on the same seeds, where a seed fixes what both start from (the
    initial network, the environment's random streams): what the seeds share cancels in each difference, so where
    it moves both scores alike the interval is narrower than Welch's on the same runs. a and b in seed order."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        raise ValueError(f"paired cells need one score per seed in each, got {a.shape} and {b.shape}")
    return t_interval(a - b, level)


def combination_interval(cells, weights, level=0.95):
    """(Σ wᵢ mean(cellᵢ), low, high): a weighted sum of independent cells' means (e.g. a difference of two
    regimes averaged over envs, each env rescaled by fixed anchors) with its t-interval: variance Σ wᵢ² sᵢ²/nᵢ,
    Welch–Satterthwaite degrees of freedom (Σ vᵢ)² / Σ vᵢ²/(nᵢ − 1). NaN interval unless every cell has 2 or
    more runs; where every SD is 0 the interval is the point."""
    cells = [np.asarray(c, float) for c in cells]
    point = float(sum(w * c.mean() for w, c in zip(weights, cells))) if all(len(c) for c in cells) else float("nan")
    if any(len(c) < 2 for c in cells):
        return point, float("nan"), float("nan")
    v = [w * w * c.var(ddof=1) / len(c) for w, c in zip(weights, cells)]
    if sum(v) == 0:
        return point, point, point
    dof = sum(v) ** 2 / sum(vi * vi / (len(c) - 1) for vi, c in zip(v, cells))
    half = scipy_stats.t.ppf((1 + level) / 2, dof) * math.sqrt(sum(v))
    return point, point - half, point + half


def t_errorbar(level=0.95):
    """seaborn's `errorbar` for t_interval: a band that means the same as the tables' intervals."""
    def interval(values):
        _, low, high = t_interval(values, level)
        return (low, high) if not math.isnan(low) else (np.mean(values), np.mean(values))
    return interval


def stratified_bootstrap_ci(values, strata, statistic, reps=BOOTSTRAP_REPS, seed=BOOTSTRAP_SEED, level=0.95):
    """Point estimate and percentile CI of statistic(all runs), resampling runs with replacement
    within each stratum (task), as rliable's StratifiedBootstrap. Returns (point, low, high)."""
    values, strata = np.asarray(values, float), np.asarray(strata)
    rng = np.random.default_rng(seed)
    groups = [values[strata == s] for s in pd.unique(strata)]
    samples = np.concatenate([g[rng.integers(0, len(g), (reps, len(g)))] for g in groups], axis=1)
    estimates = statistic(samples, axis=1)
    alpha = (1 - level) / 2
    return float(statistic(values[None, :], axis=1)[0]), *map(float, np.quantile(estimates, [alpha, 1 - alpha]))


def stratified_bootstrap_curve(runs, strata, statistic, reps=BOOTSTRAP_REPS, seed=BOOTSTRAP_SEED, level=0.95):
    """stratified_bootstrap_ci at every point of a curve: `runs` is (runs × points), and each point is resampled
    with the same draws of runs (rliable's sample-efficiency curves resample whole runs). (point, low, high),
    arrays over the points."""
    runs = np.asarray(runs, float)
    return tuple(np.array(x) for x in zip(*(stratified_bootstrap_ci(runs[:, k], strata, statistic, reps, seed, level)
                                            for k in range(runs.shape[1]))))


def performance_profile(values, strata, taus, reps=BOOTSTRAP_REPS, seed=BOOTSTRAP_SEED, level=0.95):
    """The run-score distribution (Agarwal et al. 2021, §4.1; rliable's create_performance_profile): at each τ,
    the share of runs that score above τ, taken per task and averaged over the tasks, each weighing the same.
    Returns (profile, low, high), arrays over `taus`; the band is pointwise, percentile, from resampling each
    task's runs with replacement (rliable's StratifiedBootstrap). A resample of a task's n runs scores above τ
    in (Σᵢ cᵢ·[xᵢ > τ]) / n of its runs, cᵢ the times run i is drawn, so each task costs one product of
    (reps × n) counts with (n × τ) indicators."""
    values, strata, taus = np.asarray(values, float), np.asarray(strata), np.asarray(taus, float)
    rng = np.random.default_rng(seed)
    point, resampled = np.zeros(len(taus)), np.zeros((reps, len(taus)))
    tasks = pd.unique(strata)
    for task in tasks:
        x = values[strata == task]
        above = (x[:, None] > taus[None, :]).astype(float)  # n × τ
        drawn = rng.integers(0, len(x), (reps, len(x)))
        counts = np.bincount((drawn + len(x) * np.arange(reps)[:, None]).ravel(),  # reps × n: how often each run
                             minlength=reps * len(x)).reshape(reps, len(x))  # is drawn
        point += above.mean(axis=0) / len(tasks)
        resampled += counts @ above / len(x) / len(tasks)
    alpha = (1 - level) / 2
    low, high = np.quantile(resampled, [alpha, 1 - alpha], axis=0)
    return point, low, high


def improvement(x, y):
    """P(X > Y) + ½ P(X = Y) on one task: the share of the pairs (a run of X, a run of Y) in which X's run ends
    higher, a tie counted half; the Mann–Whitney U statistic over n_X·n_Y. Leading axes are batches (resamples)."""
    x, y = np.asarray(x, float)[..., :, None], np.asarray(y, float)[..., None, :]
    return ((x > y) + 0.5 * (x == y)).mean(axis=(-2, -1))


def probability_of_improvement(xs, ys, reps=BOOTSTRAP_REPS, seed=BOOTSTRAP_SEED, level=0.95):
    """(point, low, high): the probability that a run of X ends above a run of Y on the same task, a task drawn
    at random (Agarwal et al. 2021; rliable's metrics.probability_of_improvement): `improvement` on each task,
    averaged over tasks with equal weight. xs and ys hold each task's runs, in the same task order. It uses only
    each task's order of runs, so no normalisation enters, and a task counts as much as any other whatever its
    scale. Interval: percentile, over `reps` resamples that redraw, task by task, X's runs and then Y's with
    replacement, independently (rliable's StratifiedIndependentBootstrap)."""
    xs, ys = [np.asarray(x, float) for x in xs], [np.asarray(y, float) for y in ys]
    point = float(np.mean([improvement(x, y) for x, y in zip(xs, ys)]))
    rng = np.random.default_rng(seed)
    per_task = [improvement(x[rng.integers(0, len(x), (reps, len(x)))], y[rng.integers(0, len(y), (reps, len(y)))])
                for x, y in zip(xs, ys)]
    alpha = (1 - level) / 2
    return point, *map(float, np.quantile(np.mean(per_task, axis=0), [alpha, 1 - alpha]))


def curves(episodes, points=50, total_steps=None):
    """Each run's return on a fixed grid of `points` steps: the mean return of the episodes that
    finished in each grid interval, carried forward through intervals with none."""
    total = total_steps or int(episodes.global_step.max())
    edges = np.linspace(0, total, points + 1)
    out = []
    for key, run in episodes.groupby(["variant", "env", "seed"]):
        binned = run.groupby(pd.cut(run.global_step, edges, labels=edges[1:]), observed=False).ep_return.mean()
        out.append(pd.DataFrame({"variant": key[0], "env": key[1], "seed": key[2], "step": edges[1:],
                                 "return": binned.ffill().to_numpy()}))
    return pd.concat(out, ignore_index=True)


def learning_speed(curves_frame):
    """Each run's mean return over its whole training: the mean of its learning curve (a `curves` frame,
    the curve the figures draw) over the grid steps, i.e. the area under that curve divided by the
    steps. Unlike the final score it rewards learning early (the GAE paper's "fastest policy
    improvement", Schulman et al. 2016 Fig. 2; Andrychowicz et al. 2021 score runs the same way). Grid
    intervals before a run's first finished episode have no return and do not count."""
    per_run = curves_frame.groupby(["variant", "env", "seed"])["return"].mean()
    return per_run.rename("speed").reset_index()


def bootstrap_cell_means(scores, reps=BOOTSTRAP_REPS, seed=BOOTSTRAP_SEED):
    """Bootstrap replicates of every (variant, env) cell's mean score: each cell's runs (its seeds)
    resampled with replacement, independently of the other cells. Returns a frame with one row per
    replicate and one column per (variant, env); the spread across rows is the seed-level uncertainty
    that any ranking of the cells inherits."""
    rng = np.random.default_rng(seed)
    cells = {key: g.score.to_numpy(float) for key, g in scores.groupby(["variant", "env"], sort=False)}
    columns = pd.MultiIndex.from_tuples(cells, names=["variant", "env"])
    return pd.DataFrame(np.column_stack([x[rng.integers(0, len(x), (reps, len(x)))].mean(axis=1)
                                         for x in cells.values()]), columns=columns)


def normalise_replicates(cell_means, random_score):
    """Normalise each replicate as the point estimate is (random → 0, the replicate's own best variant
    per env → 1), then average over envs: one row per replicate, one column per variant."""
    best = cell_means.T.groupby(level="env").max().T  # per replicate and env, the best variant's mean
    envs = cell_means.columns.get_level_values("env")
    lo = np.array([random_score[e] for e in envs])
    hi = best[envs].to_numpy()
    normalised = (cell_means - lo) / (hi - lo)
    return normalised.T.groupby(level="variant", sort=False).mean().T


def ranking_uncertainty(replicates, level=0.95):
    """Per variant (column), from bootstrap replicates (rows) of a score where higher is better: the
    percentile interval of its rank (1 = best) and the share of replicates in which it is the best
    (a tie shares the win)."""
    alpha = (1 - level) / 2
    ranks = replicates.rank(axis=1, ascending=False)
    is_best = replicates.eq(replicates.max(axis=1), axis=0)
    return pd.DataFrame({"rank_ci_low": ranks.quantile(alpha), "rank_ci_high": ranks.quantile(1 - alpha),
                         "p_best": is_best.div(is_best.sum(axis=1), axis=0).mean()})


def spearman(ours, reference):
    """Spearman's ρ between the columns of `ours` (a Series, or a frame of replicates in rows) and the
    `reference` Series over the same labels: the Pearson correlation of average ranks (ties share a rank)."""
    frame = pd.DataFrame([ours]) if isinstance(ours, pd.Series) else ours
    rho = pearson_rows(frame[reference.index].rank(axis=1).to_numpy(), reference.rank().to_numpy())
    return float(rho[0]) if isinstance(ours, pd.Series) else rho


def spearman_rows(a, b):
    """Spearman's ρ row by row between two frames over the same columns: row i of `a` against row i of `b`
    (e.g. bootstrap replicates of two grids' scores, to put an interval on the ρ between their orderings)."""
    return pearson_rows(a.rank(axis=1).to_numpy(), b[a.columns].rank(axis=1).to_numpy())


def pearson_rows(a, b):
    """Pearson's correlation of each row of the array `a` with the same row of `b`, or with `b` if 1-D."""
    a, b = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=-1, keepdims=True)
    return (a * b).sum(axis=1) / np.sqrt((a ** 2).sum(axis=1) * (b ** 2).sum(axis=-1))


def normalised_means(scores, random_score):
    """Each variant's mean normalised score over envs (Table 1's aggregate) of a grid normalised on its own:
    random → 0, the grid's best variant per env → 1. Assumes every (variant, env) cell holds the same seeds."""
    normalised = normalise(scores, random_score, best_of_sweep(scores))
    return normalised.groupby(scores.variant, sort=False).mean()


def shared_seeds(grids, at_least):
    """The seeds, sorted, when every (variant, env) cell of every grid (score frames) holds the same set of
    `at_least` or more; else None (the splits below need every cell split alike)."""
    seed_sets = pd.concat([g.groupby(["variant", "env"]).seed.agg(frozenset) for g in grids])
    return sorted(seed_sets.iloc[0]) if seed_sets.nunique() == 1 and len(seed_sets.iloc[0]) >= at_least else None


def seed_split_agreement(scores, random_score, ranked=None):
    """How well a grid's own seeds agree on the ordering of its variants: Spearman's ρ between the Table 1
    orderings of grids made from disjoint seed sets, each normalised on its own (normalised_means), over the
    variants in `ranked` (default: all). Returns (pairs, held_out): ρ for every pair of single seeds, and for
    each seed, ρ between its grid and the grid of the other seeds (empty with 2 seeds); None unless every cell
    holds the same 2 or more seeds."""
    seeds = shared_seeds([scores], 2)
    if seeds is None:
        return None

    def ordering(kept):
        means = normalised_means(scores[scores.seed.isin(kept)], random_score)
        return means if ranked is None else means[list(ranked)]

    pairs = [spearman(ordering([a]), ordering([b])) for a, b in itertools.combinations(seeds, 2)]
    held_out = ([spearman(ordering([s]), ordering([t for t in seeds if t != s])) for s in seeds]
                if len(seeds) > 2 else [])
    return pairs, held_out


def half_split_agreement(grids, random_score, ranked=None):
    """Seed noise measured, not modelled: over every way to split the seeds into two disjoint halves (k = n // 2
    seeds and the other n − k), Spearman's ρ between the orderings of the two halves' grids, each normalised on
    its own (normalised_means), over the variants in `ranked` (default: all). `grids`: {name: scores}, every cell
    of every grid holding the same seeds, e.g. one Table 1 per code regime with the variants named by setting.
    Returns (k, {name: ρ per split} within each grid, and {(a, b): ρ per split} across each pair of grids, a's k
    seeds against b's other n − k: disjoint seeds, so no random stream is shared). Were two grids' true orderings
    the same, across them ρ would be about the geometric mean of their within ρ (Spearman's attenuation). None
    unless every cell holds the same 4 or more seeds (halves of one seed would only repeat seed_split_agreement's
    pairs)."""
    seeds = shared_seeds(grids.values(), 4)
    if seeds is None:
        return None
    k = len(seeds) // 2

    @functools.cache
    def ordering(name, kept):
        means = normalised_means(grids[name][grids[name].seed.isin(kept)], random_score)
        return means if ranked is None else means[list(ranked)]

    splits = [(half, tuple(s for s in seeds if s not in half)) for half in itertools.combinations(seeds, k)]
    agreement = {name: np.array([spearman(ordering(name, h), ordering(name, rest)) for h, rest in splits])
                 for name in grids}
    for a, b in itertools.permutations(grids, 2):
        agreement[(a, b)] = np.array([spearman(ordering(a, h), ordering(b, rest)) for h, rest in splits])
    return k, agreement


def draw_agreement(scores, random_score, reference, k=3):
    """Could `reference` (a Series over variants: another grid's ordering, e.g. the paper's 3-seed Table 1) be a
    k-seed grid drawn like ours? Over every way to take k of the grid's seeds (the same k in every cell), Spearman's
    ρ between the ordering of those k seeds' grid and the other seeds' grid (how well an independent k-seed grid
    agrees with the rest: each grid normalised on its own, normalised_means), and ρ between `reference` and the
    same other seeds' grid, over reference's variants. Were `reference` such a draw, its ρ would be exchangeable
    with the draws'. Returns (draws, reference_rhos), arrays over the splits; None unless every cell holds the
    same 2k or more seeds (so the rest is at least as many seeds as a draw)."""
    seeds = shared_seeds([scores], 2 * k)
    if seeds is None:
        return None
    scores = scores[scores.variant.isin(reference.index)]
    ordering = lambda kept: normalised_means(scores[scores.seed.isin(kept)], random_score)  # noqa: E731
    draws, reference_rhos = [], []
    for drawn in itertools.combinations(seeds, k):
        rest = ordering([s for s in seeds if s not in drawn])
        draws.append(spearman(ordering(drawn), rest[reference.index]))
        reference_rhos.append(spearman(reference, rest[reference.index]))
    return np.array(draws), np.array(reference_rhos)


SD_FLOOR = 0.001  # two_groups: no component narrower than this share of the sample's standard deviation


def two_groups(values, min_share=0.05, min_separation=2.0, min_evidence=10.0, iterations=1000):
    """Whether a sample of scores falls into two groups, and where they part: a mixture of two normals fitted by
    EM (started from the split that minimises the within-group variance), against a single normal. Two groups
    only if the mixture's BIC is lower by `min_evidence` or more (10: very strong evidence, Kass & Raftery 1995),
    each component weighs at least `min_share`, and the components are apart by Ashman's D =
    |μ₁ − μ₂| √2 / √(σ₁² + σ₂²) ≥ `min_separation` (Ashman, Bird & Zepf 1994: D > 2 for a clean separation).
    Each component's σ is kept at least SD_FLOOR of the sample's standard deviation (a variance floor, as a fitted
    mixture needs: runs tied at a task's floor or cap, e.g. Acrobot's −500 when no episode reaches the goal, are
    a group of no spread, whose likelihood would otherwise grow without bound and leave them unfound).
    Returns (lower mean, upper mean, split, D, BIC difference), the split being where a value between the means is
    as likely to come from either component; None for one group."""
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n < 6 or np.ptp(x) == 0:
        return None
    # start: the 2-means split of the sorted values (exact, from cumulative sums)
    cut = np.arange(1, n)
    total, square = np.cumsum(x), np.cumsum(x ** 2)
    within = (square[cut - 1] - total[cut - 1] ** 2 / cut) + (
        (square[-1] - square[cut - 1]) - (total[-1] - total[cut - 1]) ** 2 / (n - cut))
    k = cut[np.argmin(within)]
    w, mu = np.array([k / n, 1 - k / n]), np.array([x[:k].mean(), x[k:].mean()])
    floor = SD_FLOOR * x.std()
    sd = np.maximum(np.sqrt([x[:k].var(), x[k:].var()]), floor)
    previous = -np.inf
    for _ in range(iterations):
        weighted = w * scipy_stats.norm.pdf(x[:, None], mu, sd)  # n × 2
        likelihood = np.log(weighted.sum(axis=1)).sum()
        responsibility = weighted / weighted.sum(axis=1, keepdims=True)
        w = responsibility.mean(axis=0)
        mu = (responsibility * x[:, None]).sum(axis=0) / responsibility.sum(axis=0)
        sd = np.maximum(np.sqrt((responsibility * (x[:, None] - mu) ** 2).sum(axis=0) / responsibility.sum(axis=0)),
                        floor)
        if w.min() * n < 2 or likelihood - previous < 1e-10:
            break
        previous = likelihood
    if w.min() < min_share:
        return None
    mixture = np.log((w * scipy_stats.norm.pdf(x[:, None], mu, sd)).sum(axis=1)).sum()
    single = scipy_stats.norm.logpdf(x, x.mean(), x.std()).sum()
    evidence = (2 * math.log(n) - 2 * single) - (5 * math.log(n) - 2 * mixture)  # BIC(one) − BIC(two)
    lo, hi = np.argsort(mu)
    separation = abs(mu[hi] - mu[lo]) * math.sqrt(2) / math.sqrt(sd[lo] ** 2 + sd[hi] ** 2)
    if evidence < min_evidence or separation < min_separation:
        return None
    between = np.linspace(mu[lo], mu[hi], 4096)
    odds = w[hi] * scipy_stats.norm.pdf(between, mu[hi], sd[hi]) - w[lo] * scipy_stats.norm.pdf(between, mu[lo], sd[lo])
    split = between[np.argmax(odds >= 0)]
    return mu[lo], mu[hi], split, separation, evidence


def seed_group_test(cell, seed, upper, reps=BOOTSTRAP_REPS, rng_seed=BOOTSTRAP_SEED):
    """Whether the seed decides which of two groups a run lands in, across cells (settings) run with the same
    seeds: a permutation test. Only cells with runs in both groups count (the others cannot say which seeds go
    up). The statistic is the variance over the seeds of how many of their runs are in the upper group; the
    null shuffles each cell's upper/lower labels among that cell's seeds (its count of upper runs kept).
    Returns (upper runs per seed as a Series, cells counted, p = (shuffles at least as spread + 1) /
    (reps + 1)), or None when no cell has runs in both groups."""
    runs = pd.DataFrame({"cell": cell, "seed": seed, "upper": np.asarray(upper, dtype=bool)})
    share = runs.groupby("cell").upper.transform("mean")
    runs = runs[(share > 0) & (share < 1)].reset_index(drop=True)
    if runs.empty:
        return None
    seeds = sorted(runs.seed.unique())
    column = runs.seed.map({s: i for i, s in enumerate(seeds)}).to_numpy()  # each run's seed, as a position
    counts = np.bincount(column, weights=runs.upper, minlength=len(seeds))
    rng = np.random.default_rng(rng_seed)
    shuffled = np.zeros((reps, len(seeds)))  # per shuffle, upper runs per seed
    for _, g in runs.groupby("cell", sort=True):
        labels = g.upper.to_numpy(dtype=float)
        order = np.argsort(rng.random((reps, len(labels))), axis=1)  # a uniform permutation per shuffle
        np.add.at(shuffled, (np.arange(reps)[:, None], column[g.index][None, :]), labels[order])
    observed = counts.var()
    p = (np.sum(shuffled.var(axis=1) >= observed - 1e-12) + 1) / (reps + 1)
    return pd.Series(counts.astype(int), index=pd.Index(seeds, name="seed")), runs.cell.nunique(), p


def share_interval(k, n, level=0.95):
    """The exact (Clopper–Pearson) interval of a share of k in n."""
    ci = scipy_stats.binomtest(int(k), int(n)).proportion_ci(level, method="exact")
    return ci.low, ci.high


def predicted_agreement(r, k, m):
    """Classical test theory (Spearman 1910; Brown 1910): when two single measurements correlate r, a mean of k
    independent measurements and a mean of m others correlate √(R_k R_m), with the Spearman–Brown reliability
    R_n = n r / (1 + (n − 1) r); for k = m = n that is R_n. Applied to rank correlations of seed-averaged scores
    it is an approximation (check it against an observed split). For r ≤ 0 the seeds share no ordering beyond
    noise, and the reliability, a share of variance, is set to 0 as a negative variance estimate is; NaN for NaN."""
    if math.isnan(r):
        return float("nan")
    if r <= 0:
        return 0.0
    reliability = lambda n: n * r / (1 + (n - 1) * r)  # noqa: E731
    return math.sqrt(reliability(k) * reliability(m))


def held_out_expected(k, m, level=0.95):
    """How often a `level` t-interval from k seeds holds the mean of m other seeds when every seed's score is
    drawn from one normal distribution: the difference of the two means over the k seeds' standard error scaled
    by √(1/k + 1/m) is Student-t with k − 1 degrees of freedom, so the share is
    P(|T_{k−1}| < t_{k−1} · √(1/k) / √(1/k + 1/m)). Below `level`: the other seeds' mean has its own noise."""
    t = scipy_stats.t.ppf((1 + level) / 2, k - 1)
    return float(2 * scipy_stats.t.cdf(t * math.sqrt(1 / k) / math.sqrt(1 / k + 1 / m), k - 1) - 1)


def held_out_cells(scores, first, level=0.95):
    """Per (variant, env) cell of `scores` (variant, env, seed, score) with runs both in and beyond the seeds
    `first`: the t-interval of its first seeds (t_interval), the mean of its other seeds, whether the interval
    holds that mean, and the widths of the first seeds' interval and of the interval from all its seeds."""
    rows = []
    for (variant, env), g in scores.groupby(["variant", "env"], sort=False):
        mine, rest = g[g.seed.isin(first)].score, g[~g.seed.isin(first)].score
        if len(mine) < 2 or not len(rest):
            continue
        _, low, high = t_interval(mine, level)
        _, all_low, all_high = t_interval(g.score, level)
        rows.append(dict(variant=variant, env=env, k=len(mine), m=len(rest), low=low, high=high,
                         rest_mean=float(rest.mean()), holds=bool(low <= rest.mean() <= high),
                         width_first=high - low, width_all=all_high - all_low))
    return pd.DataFrame(rows, columns=["variant", "env", "k", "m", "low", "high", "rest_mean", "holds",
                                       "width_first", "width_all"])


def pair_decisions(scores, first, level=0.95):
    """Every pair of variants on the same env in `scores`, compared twice by Welch's interval of the difference of
    their means (welch_interval): on the seeds `first`, and on all their seeds. `first_sign` and `all_sign` are
    +1 or −1 where the interval excludes 0 (the pair is decided, the first variant higher or lower), else 0."""
    def sign(low, high):
        return 1 if low > 0 else -1 if high < 0 else 0

    rows = []
    for env, g in scores.groupby("env", sort=False):
        cells = {variant: c for variant, c in g.groupby("variant", sort=False)}
        for a, b in itertools.combinations(sorted(cells), 2):
            _, low, high = welch_interval(cells[a][cells[a].seed.isin(first)].score,
                                          cells[b][cells[b].seed.isin(first)].score, level)
            _, all_low, all_high = welch_interval(cells[a].score, cells[b].score, level)
            rows.append(dict(env=env, a=a, b=b, first_sign=sign(low, high), all_sign=sign(all_low, all_high)))
    return pd.DataFrame(rows, columns=["env", "a", "b", "first_sign", "all_sign"])
