"""The algorithms experiment: VPG-GAE, TRPO and PPO variants side by side and against the published numbers."""
import numpy as np
import pandas as pd

from analysis import setups
from analysis.common import (MISSING, UPDATE_MEASURES, aggregate_heading, aggregate_rows, aggregate_summary,
                             aggregate_text, budget_label, ci_text, collapse_reading, improvement_table, label,
                             reading_curves, seed_range_table, seeds_text, solved_reading, step_label, table_curves,
                             two_groups_text, update_measures)
from analysis.setups import PUBLISHED, variant_matches
from experiments import grid


def table_algorithms(data):
    """One row per variant (ours, then the published rows matched to it), one column per env; then each variant
    over the tasks (common.task_aggregates), whose table and figure panels table_curves gives."""
    table, (_, *overall), fig = table_curves(data)
    published = pd.read_csv(PUBLISHED / "final_returns.csv")
    rows, matches = {}, variant_matches(data.config, data.scale, data.variants)
    for variant in data.variants:
        row = {}
        for env in data.envs:
            ours = data.scores[(data.scores.variant == variant) & (data.scores.env == env)].score
            row[env] = (f"{ours.mean():.0f} ± {ours.std(ddof=1):.0f}{data.seeds_note(len(ours))}" if len(ours)
                        else MISSING)
        rows[f"ours: {variant}"] = row
        for source, algo in matches[variant]:
            label = f"{source} {algo}"
            if not setups.published_on(source, algo, data.envs, published):
                continue  # published on other tasks only (CleanRL's ppo.py on classic control, at a MuJoCo-only scale)
            theirs = published[(published.source == source) & (published.algo == algo)]
            for env in data.envs:
                hit = theirs[theirs.env == env.rsplit("-", 1)[0]]
                rows.setdefault(label, {})[env] = "; ".join(
                    f"{p.value:.0f}{f' ± {p.std:.0f}' if pd.notna(p.std) else ''} ({p.env_version}, "
                    f"{step_label(p.steps)} steps, [{p.tag}])" for p in hit.itertuples()) or "not published"
    wide = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=data.envs)
    wide.index.name = f"final score, mean ± sample SD over seeds ({budget_label(data.steps, data.envs)})"
    return table, [wide, *overall], fig


def published_placements(table, steps, matches):
    """Ours against each published number matched to a variant (`matches`, setups.variant_matches; the numbers in
    analysis/published/final_returns.csv), at the published budget only (`steps`: env → our steps): one dict per
    (our cell, published number) with `where` the published mean lies against our 95% t-interval (None for a one-seed cell, which has no interval) and the ratio of
    the means (None unless both are positive); and the published results measured at another budget."""
    published = pd.read_csv(PUBLISHED / "final_returns.csv")
    placed, other_budget = [], set()
    for r in table.itertuples():
        for source, algo in matches.get(r.variant, []):
            for p in published[(published.source == source) & (published.algo == algo) &
                               (published.env == r.env.rsplit("-", 1)[0])].itertuples():
                if abs(p.steps - steps[r.env]) > 0.01 * p.steps:
                    other_budget.add(f"{source} {algo}")
                    continue
                where = (None if getattr(r, "seeds", 2) < 2 else "inside" if r.ci_low <= p.value <= r.ci_high
                         else "above" if p.value > r.ci_high else "below")
                placed.append({"ours": r, "published": p, "label": f"{source} {algo}", "where": where,
                               "ratio": r.mean / p.value if p.value > 0 and r.mean > 0 else None})
    return placed, other_budget


def placement_summary(placed, matches):
    """One row per (our variant, published result): on how many envs ours is higher, not told apart, lower."""
    rows = {}
    for x in placed:
        row = rows.setdefault((x["ours"].variant, x["label"]), {"ours": x["ours"].variant, "published": x["label"],
                                                                "envs": 0, "ours higher": 0, "not told apart": 0,
                                                                "ours lower": 0, "one seed, not placed": 0, "ratios": []})
        row["envs"] += 1
        row[{"below": "ours higher", "inside": "not told apart", "above": "ours lower", None: "one seed, not placed"}[
            x["where"]]] += 1
        if x["ratio"] is not None:
            row["ratios"].append(x["ratio"])
    for row in rows.values():
        ratios = sorted(row.pop("ratios"))
        row["ours / theirs where both > 0: median (range)"] = (
            f"{np.median(ratios):.2f}× ({ratios[0]:.2f}–{ratios[-1]:.2f})" if ratios else "no env")
    order = [(v, f"{source} {algo}") for v, found in matches.items() for source, algo in found]
    summary = pd.DataFrame([rows[key] for key in order if key in rows])
    if not summary["one seed, not placed"].any():
        summary = summary.drop(columns="one seed, not placed")
    return summary.to_markdown(index=False)


def reading_published(table, steps, matches):
    """A summary per (our variant, published result), then each env: whether the published mean lies inside
    our 95% t-interval, and the ratio of the means. Only at the published budget; at another
    budget the comparison says nothing and the reading says so."""
    placed, other_budget = published_placements(table, steps, matches)
    lines = []
    for x in placed:
        r, p = x["ours"], x["published"]
        ratio = f"; ours is {x['ratio']:.2f}× it" if x["ratio"] is not None else ""
        theirs = f"{x['label']} ({p.env_version}, {p.seeds} seeds, [{p.tag}]) {p.value:.0f}"
        if x["where"] is None:  # a partial grid: one seed has no interval to place it against
            lines.append(f"- {r.variant} on {r.env}: {r.mean:.0f} (1 seed so far, no interval); {theirs}, "
                         f"not placed yet{ratio}.")
        else:
            lines.append(f"- {r.variant} on {r.env}: {r.mean:.0f} [{r.ci_low:.0f}, {r.ci_high:.0f}]; {theirs}, "
                         f"{x['where']} our interval{ratio}.")
    if lines:
        lines = [placement_summary(placed, matches), ""] + lines + [
            "- A published mean is one number from other seeds, code and environment versions (v2-v4, ours "
            "-v5): 'inside' (not told apart) means our seeds do not tell us apart from it, not that the two agree "
            "exactly."]
    if other_budget:
        lines.append(f"- Not compared: {', '.join(sorted(other_budget))}, measured at another budget than ours "
                     f"({', '.join(sorted({f'{n:,}' for n in steps.values()}))} steps).")
    return "\n".join(lines)


def reading_update_sizes(progress, planned):
    """How far each update moves each variant's policy: UPDATE_MEASURES' KL per update (median over the second half
    of a run), mean over seeds (min–max), on the tasks with a Gaussian policy; "" when there is none."""
    per_run = update_measures(progress, planned)
    if not per_run:
        return ""
    title, _, _, digits = UPDATE_MEASURES["approx_kl"]
    kl = per_run["approx_kl"]
    envs = [env for env in dict.fromkeys(r.env for r in planned) if env in set(kl.env)]
    table = seed_range_table(kl, "approx_kl", "variant", list(dict.fromkeys(r.variant for r in planned)), envs,
                             len({r.seed for r in planned}), digits, MISSING)
    return (f"{title}; mean over seeds (min–max over seeds):\n\n{table}\n\n- The bounds: TRPO's line search keeps "
            "each update's mean KL within δ (`max_kl`); KL stopping ends an update's epochs once the KL passes 1.5 × "
            "its target (`target_kl`); adaptive KL steers its penalty so that the KL comes near d (`d_targ`). PPO-clip "
            "and VPG set no bound: PPO-clip's clip only takes away the gain from moving a sample's probability ratio "
            "past 1 ± ε.")


def reading_algorithms(table, runs, progress, config, scale):
    """The orderings, then ours against the published numbers, how the compared setups differ, how much of its
    initial exploration noise each policy keeps (one of those differences, measured) and how far its updates move
    it."""
    variants = grid.experiment_variants(config, scale, "algorithms")
    steps = {env: grid.steps(config, scale, env) for env in config["scales"][scale]["experiments"]["algorithms"]["envs"]}
    sections = [("Over the tasks.", aggregate_text(table, lambda v: label(config, v))),
                ("Against the published numbers.",
                 reading_published(table, steps, setups.variant_matches(config, scale, variants))),
                ("How the compared setups differ.", setups.reading(runs, variants)),
                ("What changed in the environments.",
                 setups.env_changes(config["scales"][scale]["experiments"]["algorithms"]["envs"])),
                ("Policy noise at the end, measured.",
                 setups.noise(runs, progress, grid.experiment_runs(config, scale, "algorithms"))),
                ("How far each update moves the policy, measured.",
                 reading_update_sizes(progress, grid.experiment_runs(config, scale, "algorithms")))]
    return "\n\n".join([reading_curves(table)] + [f"**{title}**\n\n{text}" for title, text in sections if text])


table = table_algorithms


# The PPO paper's comparisons: PPO-clip against TRPO and a vanilla policy gradient (Schulman et al. 2017, §6.2,
# Fig. 3; here TRPO over VPG-GAE, the trust region's own gain) and against the adaptive KL penalty (§6.1, Table 1);
# and KL early stopping (Spinning Up's) added to PPO-clip.
ALGORITHM_PAIRS = (("trpo", "vpg_gae"), ("ppo_clip_0.2", "trpo"), ("ppo_clip_0.2", "ppo_kl_adaptive_0.01"),
                   ("ppo_clip_0.2_es_0.01", "ppo_clip_0.2"))


def reading(table, ctx):
    text = reading_algorithms(table, ctx.runs, ctx.progress, ctx.config, ctx.scale)
    variants = set(grid.experiment_variants(ctx.config, ctx.scale, "algorithms"))
    pairs = [(x, y) for x, y in ALGORITHM_PAIRS if x in variants and y in variants]
    if improvement := improvement_table(ctx, pairs, lambda v: label(ctx.config, v)):
        text += f"\n\n**Which algorithm's runs end higher.** {improvement}"
    named = lambda v: label(ctx.config, v)  # noqa: E731
    return (text + solved_reading(ctx, named) + collapse_reading(ctx, named)
            + two_groups_text(ctx.scores, ctx.planned, named))


def summary(table, ctx):
    """The best algorithm per task, and where ours stands against the published numbers."""
    best = [f"{env} {label(ctx.config, g.loc[g['mean'].idxmax(), 'variant'])}" for env, g in table.groupby("env", sort=False)]
    variants = grid.experiment_variants(ctx.config, ctx.scale, "algorithms")
    steps = {env: grid.steps(ctx.config, ctx.scale, env) for env in set(table.env)}
    placed, _ = published_placements(table, steps, setups.variant_matches(ctx.config, ctx.scale, variants))
    where = pd.Series([x["where"] for x in placed], dtype=object)
    text = (f"Algorithms ({seeds_text(ctx)}): the best mean final score per task: " + ", ".join(best) + "."
            + aggregate_summary(table, lambda v: label(ctx.config, v)))
    if len(where):
        text += (f" Against {len(where)} published means at the same budget, ours is higher in "
                 f"{(where == 'below').sum()}, not told apart in {(where == 'inside').sum()} and lower in "
                 f"{(where == 'above').sum()} (the published mean against our 95% t-interval).")
    return text


def cite(table, ctx):
    """Ours (mean [95% t-interval]) per task, each variant by its label."""
    wide = table.pivot(index="variant", columns="env", values="text")
    variants = [v for v in grid.experiment_variants(ctx.config, ctx.scale, "algorithms") if v in wide.index]
    wide = wide.reindex(index=variants, columns=list(dict.fromkeys(table.env)))
    overall = aggregate_rows(table, lambda v: label(ctx.config, v)).set_index("variant")
    if len(overall):
        wide[aggregate_heading(overall)] = [
            ci_text(*overall.loc[v, ["aggregate_iqm", "aggregate_iqm_ci_low", "aggregate_iqm_ci_high"]], 2)
            if v in overall.index else "" for v in variants]
    wide.index = [label(ctx.config, v) for v in variants]
    wide.index.name = "final score [95% t-interval]"
    return wide.fillna(MISSING).to_markdown()


def caption(ctx):
    return (f"Learning curves of each algorithm: training episode return, mean over {seeds_text(ctx)} with the 95% "
            "t-interval band; one panel per task.")
