"""The baselines experiment: VPG's four policy-gradient weights (total return, reward-to-go, reward-to-go minus
V(s), GAE(λ)), their learning curves, the gradient noise each leaves, and the noise at one fixed policy."""
import numpy as np
import pandas as pd

from analysis import setups, stats
from analysis.common import (aggregate_heading, aggregate_ordering, aggregate_rows, aggregate_summary, aggregate_text,
                             collapse_reading, improvement_table, label, ordering, reading_curves, seed_range_table,
                             paired_text, random_text, seeds_text, solved_reading, table_curves, two_groups_text)
from experiments import grid

table = table_curves



def late_diagnostics(progress, planned):
    """Three diagnostics of how much noise a policy-gradient weight leaves, per variant and env of the planned runs
    (grid.Run tuples): the batch gradient's norm and how far one step moves the policy (KL, both medians over the
    second half of each run) and V's explained variance (mean over the last 10%; only the weights that fit V log
    it). Cells: mean over seeds (min–max)."""
    variants = list(dict.fromkeys(r.variant for r in planned))
    envs = sorted({r.env for r in planned})
    seeds = len({r.seed for r in planned})
    progress = stats.planned_rows(progress, planned)
    parts = []
    for title, column, start, statistic, digits in [
            ("Norm of the batch gradient (the policy's one gradient step per batch), median over the second "
             "half of each run", "grad_norm", 0.5, "median", "#.3g"),
            ("KL from the old to the new policy of that step (`approx_kl`), median over the second half of each run",
             "approx_kl", 0.5, "median", ".2g"),
            ("Explained variance of V, 1 − Var(R − V)/Var(R) on each batch, mean over the last 10% of each run",
             "explained_variance", 0.9, "mean", ".2f")]:
        per_run = stats.late_per_run(progress, column, start, statistic).dropna(subset=[column])
        if per_run.empty:
            continue
        table = seed_range_table(per_run, column, "variant", [v for v in variants if v in set(per_run.variant)], envs,
                                 seeds, digits, "missing run")
        parts += [f"{title}; mean over seeds (min–max over seeds):", "", table, ""]
        if column == "explained_variance" and (per_run[column] < 0).any():
            parts += ["- Below 0: V predicts the batch's returns worse than their mean does. Expect it where the "
                      "returns hardly vary (a solved task whose every episode reaches the time limit), where the "
                      "ratio is of two small numbers.", ""]
    return "\n".join(parts).strip()


def fixed_policy_noise(scale_dir, config, scale):
    """The four weights' gradients measured on the same batches of one frozen policy (experiments/
    gradient_noise.py; one CSV per env and seed): variance against total return's, signal-to-noise, and
    how far each expected gradient lies from reward-to-go's. Cells: mean over seeds (min–max)."""
    pairs = grid.gradient_noise_runs(config, scale)
    paths = [scale_dir / "gradient_noise" / env / f"seed{seed}.csv" for env, seed in pairs]
    frames = [pd.read_csv(path) for path in paths if path.exists()]
    if not frames:
        return ""
    m = pd.concat(frames)
    weights = list(dict.fromkeys(m.weight))
    by_run = m.set_index(["env_id", "seed", "weight"])
    per_run = lambda column, weight: by_run[column].xs(weight, level="weight")  # noqa: E731
    # reward-to-go's expected gradient, the yardstick of the distances, where it stands out of its own noise
    # (the same rule as for a distance: the estimated square exceeds the noise²), else NaN
    rtg_sq, rtg_noise_sq = per_run("mean_grad_sq", "reward_to_go"), per_run("grad_variance", "reward_to_go") / m.batches.iloc[0]
    rtg_norm = np.sqrt(rtg_sq.where(rtg_sq > rtg_noise_sq))
    m = m.join(pd.DataFrame({"total_variance": per_run("grad_variance", "total_return"), "rtg_norm": rtg_norm}),
               on=["env_id", "seed"])
    m["variance_vs_total"] = m.grad_variance / m.total_variance
    m["snr"] = m.mean_grad_sq / m.grad_variance
    m["distance_vs_rtg"] = np.sqrt(m.bias_sq_vs_reward_to_go.where(m.bias_sq_vs_reward_to_go > m.bias_noise_sq, 0)) / m.rtg_norm
    m["noise_vs_rtg"] = np.sqrt(m.bias_noise_sq) / m.rtg_norm
    lost = rtg_norm[rtg_norm.isna()].index  # (env, seed) whose yardstick is lost in the noise
    distances = m.dropna(subset=["rtg_norm"])
    seeds = len({seed for _, seed in pairs})
    envs = list(dict.fromkeys(env for env, _ in pairs))

    others = weights[1:]

    def table(column, digits, rows=others, noise=None, frame=m, missing="not measured"):
        return seed_range_table(frame[frame.weight.isin(rows)].rename(columns={"env_id": "env"}), column, "weight", rows,
                                envs, seeds, digits, missing, noise)

    setup = m.iloc[0]
    ordered = [env for env, g in m.groupby("env_id")
               if (g.groupby("weight").grad_variance.mean().reindex(weights).diff().dropna() <= 0).all()]
    beyond = (distances.bias_sq_vs_reward_to_go > distances.bias_noise_sq).groupby(distances.weight).agg(["sum", "size"])
    return "\n".join([
        f"One policy per seed, held at its initialisation; V fitted for {setup.warmup_batches:.0f} batches first; then "
        f"{setup.batches:.0f} batches of {setup.batch_size:,.0f} steps, each weighted four ways (`experiments/"
        "gradient_noise.py`). V's explained variance on the measured batches: " + ", ".join(
            f"{env} {g.explained_variance.mean():.2f}" for env, g in m[m.weight == weights[0]].groupby("env_id"))
        + ". Mean over seeds (min–max over seeds).", "",
        "Variance of one batch gradient, tr Cov(ĝ), as a fraction of the total return's:", "",
        table("variance_vs_total", ".3g"), "",
        "Signal to noise of one batch gradient, ‖E ĝ‖² / tr Cov(ĝ), with ‖E ĝ‖² estimated as ‖mean of ĝ‖² less "
        "tr Cov(ĝ) / batches (so it falls below 0 where the mean is lost in the noise):", "",
        table("snr", ".3g", weights), "",
        "Distance of the expected gradient from reward-to-go's, ‖E ĝ − E ĝ_rtg‖ / ‖E ĝ_rtg‖, and the noise of its "
        "estimate, √(tr Cov(ĝ − ĝ_rtg) / batches) / ‖E ĝ_rtg‖ (mean over seeds). The squared distance is estimated "
        "as ‖mean of ĝ − ĝ_rtg‖² less noise²; a run where that does not exceed noise² counts 0:", "",
        table("distance_vs_rtg", ".2f", [w for w in weights if w != "reward_to_go"], noise="noise_vs_rtg",
              frame=distances, missing="no yardstick"), "",
        *(["- No yardstick: reward-to-go's own expected gradient is lost in its noise (the same rule) on "
           + ", ".join(f"{env} seed {seed}" for env, seed in lost) + "; those runs have no distance.", ""]
          if len(lost) else []),
        f"- The variance falls at every step total return → reward-to-go → value baseline → GAE on "
        f"{len(ordered)} of {m.env_id.nunique()} envs" + (f" ({', '.join(sorted(ordered))})" if ordered else "") + ".",
        "- Expected gradients: the value baseline should match reward-to-go (V(s_t) does not depend on a_t; only the "
        "bootstrap at time limits and at the batch end differs), GAE(λ < 1) may not (its bias), and the total "
        "return differs by design with γ < 1 (it weights step t by γ^t). Measured runs (env × seed) whose "
        "difference exceeds its noise: " + "; ".join(f"{w} {beyond.loc[w, 'sum']} of {beyond.loc[w, 'size']}"
                                                    for w in weights if w != "reward_to_go") + "."])


def reading_baselines(table, runs, progress, config, scale, scale_dir):
    """The orderings against the total-return weight, then the measured noise each weight leaves."""
    planned = grid.experiment_runs(config, scale, "baselines")
    sections = [("Over the tasks.", aggregate_text(table, lambda v: label(config, v))),
                ("Gradient noise and value fit, measured.", late_diagnostics(progress, planned)),
                ("Gradient noise at one fixed policy, measured.", fixed_policy_noise(scale_dir, config, scale)),
                ("Policy noise at the end, measured.", setups.noise(runs, progress, planned))]
    by_weight = weights_of(config, scale, planned)
    against = ((by_weight["total_return"], [by_weight[w] for w in ("value_baseline", "gae") if w in by_weight])
               if "total_return" in by_weight else None)
    return "\n\n".join([reading_curves(table, against), random_text(scale_dir, sorted(table.env.unique()))]
                       + [f"**{title}**\n\n{text}" for title, text in sections if text])


# Each weight against the one before it (what each step of the policy-gradient derivation buys), and the first
# against the last: reward-to-go drops past rewards, V(s) subtracts a baseline, GAE(λ) trades bias for variance.
WEIGHT_PAIRS = (("reward_to_go", "total_return"), ("value_baseline", "reward_to_go"), ("gae", "value_baseline"),
                ("gae", "total_return"))


# Why two weights' runs with one seed are a pair: vpg.py builds both networks and draws the first batch before the
# weight is used, all from the seed's streams (docs/DESIGN.md §4)
PAIRED_BECAUSE = ("A seed fixes a run's initial networks and its environment's and actions' random streams, and the "
                  "weight acts only from the first update on, so the four weights' runs with one seed start from the "
                  "same policy and see the same first batch: two weights can be compared within each seed.")


def reading(table, ctx):
    text = reading_baselines(table, ctx.runs, ctx.progress, ctx.config, ctx.scale, ctx.scale_dir)
    weights = weights_of(ctx.config, ctx.scale, ctx.planned)
    named = lambda v: label(ctx.config, v)  # noqa: E731
    pairs = [(weights[x], weights[y]) for x, y in WEIGHT_PAIRS if x in weights and y in weights]
    if improvement := improvement_table(ctx, pairs, named):
        text += f"\n\n**Which weight's runs end higher.** {improvement}"
    chain = [(weights[x], weights[y]) for x, y in WEIGHT_PAIRS[:3] if x in weights and y in weights]
    if paired := paired_text(ctx.scores, ctx.planned, chain, named, PAIRED_BECAUSE):
        text += f"\n\n**Each step of the chain, seed by seed.** {paired}"
    return (text + solved_reading(ctx, named) + collapse_reading(ctx, named)
            + two_groups_text(ctx.scores, ctx.planned, named))


def weights_of(config, scale, planned):
    """{vpg.py --weight: variant} of the planned runs' variants, read from their arguments, not their names."""
    return {grid.expected_args(config, scale, run)["weight"]: run.variant
            for run in {r.variant: r for r in planned}.values()}


def summary(table, ctx):
    """The finding in a sentence: on how many tasks each learned baseline beats the total-return weight."""
    weights = weights_of(ctx.config, ctx.scale, ctx.planned)
    if "total_return" not in weights:
        return ""
    low = table[table.variant == weights["total_return"]].set_index("env")
    parts = []
    for weight in [w for w in ("value_baseline", "gae") if w in weights]:
        high = table[table.variant == weights[weight]].set_index("env")
        envs = high.index.intersection(low.index)
        wins = [e for e in envs if high.ci_low[e] > low.ci_high[e]]
        parts.append(f"*{label(ctx.config, weights[weight])}* on {len(wins)} of {len(envs)} tasks" + (
            f" ({', '.join(wins)})" if wins else ""))
    return (f"VPG's gradient weights ({seeds_text(ctx)}): scoring above *{label(ctx.config, weights['total_return'])}* "
            f"with disjoint 95% t-intervals: {' and '.join(parts)}." + aggregate_summary(table, lambda v: label(ctx.config, v)))


def cite(table, ctx):
    """Per task, the weights from best to worst."""
    column = "best → worst ('>' disjoint 95% intervals, '≈' overlapping)"
    rows = [{"task": env, column: ordering(g, ctx.config)} for env, g in table.groupby("env", sort=False)]
    overall = aggregate_rows(table, lambda v: label(ctx.config, v))
    if len(overall):  # and over the tasks, by IQM with its stratified-bootstrap interval
        rows.append({"task": aggregate_heading(overall), column: aggregate_ordering(overall)})
    return pd.DataFrame(rows).to_markdown(index=False)


def caption(ctx):
    return (f"Learning curves of VPG with each policy-gradient weight: training episode return, mean over "
            f"{seeds_text(ctx)}, with the 95% t-interval band; one panel per task.")
