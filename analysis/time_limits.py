"""The time_limits experiment: PPO-clip with the time limit bootstrapped or terminal, under both regimes (a 2 × 2
per task), the differences of its cells, and the update sizes and policy widths they end with."""
import pandas as pd

from analysis import stats
from analysis.common import (MISSING, UPDATE_MEASURES, collapse_reading, learning_curves, per_env_table,
                             reading_curves, seed_range_table, seeds_text, two_groups_text, update_measures)
from experiments import grid


OWN_TIME_LIMITS = "each regime's own time limit"  # ppo1 − ppo2 as the regimes run: Table 1's gap


def time_limit_contrasts(cells):
    """The differences the time_limits table reports, as (regime label, time-limit label, variant a, variant b)
    for mean(a) − mean(b): within each regime, terminal − bootstrapped; then ppo1 − ppo2 as the two regimes run
    (ppo1 terminal, ppo2 bootstrapped: Table 1's gap), and with the time limit handled alike."""
    old, new = dict.fromkeys(regime for regime, _ in cells)  # ppo2, ppo1
    boot, term = grid.TIME_LIMITS
    within = [(regime, f"{term} − {boot}", cells[(regime, term)], cells[(regime, boot)]) for regime in (old, new)]
    across = [(f"{new} − {old}", OWN_TIME_LIMITS, cells[(new, term)], cells[(old, boot)])] + [
        (f"{new} − {old}", f"both {limit}", cells[(new, limit)], cells[(old, limit)]) for limit in grid.TIME_LIMITS]
    return within + across


def table_time_limits(data):
    """Regime × time-limit handling for PPO-clip (grid.time_limit_cells): time_limit_rows and learning curves."""
    cells = grid.time_limit_cells(data.config, data.scale)
    names = {variant: f"{regime}, time limit {limit}" for (regime, limit), variant in cells.items()}
    return *time_limit_rows(data, cells), learning_curves(data, names)


def time_limit_rows(data, cells):
    """Per env: each cell's final score (mean over seeds, 95% t-interval), then the differences of
    time_limit_contrasts, each with Welch's 95% t-interval (stats.welch_interval: the two cells' runs are
    independent). Returns the table (a row per cell and env, kind 'score', then per difference
    variant − minus and env, kind 'difference') and its wide form."""
    scores = per_env_table(data).set_index(["variant", "env"])
    runs = {key: g.score for key, g in data.scores.groupby(["variant", "env"])}
    rows = []
    for (regime, limit), variant in cells.items():
        for env in data.envs:
            row = scores.loc[(variant, env)].to_dict() if (variant, env) in scores.index else {"text": MISSING}
            rows.append(dict(kind="score", label=f"{regime}, time limit {limit} ({variant})", regime=regime,
                             time_limit=limit, variant=variant, env=env, **row))
    for regime, limit, a, b in time_limit_contrasts(cells):
        for env in data.envs:
            row = dict(kind="difference", label=f"{regime}: {limit}", regime=regime, time_limit=limit,
                       variant=a, minus=b, env=env, text=MISSING)
            if (a, env) in runs and (b, env) in runs:
                point, low, high = stats.welch_interval(runs[(a, env)], runs[(b, env)])
                seeds = int(min(scores.loc[(a, env), "seeds"], scores.loc[(b, env), "seeds"]))
                row.update(seeds=seeds, mean=point, ci_low=low, ci_high=high,
                           text=f"{point:+.1f} [{low:+.1f}, {high:+.1f}]" + data.seeds_note(seeds))
            rows.append(row)
    table = pd.DataFrame(rows)
    wide = table.pivot(index="label", columns="env", values="text").reindex(index=table.label.unique(),
                                                                            columns=data.envs)
    wide.index.name = "final score; then differences of two means"
    return table, wide


def reading_time_limits(table, progress, planned):
    """The orderings per env; each difference of the table and whether its interval excludes 0; where the seeds see
    a gap between the regimes as they run, how much of it is left once both bootstrap the time limit; then each
    cell's update size and σ at the end (UPDATE_MEASURES)."""
    cells = table[table.kind == "score"].dropna(subset=["mean"]).reset_index(drop=True)
    diffs = table[table.kind == "difference"].dropna(subset=["mean"])
    lines = []
    for label, g in diffs.groupby("label", sort=False):
        lines.append(f"- {label}: " + "; ".join(
            f"{r.env} {r.text} ({'below 0' if r.ci_high < 0 else 'above 0' if r.ci_low > 0 else 'includes 0'})"
            for r in g.itertuples()) + ".")
    own = diffs[diffs.time_limit == OWN_TIME_LIMITS].set_index("env")
    alike = diffs[diffs.time_limit == f"both {grid.TIME_LIMITS[0]}"].set_index("env")
    for env in own.index.intersection(alike.index):
        gap, left = own.loc[env], alike.loc[env]
        if gap.ci_high < 0 or gap.ci_low > 0:  # a gap these seeds see
            share = 1 - left["mean"] / gap["mean"]
            lines.append(f"- {env}: {gap.regime} is {gap['mean']:+.1f} as the regimes run and {left['mean']:+.1f} with "
                         f"the time limit {grid.TIME_LIMITS[0]} in both (an interval that "
                         + ("includes" if left.ci_low <= 0 <= left.ci_high else "excludes") + " 0): "
                         + (f"the time limit accounts for {share:.0%} of the gap (of the means)." if 0 <= share <= 1
                            else "the gap of the means does not narrow with both bootstrapping." if share < 0
                            else "the gap of the means turns the other way with both bootstrapping."))
    parts = [reading_curves(cells)]
    if lines:
        parts.append("**What the time limit changes.** Each difference of two cells' means, with its 95% interval "
                     "(the two cells' seeds resampled independently):\n\n" + "\n".join(lines))
    per_run = update_measures(progress, planned)
    if per_run:
        labels = table[table.kind == "score"].drop_duplicates("variant").set_index("variant").label
        seeds = len({r.seed for r in planned})
        envs = sorted({r.env for r in planned})
        tables = []
        for column, (title, _, _, digits) in UPDATE_MEASURES.items():
            row = "regime, time limit (variant)"
            frame = per_run[column].assign(**{row: per_run[column].variant.map(labels)}).dropna(subset=[row])
            tables += [f"{title}; mean over seeds (min–max over seeds):", "",
                       seed_range_table(frame, column, row, list(labels), envs, seeds, digits, "missing run"), ""]
        parts.append("**How far each update moves the policy, measured.**\n\n" + "\n".join(tables).strip())
    return "\n\n".join(parts)


table = table_time_limits


def reading(table, ctx):
    cell_of = {variant: cell for cell, variant in grid.time_limit_cells(ctx.config, ctx.scale).items()}
    cells = (lambda v: cell_of[v][0], lambda v: f"time limit {cell_of[v][1]}",
             [f"time limit {limit}" for limit in grid.TIME_LIMITS])  # a regime's row, a time limit's column
    return (reading_time_limits(table, ctx.progress, ctx.planned) + collapse_reading(ctx, *cells)
            + two_groups_text(ctx.scores, ctx.planned, *cells))


def summary(table, ctx):
    """Per task, ppo1 − ppo2 as the regimes run and with the time limit bootstrapped in both."""
    diffs = table[table.kind == "difference"].dropna(subset=["mean"])
    own = diffs[diffs.time_limit == OWN_TIME_LIMITS].set_index("env")
    alike = diffs[diffs.time_limit == f"both {grid.TIME_LIMITS[0]}"].set_index("env")
    parts = [f"{env} {own.loc[env, 'text']} as they run, {alike.loc[env, 'text']} with both bootstrapping"
             for env in own.index.intersection(alike.index)]
    return (f"The time limit in Table 1's regime gap (PPO-clip ε=0.2, {seeds_text(ctx)}): ppo1 − ppo2 final score, "
            "95% Welch interval: " + "; ".join(parts) + ".") if parts else ""


def cite(table, ctx):
    diffs = table[table.kind == "difference"]
    wide = diffs.pivot(index="label", columns="env", values="text").reindex(index=diffs.label.unique())
    wide.index.name = "difference of final scores [95% Welch interval]"
    return wide.fillna(MISSING).to_markdown()


def caption(ctx):
    return (f"Learning curves of PPO-clip ε=0.2 under each regime with the time limit bootstrapped or terminal: "
            f"training episode return, mean over {seeds_text(ctx)} with the 95% t-interval band; one panel per task.")
