"""What every experiment's analysis shares (docs/DESIGN.md §6-7): the runs and scores of one experiment (Data),
per-cell means with their intervals, learning curves, the orderings a reading states, and where the files go.
Each experiment's own table, figure and reading live in analysis/<experiment>.py."""
import os
import pathlib

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from analysis import setups, stats  # noqa: E402
from analysis.load import load_random, load_runs, random_score  # noqa: E402
from experiments import grid  # noqa: E402


PUBLISHED = setups.PUBLISHED


class Data:
    """The runs, scores and anchors one experiment needs. The planned runs are checked first
    (load.GridStatus): missing or stale runs stop the analysis unless partial / allow_stale."""

    def __init__(self, scale_dir, config, scale, experiment, status):
        self.scale_dir, self.experiment, self.status = pathlib.Path(scale_dir), experiment, status
        self.config, self.scale = config, scale
        self.missing = self.status.missing
        self.planned_seeds = len(config["scales"][scale]["experiments"][experiment]["seeds"])
        self.variants = grid.experiment_variants(config, scale, experiment)
        self.runs, _, self.episodes = load_runs(scale_dir, only=self.status.found())
        self.envs = list(dict.fromkeys(r.env for r in self.status.planned))
        self.steps = {env: grid.steps(config, scale, env) for env in self.envs}
        self.args = {v: grid.run_args(config, scale, v, self.envs[0])[0] for v in self.variants}
        key = ["variant", "env", "seed"]
        self.scores = stats.final_scores(self.episodes) if len(self.episodes) else pd.DataFrame(columns=key + ["score"])
        self.random_score = random_score(scale_dir, self.envs)

    def normalised(self, best_from):
        """Scores normalised per env: random policy → 0, best variant of best_from → 1."""
        best = stats.best_of_sweep(self.scores[self.scores.variant.isin(best_from)])
        return self.scores.assign(normalised=stats.normalise(self.scores, self.random_score, best))

    def curves(self):
        """Every run's learning curve (stats.curves), each env on its own step grid."""
        return pd.concat([stats.curves(self.episodes[self.episodes.env == env], total_steps=self.steps[env])
                          for env in self.envs if (self.episodes.env == env).any()], ignore_index=True)

    def seeds_note(self, n):
        """'' when a cell has every planned seed, else how many it has (a partial report says so in the cell)."""
        return "" if n >= self.planned_seeds else f" ({n} of {self.planned_seeds} seeds)"


MISSING = "missing run"  # a table cell whose runs are not there yet (a partial report)


NOT_ON_WHOLE_ENVS = "runs only on envs not yet whole"  # Table 1 aggregates over whole envs (whole_envs)


def ci_text(point, low, high, digits=1):
    return f"{point:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def per_env_table(data, value="score", digits=1):
    """variant × env: mean over seeds with its 95% t-interval (stats.t_interval), and the seed count."""
    rows = []
    for (variant, env), g in data.scores.groupby(["variant", "env"], sort=False):
        point, low, high = stats.t_interval(g[value])
        rows.append(dict(variant=variant, env=env, seeds=len(g), mean=point, ci_low=low, ci_high=high,
                         text=ci_text(point, low, high, digits) + data.seeds_note(len(g))))
    return pd.DataFrame(rows)


# Figures sized for a paper's single column (about 3.5 in) at 7-pt text; colours from seaborn's colour-blind palette
FIGURE_STYLE = {"font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "xtick.labelsize": 6, "ytick.labelsize": 6,
                "legend.fontsize": 6.5, "lines.linewidth": 1.0, "axes.linewidth": 0.6}
EARLY = 0.2  # the share of training a learning-curve panel's y axis leaves out, so that late differences show


def palette(labels):
    """A colour per label, colour-blind safe (seaborn 'colorblind', Okabe and Ito's hues), in the given order."""
    return dict(zip(labels, sns.color_palette("colorblind", len(labels))))


def learning_curves(data, names=None, into=None):
    """One small panel per task, two to a row: each variant's mean training return over its seeds, with a light 95%
    t-interval band, named by its label (or by `names`, variant → name) and told apart by colour and dash. Each
    panel's y axis covers the means after the first EARLY of training (the start, far below, would flatten the
    end, where the variants differ). Drawn into `into` (a subfigure), else into a figure of its own, returned."""
    labels = [(names or {}).get(v) or label(getattr(data, "config", None), v) for v in data.variants]
    curves = data.curves().assign(label=lambda d: d.variant.map(dict(zip(data.variants, labels))))
    envs = [e for e in data.envs if e in set(curves.env)]
    columns = min(2, len(envs))
    rows = -(-len(envs) // columns)
    with plt.rc_context(FIGURE_STYLE):
        fig = into or plt.figure(figsize=(1.78 * columns, 1.55 * rows + 0.12 * len(labels) + 0.2), layout="constrained")
        axes = fig.subplots(rows, columns, squeeze=False).ravel()
        means = curves.groupby(["env", "label", "step"])["return"].mean()
        legend = {}  # label → handle, gathered over the panels (a variant may have no run on some task yet)
        for ax, env in zip(axes, envs):
            sns.lineplot(data=curves[curves.env == env], x="step", y="return", hue="label", hue_order=labels,
                         palette=palette(labels), style="label", style_order=labels, dashes=True,
                         errorbar=stats.t_errorbar(), err_kws={"alpha": 0.12, "linewidth": 0}, ax=ax)
            legend.update(zip(*reversed(ax.get_legend_handles_labels())))
            ax.get_legend().remove()
            ax.set_title(env)
            ax.set(xlabel="", ylabel="")
            total = data.steps.get(env, max(data.steps.values()))
            ax.set_xticks(np.linspace(0, total, 5), [step_label(x) for x in np.linspace(0, total, 5)])
            zoom_past_start(ax, means.loc[env], total)
            ax.grid(alpha=0.3, linewidth=0.4)
        for ax in axes[len(envs):]:
            ax.axis("off")
        for ax in axes[max(len(envs) - columns, 0):len(envs)]:  # the lowest panel of each column
            ax.set_xlabel("environment steps")
        fig.supylabel("episode return", fontsize=7)
        if into is None:
            fig.get_layout_engine().set(rect=(0, 0, 1, 1 - 0.15 / fig.get_figheight()))  # room for a title above
        fig.legend([legend[n] for n in labels if n in legend], [n for n in labels if n in legend],
                   loc="outside lower center", ncol=2, frameon=False)
    return fig


def zoom_past_start(ax, means, total):
    """A learning-curve panel's y axis: the range of the mean curves (`means`, indexed by step, among others)
    after the first EARLY of the run's `total` steps, with a margin; the start, far below, would flatten the end."""
    late = means[means.index.get_level_values("step") >= EARLY * total]
    low, high = late.min(), late.max()
    ax.set_ylim(low - 0.08 * (high - low + 1e-9), high + 0.08 * (high - low + 1e-9))


def step_label(steps):
    """0, 250k, 500k, 1M: tick labels that do not overlap."""
    if steps >= 1e6:
        return f"{steps / 1e6:g}M"
    return f"{steps / 1e3:g}k" if steps else "0"


def budget_label(steps, envs):
    """The step budget of a table's columns: '1M steps', or '1M steps; 500k on Acrobot-v1, CartPole-v1' where
    tasks differ (the most common budget first, then each other one with its tasks)."""
    by_budget = {}
    for env in envs:
        by_budget.setdefault(steps[env], []).append(env)
    main, *others = sorted(by_budget, key=lambda n: (-len(by_budget[n]), -n))
    return "; ".join([f"{step_label(main)} steps"] + [f"{step_label(n)} on {', '.join(sorted(by_budget[n]))}"
                                                        for n in others])


def table_curves(data):
    """variant × env: each cell's mean with its interval, and each variant over the tasks (task_aggregates, in
    every row of the variant); the wide table, with the aggregates' own table where there are any; and the figure:
    the learning curves, beside them the aggregates (draw_aggregates)."""
    table = per_env_table(data)
    names = {v: label(data.config, v) for v in data.variants}
    aggregates = task_aggregates(data, table)
    for column in AGGREGATE_COLUMNS:
        table[column] = table.variant.map(aggregates[2][column]) if aggregates else np.nan
    wide = table.pivot(index="variant", columns="env", values="text").reindex(data.variants).reindex(columns=data.envs)
    wide = [wide.astype(object).fillna(MISSING)]
    if (overall := aggregate_wide(table, names, data.variants)) is not None:
        wide.append(overall)
    if aggregates is None:
        return table, wide, learning_curves(data)
    height = max(1.55 * -(-len(data.envs) // 2) + 0.12 * len(names) + 0.2, aggregates_height(len(names)))
    with plt.rc_context(FIGURE_STYLE):
        fig = plt.figure(figsize=(3.56 + AGGREGATE_WIDTH, height), layout="constrained")
        fig.get_layout_engine().set(rect=(0, 0, 1, 1 - 0.15 / height))  # room for build()'s title above
        per_task, beside = fig.subfigures(1, 2, width_ratios=(3.56, AGGREGATE_WIDTH))  # 3.56: two curve panels
        learning_curves(data, into=per_task)
        draw_aggregates(beside, aggregates, aggregate_curves(data, aggregates[0]), table, names, data.variants,
                        palette(list(names.values())))
    return table, wide, fig


AGGREGATE_WIDTH = 2.6  # inches: the aggregates beside the learning curves


# Each variant over the tasks (task_aggregates): columns of the experiment's table, the same in each of its rows
AGGREGATE_COLUMNS = ("aggregate_tasks", "aggregate_left_out", "aggregate_runs", "aggregate_mean",
                     "aggregate_mean_ci_low", "aggregate_mean_ci_high", "aggregate_iqm", "aggregate_iqm_ci_low",
                     "aggregate_iqm_ci_high")
AGGREGATE_SCALE = "normalised score (per task: random 0, the best variant's mean 1)"


def task_aggregates(data, cells):
    """Each variant over the tasks, as rliable aggregates (Agarwal et al. 2021, §4): each run's score normalised
    per task, random → 0 and the best variant's mean → 1 (the PPO paper's rule, §6.1), then per variant the mean
    and the interquartile mean (IQM) of its runs' normalised scores, each with its stratified-bootstrap 95%
    interval (the runs of all tasks pooled, each task's resampled on their own, so a task weighs by its runs:
    the same for all once every cell has its seeds). Over the tasks where every variant has runs and the best
    variant beats the random policy, every one of its runs ending above the random score: where none does (VPG on
    Ant and HalfCheetah), best − random is no yardstick, near 0 or below it, and would blow the normalised scores
    up or turn them over. (Not the best cell's t-interval: a task whose runs fall into two groups, as HalfCheetah's
    do, widens it below the random score with 3 seeds far above it.) `cells` is the experiment's per_env_table.
    (the tasks, the normalised runs on them, {column of AGGREGATE_COLUMNS: {variant: value}}), or None where no
    task qualifies."""
    cells = cells.set_index(["variant", "env"])
    held = data.scores.groupby("env").variant.agg(set)
    envs = [e for e in data.envs if e in held.index and set(data.variants) <= held[e]]
    best = {e: cells.xs(e, level="env")["mean"].idxmax() for e in envs}
    lowest = data.scores.groupby(["variant", "env"]).score.min()
    left_out = [e for e in envs if not lowest[(best[e], e)] > data.random_score[e]]
    envs = [e for e in envs if e not in left_out]
    if not envs:
        return None
    scores = data.normalised(data.variants)
    scores = scores[scores.env.isin(envs)]
    columns = aggregate_intervals(scores, "aggregate", ("mean", "iqm"))
    for variant, g in scores.groupby("variant", sort=False):
        columns.setdefault("aggregate_tasks", {})[variant] = ", ".join(envs)
        columns.setdefault("aggregate_runs", {})[variant] = len(g)
        columns.setdefault("aggregate_left_out", {})[variant] = ", ".join(left_out)
    return envs, scores, columns


def aggregate_intervals(runs, prefix, statistics):
    """Per variant, each of `statistics` ('mean', 'iqm') of its runs' `normalised` column over the tasks, with its
    stratified-bootstrap 95% interval: {f"{prefix}_{statistic}" and its "_ci_low", "_ci_high": {variant: value}}."""
    functions = {"mean": stats.aggregate_mean, "iqm": stats.iqm}
    columns = {}
    for variant, g in runs.groupby("variant", sort=False):
        for name in statistics:
            point, low, high = stats.stratified_bootstrap_ci(g.normalised, g.env, functions[name])
            for suffix, value in (("", point), ("_ci_low", low), ("_ci_high", high)):
                columns.setdefault(f"{prefix}_{name}{suffix}", {})[variant] = value
    return columns


def aggregate_rows(table, names, order=()):
    """The rows of the table's variants that have an aggregate (task_aggregates), one per variant, in `order`
    (variants) where given, else the table's; with `name` from `names` (variant → name); none where the table has
    no aggregate."""
    if "aggregate_iqm" not in table:
        return table.iloc[:0].assign(name=[])
    rows = table.dropna(subset=["aggregate_iqm"]).drop_duplicates("variant")
    if order:
        rows = rows.set_index("variant").reindex([v for v in order if v in set(rows.variant)]).reset_index()
    return rows.assign(name=rows.variant.map(names))


def aggregate_heading(rows):
    """How a cite table names the aggregate of aggregate_rows `rows`: 'IQM over N tasks (random 0, best 1)'."""
    return f"IQM over {len(rows.aggregate_tasks.iloc[0].split(', '))} tasks (random 0, best 1)"


def aggregate_wide(table, names, order):
    """Markdown-ready: per variant (in `order`), its runs and its mean and IQM over the tasks with their
    intervals; None where the table has no aggregate."""
    rows = aggregate_rows(table, names, order)
    if not len(rows):
        return None
    wide = pd.DataFrame({
        "runs": rows.aggregate_runs.astype(int).to_numpy(),
        "mean [95% CI]": [ci_text(r.aggregate_mean, r.aggregate_mean_ci_low, r.aggregate_mean_ci_high, 2)
                          for r in rows.itertuples()],
        "IQM [95% CI]": [ci_text(r.aggregate_iqm, r.aggregate_iqm_ci_low, r.aggregate_iqm_ci_high, 2)
                         for r in rows.itertuples()]}, index=rows.name.to_numpy())
    wide.index.name = f"over {rows.aggregate_tasks.iloc[0]}: {AGGREGATE_SCALE}"
    return wide


def aggregate_ordering(rows, statistic="iqm"):
    """The variants of aggregate_rows by their aggregate `statistic` ('iqm' or 'mean'), best first, '>' where two
    neighbours' stratified-bootstrap 95% intervals are disjoint, '≈' where they overlap (ordering, to 2 decimals)."""
    return ordering(rows.assign(variant=rows.name, mean=rows[f"aggregate_{statistic}"],
                                ci_low=rows[f"aggregate_{statistic}_ci_low"],
                                ci_high=rows[f"aggregate_{statistic}_ci_high"]).drop(columns="seeds", errors="ignore"),
                    digits=2)


def aggregate_text(table, names, profiles=True):
    """The reading's paragraph on the aggregates (task_aggregates): the variants by IQM and by mean, those whose
    IQM interval lies wholly below the top one's, and what the normalisation is (`profiles`: the figure draws
    the performance profiles); '' without an aggregate."""
    rows = aggregate_rows(table, names)
    if not len(rows):
        return ""
    tasks, left_out = rows.aggregate_tasks.iloc[0].split(", "), rows.aggregate_left_out.iloc[0]
    top = rows.loc[rows.aggregate_iqm.idxmax()]
    below = rows[rows.aggregate_iqm_ci_high < top.aggregate_iqm_ci_low]
    top_iqm = ci_text(top.aggregate_iqm, top.aggregate_iqm_ci_low, top.aggregate_iqm_ci_high, 2)
    return (f"Over the {len(tasks)} tasks where every variant has runs and the best one beats the random policy "
            f"({', '.join(tasks)}), each run's score normalised per task (random 0, the best variant's mean 1) and "
            "the runs of all tasks pooled (rliable; Agarwal et al. 2021)"
            + ("" if table[table.env.isin(tasks)].seeds.nunique() == 1 else
               "; a task weighs by its runs, and a variant with fewer seeds on some task weighs that task less")
            + ":\n\n"
            f"- IQM (the mean of the middle half of the runs; a few runs far out move it little): "
            f"{aggregate_ordering(rows)}.\n"
            f"- Mean: {aggregate_ordering(rows, 'mean')}.\n"
            "- '>': the neighbours' stratified-bootstrap 95% intervals are disjoint; '≈': they overlap."
            + (" The figure's performance profiles show each variant's whole distribution of runs on the same scale."
               if profiles else "") + "\n"
            + (f"- Below the top one, {top['name']} (IQM {top_iqm}), with disjoint IQM intervals: "
               + ", ".join(f"{r.name} ({r.aggregate_iqm:.2f})" for r in below.itertuples())
               + ("; the others' intervals overlap its." if len(below) < len(rows) - 1 else ".") if len(below) else
               f"- Every variant's IQM interval overlaps the top one's, {top['name']}'s ({top_iqm}): these seeds do "
               "not order them over the tasks.")
            + (f"\n- Left out: {left_out}, where every variant has runs but some run of the best one ends below the "
               "random policy's score: there best − random is no yardstick (near 0, or below 0, which would turn the "
               "scale over)." if isinstance(left_out, str) and left_out else ""))


def aggregate_summary(table, names):
    """The summary's sentence on the aggregates: the variants by IQM over the tasks; '' without an aggregate."""
    rows = aggregate_rows(table, names)
    if not len(rows):
        return ""
    return (f" Over {len(rows.aggregate_tasks.iloc[0].split(', '))} tasks by IQM (per task random 0, the best "
            f"variant 1): {aggregate_ordering(rows)}.")


PROFILE_TAUS = 201  # thresholds τ of a performance profile, evenly from 0 (the random policy) to the highest run


def aggregate_curves(data, envs):
    """Each variant's IQM over the tasks along training (rliable's sample-efficiency curves, Agarwal et al. 2021):
    every run's learning curve (Data.curves) on `envs`, normalised as the final scores are (per task random 0, the
    best variant's mean final score 1), and at each point of the step grid, as a share of the run's steps, the
    IQM of the runs with its stratified-bootstrap 95% interval. Points where some run has no finished episode
    yet are left out. {variant: (share of the steps, IQM, low, high)}."""
    curves = data.curves()
    curves = curves[curves.env.isin(envs)].rename(columns={"return": "score"})
    curves = curves.assign(normalised=stats.normalise(curves, data.random_score, stats.best_of_sweep(data.scores)),
                           share=(curves.step / curves.env.map(data.steps)).round(6))
    out = {}
    for variant, g in curves.groupby("variant", sort=False):
        runs = g.pivot(index=["env", "seed"], columns="share", values="normalised").dropna(axis=1)
        out[variant] = (runs.columns.to_numpy(), *stats.stratified_bootstrap_curve(
            runs.to_numpy(), runs.index.get_level_values("env"), stats.iqm))
    return out


def draw_aggregates(subfigure, aggregates, curves, table, names, order, colours):
    """Beside the learning curves: each variant's IQM and mean over the tasks with their 95% intervals, its
    performance profile (stats.performance_profile: the share of its runs above τ, each task weighing the same)
    with its pointwise 95% band, and its IQM along training (`curves`, aggregate_curves), all on the normalised
    scale of task_aggregates."""
    envs, scores, _ = aggregates
    rows = aggregate_rows(table, names, order)
    height = subfigure.get_figure(root=True).get_figheight()
    means_height = aggregates_height(len(rows)) - 2 * PANEL_HEIGHT
    intervals, profile, during, spare = subfigure.subplots(4, 1, height_ratios=(
        means_height, PANEL_HEIGHT, PANEL_HEIGHT, max(height - aggregates_height(len(rows)), 0.01)))
    spare.axis("off")
    y = np.arange(len(rows))
    for offset, (statistic, marker) in zip((-0.15, 0.15), (("iqm", "o"), ("mean", "s"))):
        point = rows[f"aggregate_{statistic}"].to_numpy()
        for i, r in enumerate(rows.itertuples()):
            intervals.errorbar(point[i], y[i] + offset, fmt=marker, markersize=3, elinewidth=0.8, color=colours[r.name],
                               xerr=[[point[i] - getattr(r, f"aggregate_{statistic}_ci_low")],
                                     [getattr(r, f"aggregate_{statistic}_ci_high") - point[i]]],
                               markerfacecolor=colours[r.name] if marker == "o" else "white")
    intervals.set_yticks(y, rows.name)
    intervals.invert_yaxis()
    intervals.axvline(0, color="grey", lw=0.5)
    intervals.axvline(1, color="grey", lw=0.5, ls=":")
    intervals.grid(axis="x", alpha=0.3, linewidth=0.4)
    intervals.set_title("IQM (filled) and mean (open), 95% CI", pad=2)
    intervals.set_xlabel("normalised score")
    taus = np.linspace(0, max(scores.normalised.max(), 1), PROFILE_TAUS)
    for r in rows.itertuples():
        g = scores[scores.variant == r.variant]
        point, low, high = stats.performance_profile(g.normalised, g.env, taus)
        profile.plot(taus, point, color=colours[r.name])
        profile.fill_between(taus, low, high, color=colours[r.name], alpha=0.15, linewidth=0)
    profile.axvline(1, color="grey", lw=0.5, ls=":")
    profile.grid(alpha=0.3, linewidth=0.4)
    profile.set_ylabel("share of runs > τ")
    profile.set_xlabel(f"τ, {AGGREGATE_SCALE.replace(' (', chr(10) + '(')}")
    profile.set_title(f"performance profiles over {len(envs)} tasks", pad=2)
    for variant, (share, point, low, high) in curves.items():
        during.plot(share, point, color=colours[names[variant]])
        during.fill_between(share, low, high, color=colours[names[variant]], alpha=0.15, linewidth=0)
    during.axhline(1, color="grey", lw=0.5, ls=":")
    during.grid(alpha=0.3, linewidth=0.4)
    during.set_xlim(0, 1)
    during.set_xlabel("share of each run's steps")
    during.set_ylabel("IQM, normalised")
    during.set_title("IQM over the tasks during training, 95% CI", pad=2)


PANEL_HEIGHT = 1.9  # inches: the profile and the IQM during training, beside the learning curves


def aggregates_height(variants):
    """Inches the aggregates need: the intervals (a row per variant) above the two panels."""
    return 0.25 * variants + 0.6 + 2 * PANEL_HEIGHT + 0.3


def seed_caveat(seeds, scope=""):
    """A caveat where some cell rests on a single seed (a partial report: no interval, rank or share means anything
    yet), else '': what an interval is with a few seeds is said once, in the report's protocol (INTERVALS)."""
    if seeds >= 2:
        return ""
    return (f"- How sure{f' ({scope})' if scope else ''}: some cells have a single seed so far; they have no interval, "
            "and the ranks and shares resampled from them say nothing yet. Read them as one sample.")


# What the report's intervals are, said once (its protocol)
INTERVALS = ("A cell (one setting on one task) is the mean of its seeds with its 95% Student-t interval, "
             "mean ± t·s/√n with s the sample SD; a difference of two cells has Welch's t-interval. The t-interval keeps "
             "its 95% coverage with few seeds if a cell's scores are roughly normal (a task whose runs fall into two "
             "groups, like HalfCheetah, is not). Aggregates over tasks (Table 1's means and IQMs) have rliable's "
             "stratified bootstrap interval; ranks, P(best) and ρ resample each cell's own seeds. A percentile "
             "bootstrap over n seeds sees only those seeds' spread (variance (n − 1)/n of s²/n; with 3 seeds its "
             "'95%' interval of one cell is exactly the range of the seeds, which holds the mean only 75% of the time), "
             "so read a rank interval or a share of 100% as what these seeds show, and an ordering as settled only where "
             "the intervals are disjoint. P(X > Y), the probability that a run of X ends above a run of Y on the same "
             "task, is rliable's (Agarwal et al. 2021): averaged over tasks, with a percentile interval that resamples "
             "each cell's seeds on its own. ± is a sample SD.")


# What P(X > Y) is, as each table of it says (improvement_table; ppo_objectives.improvement_objectives)
IMPROVEMENT_MEANS = "on the same task (P(X > Y), a tie counting half; 0.5: neither tends higher)"


def improvement_rows(scores, pairs, envs=None, level=0.95):
    """One row per pair (x, y) of variants with runs: the probability that a run of x ends above a run of y on the
    same task (stats.probability_of_improvement) over the envs (of `envs`, default every env) where both have two or
    more runs; with the envs, the fewest and most seeds of a cell, and the lowest and highest env's own value."""
    rows = []
    for x, y in pairs:
        cells = {v: {env: g.score.to_numpy(float) for env, g in scores[scores.variant == v].groupby("env", sort=False)}
                 for v in (x, y)}
        shared = [e for e in cells[x] if e in cells[y] and (envs is None or e in envs)
                  and min(len(cells[x][e]), len(cells[y][e])) >= 2]
        if not shared:
            continue
        xs, ys = [cells[x][e] for e in shared], [cells[y][e] for e in shared]
        point, low, high = stats.probability_of_improvement(xs, ys, level=level)
        per_env = [stats.improvement(a, b) for a, b in zip(xs, ys)]
        seeds = [len(c) for c in xs + ys]
        rows.append(dict(x=x, y=y, envs=shared, p=point, p_low=low, p_high=high, env_min=min(per_env),
                         env_max=max(per_env), seeds_min=min(seeds), seeds_max=max(seeds)))
    return pd.DataFrame(rows)


def paired_rows(scores, pairs, level=0.95):
    """One row per pair (x, y) of variants and env where both have two or more seeds in common: the per-seed
    differences' mean and paired t-interval (stats.paired_interval), Welch's interval on the same seeds' runs taken
    as independent, and how many seeds."""
    rows = []
    for x, y in pairs:
        wide = scores[scores.variant.isin([x, y])].pivot_table(index=["env", "seed"], columns="variant", values="score")
        if x not in wide or y not in wide:
            continue
        for env, g in wide.dropna(subset=[x, y]).groupby("env", sort=False):
            if len(g) < 2:
                continue
            mean, low, high = stats.paired_interval(g[x], g[y], level)
            _, w_low, w_high = stats.welch_interval(g[x], g[y], level)
            rows.append(dict(x=x, y=y, env=env, seeds=len(g), mean=mean, low=low, high=high, welch_low=w_low,
                             welch_high=w_high))
    return pd.DataFrame(rows, columns=["x", "y", "env", "seeds", "mean", "low", "high", "welch_low", "welch_high"])


def paired_text(scores, planned, pairs, name, intro):
    """Markdown: paired_rows of the planned runs as a table (a row per pair, '(X) − (Y)', a column per env), each cell
    the mean per-seed difference and its 95% paired interval, marked where it and Welch's disagree about 0, then
    how often each excludes 0 and how much narrower pairing makes the interval. `intro`: why these runs pair (the
    caller's to say). '' where no pair shares two seeds on some env."""
    rows = paired_rows(stats.planned_rows(scores, planned), pairs)
    if rows.empty:
        return ""
    paired_sure = (rows.low > 0) | (rows.high < 0)
    welch_sure = (rows.welch_low > 0) | (rows.welch_high < 0)
    mark = np.where(paired_sure & ~welch_sure, " *", np.where(welch_sure & ~paired_sure, " °", ""))
    cells = [f"{r.mean:+.1f} [{r.low:+.1f}, {r.high:+.1f}]{m}" for r, m in zip(rows.itertuples(), mark)]
    # parenthesised: a variant's own name may hold a minus ("reward-to-go − V(s)")
    rows = rows.assign(cell=cells, pair=[f"({name(x)}) − ({name(y)})" for x, y in zip(rows.x, rows.y)])
    table = rows.pivot(index="pair", columns="env", values="cell")
    table = table.reindex(index=list(dict.fromkeys(rows.pair)), columns=sorted(rows.env.unique())).fillna("")
    widths = (rows.high - rows.low) / (rows.welch_high - rows.welch_low)
    widths = widths[(rows.welch_high - rows.welch_low) > 0]
    seeds = sorted(rows.seeds.unique())
    lines = [f"- The paired interval excludes 0 in {paired_sure.sum()} of {len(rows)} cells, Welch's in "
             f"{welch_sure.sum()}; * marks a cell only the paired interval decides, ° one only Welch's decides."]
    if len(widths):
        lines.append(f"- The paired interval's width is {widths.median():.2f} of Welch's at the median over the cells "
                     f"(range {widths.min():.2f}–{widths.max():.2f}): below 1 where a seed moves both settings "
                     "alike.")
    return (f"{intro} Per task, the mean of the per-seed differences X − Y over the "
            + (f"{seeds[0]} seeds" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]} seeds") + " both have, with its "
            "95% paired t-interval:\n\n" + table.rename_axis(None, axis=1).rename_axis("X − Y").to_markdown()
            + "\n\n" + "\n".join(lines))


def improvement_text(row, digits=2):
    """'0.62 [0.51, 0.73]' for a row of improvement_rows."""
    return f"{row.p:.{digits}f} [{row.p_low:.{digits}f}, {row.p_high:.{digits}f}]"


def improvement_table(ctx, pairs, name, envs=None):
    """Markdown: improvement_rows of the experiment's runs (a report's context) as a table, each variant by
    name(variant), with which way each interval points; '' when no pair has runs on a shared env."""
    planned_seeds = len({r.seed for r in ctx.planned})
    rows = improvement_rows(stats.planned_rows(ctx.scores, ctx.planned), pairs, envs)
    if not len(rows):
        return ""
    every_env = len(set(map(tuple, rows.envs))) == 1  # every pair over the same tasks: name them once
    table = pd.DataFrame({
        "X over Y": [f"{name(r.x)} over {name(r.y)}" for r in rows.itertuples()],
        "P(X > Y) [95% CI]": [improvement_text(r) for r in rows.itertuples()],
        "lowest / highest task": [f"{r.env_min:.2f} / {r.env_max:.2f}" for r in rows.itertuples()],
        "reads": [f"{name(r.x)} higher" if r.p_low > 0.5 else f"{name(r.y)} higher" if r.p_high < 0.5 else
                  "not told apart" for r in rows.itertuples()]})
    if not every_env:
        table.insert(1, "tasks", [", ".join(r.envs) for r in rows.itertuples()])
    if rows.seeds_min.min() < planned_seeds:
        table.insert(1, "seeds a cell", [f"{r.seeds_min}-{r.seeds_max} of {planned_seeds}" if r.seeds_min < r.seeds_max
                                         else f"{r.seeds_min} of {planned_seeds}" for r in rows.itertuples()])
    tasks = rows.envs.iloc[0]
    return ((f"Over {len(tasks)} tasks ({', '.join(tasks)}), " if every_env else "Over the tasks where both have runs, ")
            + f"the chance that a run of X ends above a run of Y {IMPROVEMENT_MEANS}. It compares runs by their order "
            "alone, so each task weighs the same whatever its scale or spread:\n\n"
            + table.to_markdown(index=False))


def reading_curves(table, higher_than=None):
    """Each env's variants from best to worst mean: '>' where the two neighbours' 95% intervals are
    disjoint, '≈' where they overlap (the seeds do not separate them), '=' where the means print the same."""
    lines = []
    one_seed = set(table[table.seeds < 2].index) if "seeds" in table else set()  # no interval yet (a partial grid)
    for env, g in table.groupby("env", sort=False):
        lines.append(f"- {env}: {ordering(g)}.")
        if higher_than:
            low_name, high_names = higher_than
            low = g[g.variant == low_name]
            for name in high_names:
                high = g[g.variant == name]
                if len(low) and len(high):
                    h, lo = high.iloc[0], low.iloc[0]
                    verdict = ("higher, with non-overlapping 95% intervals" if h.ci_low > lo.ci_high else
                               "higher, but the 95% intervals overlap" if h["mean"] > lo["mean"] else "not higher")
                    lines.append(f"  - {name} vs {low_name}: {verdict}.")
    lines.append("- '>' : the neighbours' 95% intervals are disjoint; '≈' : they overlap, so these seeds do not "
                 "order the two; '=' : equal means." + (" A result from 1 seed has no interval yet, so it is only "
                                                       "ever '≈' its neighbours." if one_seed else ""))
    if "seeds" in table and (caveat := seed_caveat(int(table.seeds.min()))):
        lines.append(caveat)
    return "\n".join(lines)


def seed_range_table(frame, column, row, rows, columns, seeds, digits, missing, noise=None):
    """A markdown table of `column` per (row, env) cell: mean over seeds (min–max), ", noise <mean of the
    noise column>" if given, and "(k of n seeds)" where seeds are missing; `missing` fills an empty cell."""
    cells = frame.groupby([row, "env"]).agg(mean=(column, "mean"), min=(column, "min"), max=(column, "max"),
                                              size=(column, "size"), noise=(noise or column, "mean"))
    text = cells.apply(lambda c: f"{c['mean']:{digits}} ({c['min']:{digits}}–{c['max']:{digits}})"
                       + (f", noise {c['noise']:{digits}}" if noise else "")
                       + (f" ({c['size']:.0f} of {seeds} seeds)" if c["size"] < seeds else ""), axis=1)
    return (text.unstack("env").reindex(index=rows, columns=columns).astype(object).fillna(missing)
            .to_markdown(disable_numparse=True))


# How far each update moves a PPO policy and how broad it ends: column → (title, start, statistic, digits)
UPDATE_MEASURES = {"approx_kl": ("KL from the old to the new policy per update (`approx_kl`), median over the second "
                                 "half of each run", 0.5, "median", ".2g"),
                   "sigma": ("σ of the policy (from its entropy, as in the algorithm comparison), mean over the last "
                             "10% of each run", 0.9, "mean", ".2f")}


def update_measures(progress, planned):
    """Per planned run (grid.Run tuples) with a Gaussian policy, each of UPDATE_MEASURES: {column: frame keyed by
    variant, env, seed}; {} when there is no such run. σ is stats.gaussian_sigma of the logged entropy."""
    dims = setups.action_dims(sorted({r.env for r in planned}))
    progress = stats.planned_rows(progress, planned)
    progress = progress[progress.env.map(dims).notna()]
    if progress.empty:
        return {}
    progress = progress.assign(sigma=stats.gaussian_sigma(progress.entropy, progress.env.map(dims).astype(float)))
    return {column: stats.late_per_run(progress, column, start, statistic)
            for column, (_, start, statistic, _) in UPDATE_MEASURES.items()}


LEARNED = 0.25  # a run learned once it got this far from the random policy towards the task's best final score


def collapsed_runs(progress, scores, random_means, planned):
    """The planned runs that learned and then lost it. A run learned if the best its last-100-episode mean
    (`return_last100` in progress.csv, over the iterations logged) reached is at least LEARNED of the way from the
    random policy's mean return to the best final score of any run in `scores` on the task; it collapsed if its
    final score (the same statistic at the end) ends nearer random than that best. Per such run (variant, env,
    seed): best and the step it was first reached; where the statistic last crossed below the midpoint of random
    and best; final; and, where logged, the largest KL of one update and the median KL over the run's second half
    (UPDATE_MEASURES); for a Gaussian policy, its σ at the end (UPDATE_MEASURES) and the median σ of the cell's
    runs that did not collapse. Empty when no run collapsed."""
    progress = stats.planned_rows(progress, planned).sort_values("global_step")
    final = scores.set_index(["variant", "env", "seed"]).score
    top = scores.groupby("env").score.max()
    rows = []
    for (variant, env, seed), run in progress.groupby(["variant", "env", "seed"], sort=False):
        if (variant, env, seed) not in final.index or env not in random_means:
            continue
        best, end, random = run.return_last100.max(), final[(variant, env, seed)], random_means[env]
        middle = (best + random) / 2
        # a run that hardly rose above random (VPG on Ant, say, drifting around it) has nothing to lose
        if not (best - random >= LEARNED * (top[env] - random) > 0 and end < middle):
            continue
        after = run.global_step[run.global_step > run.global_step[run.return_last100 >= middle].iloc[-1]]
        row = dict(variant=variant, env=env, seed=seed, best=best, random=random, middle=middle, final=end,
                   best_step=run.global_step[run.return_last100 == best].iloc[0],
                   fell_step=after.iloc[0] if len(after) else run.global_step.iloc[-1])
        kl = run.dropna(subset=["approx_kl"]) if "approx_kl" in run else run.iloc[:0]
        if len(kl):
            late = stats.late_per_run(kl, "approx_kl", UPDATE_MEASURES["approx_kl"][1])
            row.update(max_kl=kl.approx_kl.max(), max_kl_step=kl.global_step[kl.approx_kl.idxmax()],
                       late_kl=late.approx_kl.iloc[0])
        rows.append(row)
    sigma = update_measures(progress, planned).get("sigma") if rows and "entropy" in progress else None
    if sigma is not None:  # a collapse from a narrow policy looks different from one that stayed broad
        sigma = sigma.set_index(["variant", "env", "seed"]).sigma
        lost = {(r["variant"], r["env"], r["seed"]) for r in rows}
        held = sigma[[key not in lost for key in sigma.index]].groupby(["variant", "env"]).median()
        for row in rows:
            key = (row["variant"], row["env"], row["seed"])
            row.update(sigma=sigma.get(key, np.nan), held_sigma=held.get(key[:2], np.nan))
    at = {tuple(r): i for i, r in enumerate(planned)}
    rows.sort(key=lambda row: at[(row["variant"], row["env"], row["seed"])])  # in the planned runs' order
    return pd.DataFrame(rows, columns=["variant", "env", "seed", "best", "best_step", "fell_step", "random", "middle",
                                       "final", "max_kl", "max_kl_step", "late_kl", "sigma", "held_sigma"])


def solved_runs(progress, scores, planned):
    """Per planned run on a task for which gymnasium gives a `reward_threshold` (the score at which it counts as
    solved: CartPole-v1 475, Acrobot-v1 −100; none for Pendulum-v1 and Walker2d-v5): whether its last-100-episode
    mean (`return_last100`) reached the threshold at some update, the first step it did, and whether its final
    score is at or above it. Columns variant, env, seed, threshold, reached, first_step, ends_solved; one row per
    such run with a final score, in the planned runs' order."""
    thresholds = {env: gym.spec(env).reward_threshold for env in dict.fromkeys(r.env for r in planned)}
    planned = [r for r in planned if thresholds[r.env] is not None]
    columns = ["variant", "env", "seed", "threshold", "reached", "first_step", "ends_solved"]
    if not planned:
        return pd.DataFrame(columns=columns)
    progress = stats.planned_rows(progress, planned).sort_values("global_step", kind="stable")
    by_run = dict(list(progress.groupby(["variant", "env", "seed"])))
    final = scores.set_index(["variant", "env", "seed"]).score
    rows = []
    for variant, env, seed in planned:  # in the planned runs' order
        if (variant, env, seed) not in final.index or (variant, env, seed) not in by_run:
            continue
        run = by_run[(variant, env, seed)]
        above = run.global_step[run.return_last100 >= thresholds[env]]
        rows.append(dict(variant=variant, env=env, seed=seed, threshold=thresholds[env], reached=len(above) > 0,
                         first_step=above.iloc[0] if len(above) else np.nan,
                         ends_solved=final[(variant, env, seed)] >= thresholds[env]))
    return pd.DataFrame(rows, columns=columns)


def solved_text(progress, scores, planned, row_of):
    """solved_runs as a reading: per row (`row_of` a variant) and task where some run reached the threshold, how
    many runs reached it, the median step they first did, and how many end there. '' where no run reached it."""
    solved = solved_runs(progress, scores, planned)
    envs = [env for env, g in solved.groupby("env", sort=False) if g.reached.any()]
    if not envs:
        return ""
    solved = solved[solved.env.isin(envs)].assign(row=lambda f: f.variant.map(row_of))

    def cell(g):
        reached = g[g.reached]
        return (f"{len(reached)} of {len(g)}" + (f" (step {reached.first_step.median():,.0f}), {g.ends_solved.sum()} "
                                                 "end there" if len(reached) else ""))

    wide = solved.groupby(["row", "env"], sort=False).apply(cell, include_groups=False).unstack("env")
    wide = wide.reindex(index=list(dict.fromkeys(solved.row)), columns=envs).fillna("")
    thresholds = solved.groupby("env", sort=False).threshold.first()
    return ("**Runs that reached the solved score.** gymnasium's `reward_threshold` for a task is the score at which it "
            "counts as solved (" + ", ".join(f"{env} {t:g}" for env, t in thresholds.items()) + "). Per cell: the runs "
            "whose last-100-episode mean reached it at some update (the median step at which they first did), and "
            "how many of them end at or above it (final score):\n\n"
            + wide.rename_axis("runs that reached the solved score").to_markdown())


def solved_reading(ctx, row_of):
    """solved_text of an experiment's planned runs (ctx as the report passes it to a reading), after a blank line;
    '' where there is nothing to say."""
    text = solved_text(ctx.progress, ctx.scores, ctx.planned, row_of) if ctx.scores is not None else ""
    return f"\n\n{text}" if text else ""


def random_text(scale_dir, envs):
    """The uniform-random policy's mean return per env, as a reading's line: the yardstick for 'below random'."""
    episodes = load_random(scale_dir, envs)
    per_env = episodes[episodes.env.isin(envs)].groupby("env").ep_return.agg(["mean", "size"])
    low, high = per_env["size"].min(), per_env["size"].max()
    n = f"{low}" if low == high else f"{low}-{high}"
    return (f"**The random policy.** Mean return of the uniform-random policy over {n} episodes per task "
            "(`experiments/random_policy.py`; the 0 of every normalised score): "
            + ", ".join(f"{env} {per_env.loc[env, 'mean']:.1f}" for env in sorted(envs)) + ".")


def in_order(values, order):
    """The distinct values, those named in `order` first and in its order, then the rest as they first come."""
    return [v for v in order if v in set(values)] + [v for v in dict.fromkeys(values) if v not in order]


COLLAPSES_LISTED = 5  # more collapsed runs than this are counted per cell, and listed in a collapsed block


def collapse_text(collapsed, planned, row_of=None, column_of=lambda variant: "runs", order=()):
    """collapsed_runs as a reading: how many of the planned runs collapsed, then one line per such run. With
    `row_of` (and `column_of`, `order`, as for two_groups_text) and more than COLLAPSES_LISTED of them, first
    a table of how many of each cell's runs collapsed, and the lines in a collapsed block."""
    head = (f"**Runs that collapsed.** A run collapsed if it learned (the best its last-100-episode mean reached "
            f"during training is at least {LEARNED:.0%} of the way from the random policy's mean return to the best "
            "final score of any run on the task) and its final score ends nearer random than that best: "
            f"{len(collapsed)} of {len(planned)} planned runs" + ("." if collapsed.empty else ":"))
    lines = []
    for r in collapsed.itertuples():
        kl = (f"; its largest KL of one update {r.max_kl:{',.0f' if r.max_kl >= 100 else '.2g'}} at step "
              f"{r.max_kl_step:,.0f}, against a median of {r.late_kl:.2g} over the second half"
              if pd.notna(r.max_kl) else "")
        sigma = (f"; σ at the end {r.sigma:.2g}" + (f", against a median of {r.held_sigma:.2g} over the runs of its "
                                                   "cell that did not collapse" if pd.notna(r.held_sigma) else "")
                 if pd.notna(r.sigma) else "")
        lines.append(f"- {r.variant} on {r.env}, seed {r.seed}: best {r.best:.1f} (from step {r.best_step:,.0f}), "
                     f"below {r.middle:.1f}, the midpoint between it and the random policy's "
                     f"{r.random:.1f}, from step {r.fell_step:,.0f}, final {r.final:.1f}{kl}{sigma}.")
    if not lines:
        return head
    if row_of is None or len(lines) <= COLLAPSES_LISTED:
        return "\n".join([head, "", *lines])

    def per_cell(frame):  # how many of the frame's runs each (row, column) cell holds
        return frame.variant.map(row_of).to_frame("row").assign(column=frame.variant.map(column_of)).value_counts()

    runs = per_cell(pd.DataFrame([tuple(r) for r in planned], columns=["variant", "env", "seed"]))
    lost = per_cell(collapsed).reindex(runs.index, fill_value=0)
    columns = in_order(runs.index.get_level_values("column"), order)
    rows = list(dict.fromkeys(row_of(r.variant) for r in planned))  # a row with none says so: 0 of n
    wide = pd.DataFrame({c: [f"{lost[(r, c)]} of {runs[(r, c)]}" if (r, c) in runs.index else "" for r in rows]
                         for c in columns}, index=pd.Index(rows, name="runs that collapsed"))
    return "\n".join([head, "", wide.to_markdown(), "", "<details><summary>Each run that collapsed</summary>", "",
                      *lines, "", "</details>"])


def collapse_reading(ctx, row_of, column_of=lambda variant: "runs", order=()):
    """collapse_text of an experiment's planned runs (ctx as the report passes it to a reading)."""
    if ctx.scores is None:
        return ""
    random = random_score(ctx.scale_dir, sorted({r.env for r in ctx.planned}))
    return "\n\n" + collapse_text(collapsed_runs(ctx.progress, ctx.scores, random, ctx.planned), ctx.planned,
                                   row_of, column_of, order)


def save_figure(fig, stem, **kwargs):
    """stem.png and stem.pdf, written unpublished (publish() puts them in place); close the figure and return
    the two paths. The PDF gets no creation date, so the same runs give the same bytes (the PNG has none by
    default)."""
    png, pdf = stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.pdf"
    fig.savefig(unpublished(png), format="png", dpi=130, **kwargs)
    fig.savefig(unpublished(pdf), format="pdf", dpi=130, metadata={"CreationDate": None}, **kwargs)
    plt.close(fig)
    return png, pdf


def unpublished(path):
    """Where an output is written before publish() moves it into place."""
    return path.with_name(path.name + ".partial")


def publish(*paths):
    """Move each output's unpublished file into place, once all of them are written: a crashed or killed analysis
    leaves .partial files (ignored by git) beside its old outputs, never a half-written file that looks complete.
    Snakemake deletes a job's outputs before it runs it and, with keep-incomplete (profiles/), takes whatever
    a failed job left for finished, so a failed analysis job leaves its outputs missing, and it runs again."""
    for path in paths:
        os.replace(unpublished(path), path)


def output_dir(scale_dir, subset=None):
    """Where an analysis writes its tables, figures and report: results/<scale>/, or results/<scale>/<subset>/."""
    return pathlib.Path(scale_dir) / subset if subset else pathlib.Path(scale_dir)


def scoped(config, scale, subset=None):
    """The config as the analysis sees it: the whole scale, or one of its subsets (grid.subset)."""
    return grid.subset(config, scale, subset) if subset else config


def add_grid_flags(parser):
    parser.add_argument("--subset", help="analyse only the runs of this subset of the scale (scales.<scale>.subsets "
                                         "in the config) and write under results/<scale>/<subset>/")
    parser.add_argument("--partial", action="store_true",
                        help="analyse the runs there are: missing runs are listed (default: they stop the analysis)")
    parser.add_argument("--allow-stale", action="store_true",
                        help="accept runs made with other arguments or by other code, and flag them "
                             "(default: they stop the analysis)")


def label(config, variant):
    """How figures and summary tables name a variant: its `label` in the config, else its name."""
    return config["variants"].get(variant, {}).get("label", variant) if config else variant


def ordering(g, config=None, digits=1):
    """One env's variants (rows of a per_env_table) from best to worst mean, '>' where two neighbours' 95%
    intervals are disjoint, '≈' where they overlap, '=' where the means print the same (to `digits` decimals);
    with `config`, by label."""
    one_seed = set(g[g.seeds < 2].index) if "seeds" in g else set()

    def named(r):
        name = label(config, r.variant) if config else r.variant
        return f"{name} ({r.mean:.{digits}f}{', 1 seed' if r.Index in one_seed else ''})"

    order = list(g.sort_values("mean", ascending=False).itertuples())
    ranked = named(order[0])
    for above, r in zip(order, order[1:]):
        sign = ("=" if f"{r.mean:.{digits}f}" == f"{above.mean:.{digits}f}" else
                ">" if r.ci_high < above.ci_low and not {r.Index, above.Index} & one_seed else "≈")
        ranked += f" {sign} {named(r)}"
    return ranked


def seeds_text(ctx):
    """How many seeds a cell of the experiment has: 'N seeds', or in a partial grid 'k-m of N seeds so far'."""
    planned = len({r.seed for r in ctx.planned})
    cells = {(r.variant, r.env) for r in ctx.planned}
    runs = ctx.runs[[(v, e) in cells for v, e in zip(ctx.runs.variant, ctx.runs.env)]] if len(ctx.runs) else ctx.runs
    have = runs.groupby(["variant", "env"]).size() if len(runs) else pd.Series(dtype=int)
    low, high = (int(have.min()), int(have.max())) if len(have) == len(cells) else (0, int(have.max()) if len(have) else 0)
    if low == high == planned:
        return f"{planned} seed{'s' * (planned != 1)}"
    return f"{low}-{high} of {planned} seeds so far" if low != high else f"{low} of {planned} seeds so far"


def two_groups_text(scores, planned, row_of, column_of=lambda variant: "runs", order=()):
    """Per task of the planned runs, in their order: whether the experiment's runs there form two groups
    (stats.two_groups, over all its runs on the task) and, if the seeds of some cell land in both, a paragraph
    and a table of how many of each cell's runs end in the upper group, with the share's exact 95% interval
    (groups that only tell cells apart are no news beyond the means). Every task is tested, not only the one
    where the 3-seed grid showed groups (HalfCheetah): with more seeds, others may. `row_of` / `column_of` give
    a variant's row and column (e.g. its Table 1 setting and regime), `order` the columns' order. '' where there
    is no run or one group."""
    if scores is None:
        return ""
    parts = []
    for env in dict.fromkeys(r.env for r in planned):
        here = stats.planned_rows(scores[scores.env == env], planned)
        if not (groups := stats.two_groups(here.score)):
            continue
        low, high, split, separation, evidence = groups
        here = here.assign(upper=here.score >= split, row=here.variant.map(row_of), column=here.variant.map(column_of))
        counts = here.groupby(["row", "column"]).upper.agg(["sum", "size"])
        mixed = ((counts["sum"] > 0) & (counts["sum"] < counts["size"])).sum()
        if not mixed:  # the groups only tell the rows apart (one learns, another does not): the table says that
            continue
        columns = in_order(here.column, order)
        rows = list(dict.fromkeys(row_of(r.variant) for r in planned if r.env == env))

        def cell(row, column):
            if (row, column) not in counts.index:
                return ""
            k, n = counts.loc[(row, column)]
            ci_low, ci_high = stats.share_interval(k, n)
            return f"{k} of {n} [{ci_low:.0%}, {ci_high:.0%}]"

        wide = pd.DataFrame({c: [cell(r, c) for r in rows] for c in columns},
                            index=pd.Index(rows, name="runs in the upper group [95% CI]"))
        total = ", ".join(f"{c + ' ' if len(columns) > 1 else ''}{counts.xs(c, level=1)['sum'].sum()} of "
                          f"{counts.xs(c, level=1)['size'].sum()}" for c in columns)
        parts += [f"**{env}'s runs end in two groups.** Its {len(here)} runs of this experiment: a mixture of two "
                  f"normals fits their final scores far better than one (BIC lower by {evidence:.0f}), with means "
                  f"{low:.0f} and {high:.0f}, well apart (Ashman's D {separation:.1f}). Split where a run is as likely "
                  f"to be in either, at {split:.0f}, the upper group holds {total} runs. In {mixed} of the {len(counts)} "
                  "cells below the seeds of one setting land in both groups, so a mean on this task depends much on "
                  "how many of its seeds reached the upper one; per cell, with the exact (Clopper–Pearson) 95% "
                  "interval of its share:", "", wide[(wide != "").any(axis=1)].to_markdown(), ""]
        parts += seed_group_lines(here, columns)
    return "\n\n" + "\n".join(parts).rstrip() if parts else ""


def seed_group_lines(runs, columns):
    """Whether the seed helps decide a run's group (stats.seed_group_test), per column of two_groups_text over
    its cells whose seeds land in both groups, where there are 2 or more such cells (with one the test cannot
    tell); [] where no column has. `runs`: the task's runs with their row, column, seed and upper."""
    lines = []
    for column in columns:
        mine = runs[runs.column == column]
        tested = stats.seed_group_test(mine.row, mine.seed, mine.upper)
        if tested is None or tested[1] < 2:
            continue
        per_seed, cells, p = tested
        lines.append(f"- {column + ': ' if len(columns) > 1 else ''}{cells} cells have runs in both groups; their "
                     f"upper-group runs per seed (seeds {', '.join(map(str, per_seed.index))}): "
                     f"{', '.join(map(str, per_seed))}. With each cell's groups shuffled among its seeds "
                     f"({stats.BOOTSTRAP_REPS:,} times), the seeds come out at least this uneven in a share "
                     f"p = {p:.2g} of the shuffles.")
    if not lines:
        return []
    return ["**Does the seed decide the group?** A seed fixes a run's initial network and its environment's "
            "random streams; if those decide the group, the same seeds go up in every cell, and cells compared "
            "on the same seeds are not independent draws on this task.", "", *lines, ""]
