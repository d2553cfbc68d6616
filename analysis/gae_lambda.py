"""The GAE λ experiment: PPO-clip's final score and learning speed against λ, beside the GAE paper's ranges."""
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from analysis import stats
from analysis.common import (AGGREGATE_COLUMNS, FIGURE_STYLE, MISSING, PUBLISHED, aggregate_curves,
                             aggregate_intervals, aggregate_ordering, aggregate_rows, aggregate_summary,
                             aggregate_text, aggregate_wide, ci_text, collapse_reading, label, per_env_table,
                             seed_caveat, seeds_text, solved_reading, step_label, task_aggregates, two_groups_text,
                             zoom_past_start)


def table_gae_lambda(data):
    """Per λ and env: the final score and the learning speed (mean return over the whole run), each with its
    95% interval and the share of seed resamples in which that λ is best; and the mean return over the first
    EARLY of the run (early_speed), with its share."""
    data.scores = data.scores.merge(data.runs[["variant", "env", "seed", "arg_gae_lambda"]], on=["variant", "env", "seed"])
    curves = data.curves()
    early = curves[curves.step <= EARLY * curves.env.map(data.steps)]  # the first tenth of each run
    data.scores = (data.normalised(best_from=data.variants)
                   .merge(stats.learning_speed(curves), on=["variant", "env", "seed"])
                   .merge(stats.learning_speed(early).rename(columns={"speed": "early_speed"}),
                          on=["variant", "env", "seed"], how="left"))
    table = per_env_table(data).merge(data.scores.groupby("variant").arg_gae_lambda.first().rename("lambda"),
                                      left_on="variant", right_index=True)
    norm = per_env_table(data, "normalised", digits=2).rename(columns={"mean": "normalised_mean", "text": "normalised"})
    fast = per_env_table(data, "speed").rename(columns={"mean": "speed_mean", "ci_low": "speed_ci_low",
                                                         "ci_high": "speed_ci_high", "text": "speed"})
    first = per_env_table(data, "early_speed").rename(columns={"mean": "early_speed_mean"})
    table = (table.merge(norm[["variant", "env", "normalised_mean", "normalised"]], on=["variant", "env"])
             .merge(fast[["variant", "env", "speed_mean", "speed_ci_low", "speed_ci_high", "speed"]], on=["variant", "env"])
             .merge(first[["variant", "env", "early_speed_mean"]], on=["variant", "env"]))

    def share_best(value):
        """Per env, the share of seed resamples in which each λ has the highest mean `value`."""
        cell_means = stats.bootstrap_cell_means(data.scores.assign(score=data.scores[value]))
        p_best = pd.concat([stats.ranking_uncertainty(cell_means.xs(env, axis=1, level="env")).p_best.rename(env)
                            for env in data.envs if env in cell_means.columns.get_level_values("env")], axis=1)
        return [p_best.at[r.variant, r.env] for r in table.itertuples()]

    table["p_best"], table["speed_p_best"] = share_best("score"), share_best("speed")
    table["early_speed_p_best"] = share_best("early_speed")
    # every planned λ gets a row, one with no run yet too (its λ from the config, else the variant's name)
    lambdas = table.drop_duplicates("variant").set_index("variant")["lambda"]
    row_of = {v: lambdas.get(v, data.args[v].get("gae_lambda", v)) for v in data.variants}
    order = sorted(data.variants, key=lambda v: (isinstance(row_of[v], str), 0 if isinstance(row_of[v], str) else row_of[v]))
    measures = {"text": ("final score (mean of the last 100 episodes)", "score"),
                "speed": ("learning speed (mean return over the whole run)", "speed")}
    wide = [table.pivot(index="variant", columns="env", values=column).reindex(index=order, columns=data.envs)
            .rename(index=row_of).rename_axis(f"lambda: {title}").astype(object).fillna(MISSING)
            for column, (title, _) in measures.items()]
    # each λ over the tasks (common.task_aggregates): is the paper's range best over tasks too? The final score,
    # and the learning speed normalised the same way (random 0, the fastest λ's mean 1), over the same tasks
    aggregates = task_aggregates(data, table)
    speed = {}
    if aggregates:
        runs = data.scores[data.scores.env.isin(aggregates[0])].assign(score=lambda d: d.speed)
        speed = aggregate_intervals(runs.assign(normalised=stats.normalise(runs, data.random_score,
                                                                           stats.best_of_sweep(runs))),
                                    "aggregate_speed", ("iqm",))
    for column in AGGREGATE_COLUMNS + SPEED_COLUMNS:
        table[column] = table.variant.map({**(aggregates[2] if aggregates else {}), **speed}.get(column, {}))
    if (over_tasks := aggregate_wide(table, lambda_names(table), order)) is not None:
        over_tasks["learning speed, IQM [95% CI]"] = [
            ci_text(r.aggregate_speed_iqm, r.aggregate_speed_iqm_ci_low, r.aggregate_speed_iqm_ci_high, 2)
            for r in aggregate_rows(table, lambda_names(table), order).itertuples()]
        wide.append(over_tasks)
    # λ on a scale that shows its spacing: 1 − λ on a log axis (linear below 0.01, so λ = 1 has a place), reversed so
    # that λ grows to the right; the planned λs crowd towards 1 (0.92 ... 0.99, 1) and the axis shows it
    planned = sorted(x for x in row_of.values() if not isinstance(x, str))
    low, high = gae_paper_range()
    shown, last = [], None
    for lam in planned:  # a tick for every λ, a label where it does not run into the last one's
        at = np.log10(max(1 - lam, 0.005))
        if last is None or abs(at - last) > 0.15:
            shown.append(lam)
            last = at
    overall = aggregate_rows(table, lambda_names(table), order)
    panels = list(data.envs) + (["over the tasks"] if len(overall) else [])
    # the learning curve of each λ, as the GAE paper's Fig. 2 (left) draws cart-pole's: the mean training return
    # over the seeds, coloured from λ = 0 (dark) to λ = 1 (light); over the tasks, each λ's IQM along training
    lambda_of = {v: lam for v, lam in row_of.items() if not isinstance(lam, str)}
    colour = dict(zip(planned, sns.color_palette("viridis", len(planned) + 1)))  # the last, pale yellow, unused
    during = aggregate_curves(data, aggregates[0]) if aggregates else {}
    with plt.rc_context(FIGURE_STYLE):
        fig, axes = plt.subplots(len(panels), 1 + len(measures), figsize=(5.4, 1.35 * len(panels) + 1.05),
                                 squeeze=False)
        for row, env in zip(axes, panels):
            ax = row[0]
            ax.grid(alpha=0.3, linewidth=0.4)
            if env == "over the tasks":
                for variant, (share, iqm, _, _) in during.items():
                    ax.plot(share, iqm, color=colour[lambda_of[variant]], linewidth=0.8)
                ax.set_title(f"IQM over {len(aggregates[0])} tasks: during training")
                ax.set(xlabel="share of the run's steps", ylabel="")
            elif env in set(curves.env):
                draw_curves(ax, curves[curves.env == env], lambda_of, colour, data.steps[env])
                ax.set_title(f"{env}: learning curve")
                ax.set(xlabel="environment steps" if env == panels[-1] else "", ylabel="")
            else:
                ax.text(0.5, 0.5, "no runs yet", ha="center", va="center", transform=ax.transAxes)
            for ax, (title, value) in zip(row[1:], measures.values()):
                ax.axvspan(1 - high, 1 - low, color="0.9", zorder=0, label=f"GAE paper's range, λ in [{low:g}, {high:g}]")
                ax.set_xscale("symlog", linthresh=0.01, linscale=0.4)
                ax.set_xlim(1.15, -0.003)
                ax.set_xticks([1 - x for x in planned], [f"{x:g}" if x in shown else "" for x in planned], rotation=90)
                ax.minorticks_off()
                ax.set_title(f"{env}: {title.split(' (')[0]}")
                ax.grid(alpha=0.3, linewidth=0.4)
                if env == "over the tasks":  # each λ's IQM over the tasks, normalised, with its 95% interval
                    name = "aggregate_iqm" if value == "score" else "aggregate_speed_iqm"
                    ax.errorbar(1 - overall["lambda"], overall[name], fmt="s", markersize=3, elinewidth=0.8,
                                color="C3", yerr=[overall[name] - overall[f"{name}_ci_low"],
                                                  overall[f"{name}_ci_high"] - overall[name]],
                                label="IQM over the tasks (random 0, the best λ 1), 95% CI")
                    ax.set_title(f"IQM over {len(aggregates[0])} tasks: {title.split(' (')[0]}")
                    ax.set(xlabel="GAE λ", ylabel="")
                    continue
                sub = data.scores[data.scores.env == env].assign(x=lambda d: 1 - d.arg_gae_lambda)
                if sub.empty:  # a partial grid: say so instead of drawing empty axes
                    ax.text(0.5, 0.5, "no runs yet", ha="center", va="center", transform=ax.transAxes)
                    continue
                sns.lineplot(data=sub, x="x", y=value, marker="o", markersize=3, errorbar=stats.t_errorbar(),
                             err_style="bars", ax=ax, label="mean over seeds, 95% t-interval")
                ax.plot(sub.x, sub[value], ".", color="0.35", markersize=2.5, label="one seed")
                ax.legend().remove()
                ax.set(xlabel="GAE λ" if env == panels[-1] else "", ylabel="")
        # below: the marks of the right-hand panels, each label once, and under them each λ's colour in λ's order
        marks = {}
        for ax in (axes[0][1], axes[-1][1]):
            for handle, name in zip(*ax.get_legend_handles_labels()):
                marks.setdefault(name, handle)
        height = fig.get_figheight()
        fig.legend(marks.values(), marks.keys(), loc="lower center", ncol=2, frameon=False,
                   bbox_to_anchor=(0.5, 0.32 / height))
        fig.legend([Line2D([], [], color=colour[lam]) for lam in planned], [f"λ = {lam:g}" for lam in planned],
                   loc="lower center", ncol=-(-len(planned) // 2), frameon=False, bbox_to_anchor=(0.5, 0.0))
        fig.tight_layout(rect=(0, 0.75 / height, 1, 1 - 0.3 / height))
    return table.sort_values(["env", "lambda"]), wide, fig


def draw_curves(ax, curves, lambda_of, colour, total):
    """One task's learning curve per λ: the mean over its seeds of the training return (Data.curves), in λ's colour;
    the y axis leaves out the start of the run (common.zoom_past_start), as the other learning curves do."""
    means = curves.groupby(["variant", "step"])["return"].mean()
    for variant, curve in means.groupby(level="variant"):
        ax.plot(curve.index.get_level_values("step"), curve.to_numpy(), color=colour[lambda_of[variant]], linewidth=0.8)
    zoom_past_start(ax, means, total)
    ax.set_xticks(np.linspace(0, total, 3), [step_label(x) for x in np.linspace(0, total, 3)])


EARLY = 0.1  # the share of a run whose mean return is its early learning speed (the cart-pole claim's check)
SPEED_COLUMNS = ("aggregate_speed_iqm", "aggregate_speed_iqm_ci_low", "aggregate_speed_iqm_ci_high")  # over the tasks


def gae_paper_range(task="all tasks"):
    """A λ range of the GAE paper, from analysis/published/gae_lambda.csv: by default the one it recommends
    for all its tasks (§7); "cart-pole at gamma 0.99" gives the fastest improvement of its Fig. 2."""
    paper = pd.read_csv(PUBLISHED / "gae_lambda.csv")
    low, high = paper.loc[paper.task.str.startswith(task), "lambda_best"].iloc[0].strip("[]").split(",")
    return float(low), float(high)


def score_at(gae_table, lam):
    """The mean score at one λ of one env's rows, or that it has no run yet (a partial report)."""
    means = gae_table.loc[gae_table["lambda"] == lam, "mean"].dropna()
    return f"scores {means.iloc[0]:.1f}" if len(means) else "has no run yet"


def reading_gae(table):
    """Per env, the best λ by final score and by learning speed, each with the λs that are best in ≥ 5% of the
    seed resamples and whether it lies in the GAE paper's range."""
    lines = []
    low, high = gae_paper_range()

    def best_of(g, mean, p_best):
        best = g.loc[g[mean].idxmax()]
        contenders = g[(g.variant != best.variant) & (g[p_best] >= 0.05)].sort_values("lambda")
        rivals = ("; also best in ≥ 5% of resamples: " + ", ".join(f"λ = {r['lambda']:g} ({r[p_best]:.0%})"
                                                                  for _, r in contenders.iterrows())
                  if len(contenders) else "; no other λ is best in ≥ 5% of resamples")
        inside = "inside" if low <= best["lambda"] <= high else "outside"
        return (f"λ = {best['lambda']:g} ({best[mean]:.1f}, best in {best[p_best]:.0%} of seed resamples{rivals}; "
                f"{inside} the GAE paper's range)")

    every = lambdas_with_runs(table)
    for env, g in table.groupby("env", sort=False):
        if (held := lambdas_with_runs(g)) != every:  # a partial grid: a best of some λs is no best λ
            lines.append(f"- {env}: {len(held)} of the {len(every)} λs have runs so far "
                         f"(λ = {', '.join(f'{lam:g}' for lam in sorted(held))}); no best λ until every λ has one.")
            continue
        lines.append(f"- {env}: best final score at {best_of(g, 'mean', 'p_best')}. Fastest learning (mean return "
                     f"over the whole run) at {best_of(g, 'speed_mean', 'speed_p_best')}. "
                     f"λ = 0 {score_at(g, 0)}, λ = 1 {score_at(g, 1)}.")
    fast_low, fast_high = gae_paper_range("cart-pole at gamma 0.99")
    lines.append(f"- The GAE paper's range is [{low:g}, {high:g}] (§7); its fastest improvement, on cart-pole, came "
                 f"from λ in [{fast_low:g}, {fast_high:g}] (Fig. 2). Both are TRPO results, not PPO ones.")
    if claim := cartpole_claim(table):
        lines.append(f"- {claim_text(claim)}")
    if caveat := seed_caveat(int(table.seeds.min())):
        lines.append(caveat)
    return "\n".join(lines)


table = table_gae_lambda


def reading(table, ctx):
    text = reading_gae(table)
    if overall := aggregate_text(table, lambda_names(table), profiles=False):
        rows = aggregate_rows(table, lambda_names(table))
        fast = aggregate_ordering(rows.assign(**{c.replace("_speed", ""): rows[c] for c in SPEED_COLUMNS}))
        text += (f"\n\n**Over the tasks.** {overall}\n- Learning speed (mean return over the whole run), normalised "
                 f"the same way (random 0, the fastest λ's mean 1), IQM: {fast}.")
    return (text + solved_reading(ctx, lambda_names(table)) + collapse_reading(ctx, lambda v: label(ctx.config, v))
            + two_groups_text(ctx.scores, ctx.planned, lambda v: label(ctx.config, v)))


def lambda_names(table):
    """variant → 'λ = 0.95', each λ by its value (λ = 0.95 is the variant the other experiments call ε = 0.2)."""
    return table.drop_duplicates("variant").set_index("variant")["lambda"].map(lambda lam: f"λ = {lam:g}").to_dict()


def lambdas_with_runs(table):
    """The λs that have a run in these rows (all envs' rows: the λs some env has a run of)."""
    return set(table.loc[table["mean"].notna(), "lambda"])


def best_lambdas(table):
    """Per env, the λ with the best mean final score and the λ that learns fastest, with their shares of resamples;
    only envs where every λ with a run anywhere has one here."""
    rows, every = [], lambdas_with_runs(table)
    for env, g in table.groupby("env", sort=False):
        if lambdas_with_runs(g) != every:
            continue
        final, fast = g.loc[g["mean"].idxmax()], g.loc[g["speed_mean"].idxmax()]
        rows.append(dict(env=env, final=final["lambda"], final_p=final.p_best, final_mean=final["mean"],
                         fast=fast["lambda"], fast_p=fast.speed_p_best))
    return pd.DataFrame(rows, columns=["env", "final", "final_p", "final_mean", "fast", "fast_p"])


def summary(table, ctx):
    low, high = gae_paper_range()
    best = best_lambdas(table)
    inside = best[(best.final >= low) & (best.final <= high)]
    text = (f"PPO-clip's best λ by final score ({seeds_text(ctx)}): " + ", ".join(
        f"{r.env} {r.final:g} (best in {r.final_p:.0%} of seed resamples)" for r in best.itertuples())
        + f"; {len(inside)} of {len(best)} inside the GAE paper's [{low:g}, {high:g}].")
    if waiting := [env for env in dict.fromkeys(table.env) if env not in set(best.env)]:
        text += f" Not every λ has a run yet on {', '.join(waiting)}."
    if claim := cartpole_claim(table):
        text += f" {claim_text(claim)}"
    return text + aggregate_summary(table, lambda_names(table))


def cartpole_claim(table):
    """The GAE paper's cart-pole claim (Fig. 2: the fastest improvement from λ in [0.92, 0.98]) against our
    CartPole runs, once every λ has them: (env, our fastest λ, its share of seed resamples, the share of
    resamples in which the fastest λ lies in the paper's range, the λs in that range, all λs, the range, and
    the fastest λ over the first EARLY of the runs with its share), or None. Learning speed is the mean return
    over the whole run; over its first tenth it says whether the answer is one of improvement or of the end."""
    low, high = gae_paper_range("cart-pole at gamma 0.99")
    rows = table[table.env.str.startswith("CartPole")]
    if rows.empty or lambdas_with_runs(rows) != lambdas_with_runs(table):
        return None
    fast = rows.loc[rows["speed_mean"].idxmax()]
    inside = rows[(rows["lambda"] >= low) & (rows["lambda"] <= high)]
    early = rows.loc[rows["early_speed_mean"].idxmax()]
    return (fast.env, fast["lambda"], fast.speed_p_best, inside.speed_p_best.sum(), len(inside),
            rows["lambda"].nunique(), low, high, early["lambda"], early.early_speed_p_best)


def claim_text(claim):
    env, fast, fast_p, p_inside, k, n, low, high, early, early_p = claim
    where = "inside" if low <= fast <= high else "outside"
    return (f"The GAE paper's cart-pole claim on {env}: our fastest learning is at λ = {fast:g} (fastest in "
            f"{fast_p:.0%} of seed resamples), {where} its range [{low:g}, {high:g}]; the fastest λ lies in that range "
            f"in {p_inside:.0%} of resamples, where {k} of our {n} λs lie ({k / n:.0%} if every λ learned as fast). "
            f"Over the first {EARLY:.0%} of the run alone, the fastest is λ = {early:g} ({early_p:.0%} of resamples).")


def cite(table, ctx):
    best = best_lambdas(table)
    rows = [{"task": r.env, "best λ, final score (share of resamples)": f"{r.final:g} ({r.final_p:.0%})",
             "best λ, learning speed": f"{r.fast:g} ({r.fast_p:.0%})",
             "final score at λ = 0 / best / 1": " / ".join(
                 [score_at(g, 0).replace("scores ", ""), f"{r.final_mean:.1f}", score_at(g, 1).replace("scores ", "")])}
            for r in best.itertuples() for g in [table[table.env == r.env]]]
    return pd.DataFrame(rows).to_markdown(index=False)


def caption(ctx):
    low, high = gae_paper_range()
    return (f"PPO-clip against GAE's λ. Left, each λ's learning curve, the mean training return over its seeds, dark "
            f"for λ = 0 to light for λ = 1, as the GAE paper's Fig. 2 draws cart-pole's. Middle and right, on a scale "
            f"that shows λ's spacing: the final score and the learning speed, the mean return over the whole run; each "
            f"dot one seed, the bar the mean over {seeds_text(ctx)} with its 95% t-interval; grey, the GAE paper's "
            f"range [{low:g}, {high:g}]. The last row, over the tasks where every λ has runs (per task random 0, the "
            "best λ's mean 1): each λ's IQM along training, and its IQM by final score and by learning speed with "
            "its stratified-bootstrap 95% interval.")
