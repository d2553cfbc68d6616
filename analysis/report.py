"""results/<scale>/REPORT.md: protocol, versions, compute, every figure and table, and a short
factual reading of each beside the published result.

  python -m analysis.report results/quick --scale quick       # after analysis.experiments

The readings are generated from the tables, so they always describe the numbers shown. A discussion
written by hand (analysis/discussion/<scale>/<experiment>.md) is shown only beside the numbers it was
written from: its first line holds the fingerprint of its experiment's table (or, part by part, of the rows of
one Table 1 regime).
"""
import argparse
import sys
import datetime
import hashlib
import math
import pathlib
import re

import numpy as np
import pandas as pd

from analysis import setups, stats
from analysis.experiments import (OWN_TIME_LIMITS, PUBLISHED, PUBLISHED_MATCH, REGIMES_COLUMNS, RHO_COLUMNS,
                                  TABLE1_SETTINGS, add_grid_flags, aggregated_envs, gae_paper_range, narrowed_envs,
                                  paper_name, regime_variant, regimes_text, rho_checks_text)
from analysis.load import GridStatus, RunContractError, load_random, load_runs
from experiments import grid, repack

EXPERIMENTS = list(grid.ANALYSED)
DISCUSSION = grid.ROOT / "analysis" / "discussion"
FINGERPRINT = "<!-- written from the table with fingerprint {} -->"
PART_FINGERPRINT = "<!-- written from the table's {} rows with fingerprint {} -->"  # one regime's rows (Table 1)
HEAD = re.compile(r"^<!-- written from the table(?:'s (?P<regime>\S+) rows)? "
                  r"with fingerprint (?P<fingerprint>\w+) -->[ \t]*$", re.MULTILINE)


def table_fingerprint(table):
    """sha256 of a results table's cells as the report prints them (rounded text, not the floats, whose last
    digits may differ between machines), so a discussion can tell whether the numbers under it changed. A table
    with a `text` column prints that, beside the columns that name its row; one without (Table 1) prints its
    numbers: raw scores to units, the rest (normalised scores, ranks, shares, ρ, seed counts) to 2 decimals, ints
    and floats alike (a column of seed counts is read as floats while some cell is empty, as ints once none is)."""
    if "text" in table:
        shown = table[[c for c in ("label", "variant", "minus", "env", "seeds", "text") if c in table]]
    else:
        def printed(column):
            digits = "{:.0f}" if column.name.endswith(" score") else "{:.2f}"
            numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
            return column.astype(float).map(digits.format) if numeric else column
        shown = table.apply(printed)
    return hashlib.sha256(shown.to_csv(index=False).encode()).hexdigest()[:16]


def discussion_parts(text):
    """A discussion file's parts: (regime or None for the whole table, the fingerprint it was written from, its
    text). Each part is headed by a FINGERPRINT line (the whole table) or a PART_FINGERPRINT line (the rows of
    one regime, for Table 1, whose regimes are complete at different times); a file without one is one part
    written from no known numbers."""
    heads = list(HEAD.finditer(text))
    if not heads or heads[0].start() != 0:
        return [(None, None, text)]
    ends = [h.start() for h in heads[1:]] + [len(text)]
    return [(h["regime"], h["fingerprint"], text[h.end():end].strip()) for h, end in zip(heads, ends)]


def discussion(table, scale, experiment, root=DISCUSSION):
    """The hand-written discussion of an experiment, each part shown only if it was written from these numbers
    (its fingerprint matches the table's, or its regime's rows'); a part that was not says it is withheld, why,
    and the fingerprint to write it from."""
    path = root / scale / f"{experiment}.md"
    if not path.exists():
        return []
    rel = path.relative_to(grid.ROOT) if path.is_relative_to(grid.ROOT) else path
    lines, shown = [], False
    for regime, written_from, text in discussion_parts(path.read_text()):
        # a regime's part is written from its own rows' numbers; the two regimes' comparison is in every row
        rows = table if regime is None else table[table.regime == regime].drop(columns=list(REGIMES_COLUMNS),
                                                                               errors="ignore")
        fingerprint = table_fingerprint(rows)
        if written_from == fingerprint and len(rows):
            lines += [text, ""]
            shown = True
        else:
            part, numbers = (f"`{rel}`", "this table's") if regime is None else (
                f"the {regime} part of `{rel}`", f"the table's {regime} rows'")
            lines += [f"**Discussion withheld:** {part} was written from other numbers than {numbers} (fingerprint "
                      f"{fingerprint}); it needs rewriting for these.", ""]
    return ([f"**Discussion** (written by hand from the numbers above, `{rel}`; the tables and readings are "
             "generated, this text is not).", ""] if shown else []) + lines


def seed_caveat(seeds, scope=""):
    """Why the seed-bootstrap statements above are optimistic, for `seeds` runs per cell (the fewest of any
    cell, in a partial report); `scope` names what it is about when parts differ (e.g. 'ppo1 regime')."""
    how_sure = f"- How sure{f' ({scope})' if scope else ''}:"
    if seeds < 2:
        return (f"{how_sure} some cells have a single seed so far; a bootstrap over one seed has zero width, so their "
                "intervals, ranks and shares say nothing yet. Read them as one sample.")
    distinct = math.comb(2 * seeds - 1, seeds)
    return (f"{how_sure} every interval, rank and share above comes from resampling each cell's own {seeds} seeds. "
            f"That sees only the spread among those seeds and is too narrow: the bootstrap variance of a mean of "
            f"{seeds} is {seeds - 1}/{seeds} of the usual s²/n, and there are only {distinct} distinct resamples. Treat an "
            "ordering as settled only where the intervals are disjoint, and a share of 100% as 'these seeds agree'.")


def versions_text(runs):
    cols = [c for c in runs.columns if c.startswith("v_")]
    versions = runs[cols].drop_duplicates()
    lines = [", ".join(f"{c[2:]} {v}" for c, v in row.items()) for _, row in versions.iterrows()]
    return "; ".join(lines) + f". {code_text(runs)} CPU: {', '.join(runs.cpu.unique())}."


def runs_count(n):
    return f"{n} run" if n == 1 else f"{n} runs"


def code_text(runs):
    """Which code made the runs. A run's numbers depend on its code alone (the algorithm file and, since it
    exists, run_contract.py), so name the code by the fingerprint its runs recorded and say whether it is
    shown to compute what this checkout's code computes (experiments/code_versions.yaml); commits only say when."""
    files = []
    for (algo, sha), group in runs.groupby(["algo", "code_sha256"]):
        other = (" the same numbers as this checkout's" if grid.code_reason(algo, sha) is None
                 else " not shown to compute this checkout's numbers")
        files.append(f"{algo}.py {sha[:12]} ({runs_count(len(group))},{other})")
    dirty = int(runs.git_dirty.eq(True).sum())  # None: not recorded
    dirty_text = f", {runs_count(dirty)} from a working tree with uncommitted changes" if dirty else ""
    return (f"Code: by fingerprint (`experiments/code_versions.yaml`), {', '.join(files)}; the runs were started "
            f"at {runs.git_commit.nunique()} git commit(s) (run.json's `git_commit`){dirty_text}.")


def compute_text(scale_dir, runs):
    b = repack.benchmarks(scale_dir)  # each job's own file, or its row folded into benchmarks/train.tsv
    text = (f"{len(runs)} training runs, {runs.steps.sum():,} environment steps, "
            f"{runs.walltime_s.sum() / 3600:.2f} core-hours of training (sum of run.json wall times, one thread each); "
            f"largest peak resident memory of a run {runs.peak_rss_mb.max():.0f} MB.")
    if len(b):
        text += f" Snakemake benchmarks: {len(b)} jobs, {b.s.sum() / 3600:.2f} job-hours, max RSS {b.max_rss.max():.0f} MB."
    return text


def reading_curves(table, higher_than=None):
    """Each env's variants from best to worst mean: '>' where the two neighbours' 95% intervals are
    disjoint, '≈' where they overlap (the seeds do not separate them), '=' where the means print the same."""
    lines = []
    one_seed = set(table[table.seeds < 2].index) if "seeds" in table else set()  # no interval yet (a partial grid)

    def named(r):
        return f"{r.variant} ({r.mean:.1f}{', 1 seed' if r.Index in one_seed else ''})"

    for env, g in table.groupby("env", sort=False):
        order = list(g.sort_values("mean", ascending=False).itertuples())
        ranked = named(order[0])
        for above, r in zip(order, order[1:]):
            sign = ("=" if f"{r.mean:.1f}" == f"{above.mean:.1f}" else
                    ">" if r.ci_high < above.ci_low and not {r.Index, above.Index} & one_seed else "≈")
            ranked += f" {sign} {named(r)}"
        lines.append(f"- {env}: {ranked}.")
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
    if "seeds" in table:
        lines.append(seed_caveat(int(table.seeds.min())))
    return "\n".join(lines)


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

    for env, g in table.groupby("env", sort=False):
        lines.append(f"- {env}: best final score at {best_of(g, 'mean', 'p_best')}. Fastest learning (mean return "
                     f"over the whole run) at {best_of(g, 'speed_mean', 'speed_p_best')}. "
                     f"λ = 0 {score_at(g, 0)}, λ = 1 {score_at(g, 1)}.")
    fast_low, fast_high = gae_paper_range("cart-pole at gamma 0.99")
    lines.append(f"- The GAE paper's range is [{low:g}, {high:g}] (§7); its fastest improvement, on cart-pole, came "
                 f"from λ in [{fast_low:g}, {fast_high:g}] (Fig. 2). Both are TRPO results, not PPO ones.")
    lines.append(seed_caveat(int(table.seeds.min())))
    return "\n".join(lines)


def reading_objectives(table, steps=""):
    """Per code-level regime: ρ with the paper and what its interval says, best and worst setting, where
    'no clipping' lands; then the variants that are not in the paper; then the published context; then
    `steps`, the regimes' update sizes measured (regime_steps)."""
    lines = []
    for regime, rt in table.groupby("regime", sort=False):
        t1 = rt[rt.variant.map(paper_name).isin(TABLE1_SETTINGS)].dropna(subset=["paper"])
        if "rho" in t1 and t1.rho.notna().any():
            r = t1.iloc[0]
            verdict = ("excludes 0: the ordering agrees with the paper's" if r.rho_ci_low > 0 else
                       "excludes 0: the ordering runs against the paper's" if r.rho_ci_high < 0 else
                       "includes 0: these seeds cannot tell whether the ordering agrees with the paper's")
            lines.append(f"- **{regime} regime**: Spearman's ρ with the paper over {len(t1)} settings = {r.rho:.2f}, "
                         f"95% seed-bootstrap interval [{r.rho_ci_low:.2f}, {r.rho_ci_high:.2f}]; the interval {verdict}.")
            if checks := rho_checks_text(r):
                lines.append(f"  - What seed noise allows: {checks} {rerun_reading(r)}".rstrip())
        else:
            lines.append(f"- **{regime} regime**: no rank correlation with the paper yet: it needs at least 4 Table 1 "
                         f"settings with runs on the same envs ({len(t1)} of the {len(TABLE1_SETTINGS)} have runs so far).")
        if len(t1):
            has_runs = t1.filter(like=" seeds").notna()  # setting × env, in a partial grid
            aggregated = narrowed_envs(t1)
            if aggregated:  # a partial grid holding some envs whole
                lines.append(f"  - Over {len(aggregated)} env(s) so far, the ones holding every setting with all its "
                             f"seeds: {', '.join(aggregated)}. The means, ranks and ρ are over these; the other envs' "
                             "runs are in the per-env table below.")
            elif (has_runs.nunique() > 1).any():  # some env has runs of one setting and not of another
                lines.append(f"  - Caution: so far the settings have runs on different envs ({has_runs.sum(axis=1).min()} to "
                             f"{has_runs.sum(axis=1).max()} each), so each mean below is over its own envs: the best, the worst "
                             "and the ranks compare unlike things until every setting has runs on the same envs.")
            best, worst = t1.loc[t1["mean"].idxmax()], t1.loc[t1["mean"].idxmin()]
            contenders = t1[(t1.variant != best.variant) & (t1.p_best >= 0.05)]
            lines.append(f"  - best: {best.setting} ({best['mean']:.2f}, best in {best.p_best:.0%} of seed resamples"
                         + ("; also best in ≥ 5%: " + ", ".join(f"{c.setting} ({c.p_best:.0%})" for c in contenders.itertuples())
                            if len(contenders) else "") + "); the paper's best: Clipping, eps = 0.2 (0.82).")
            lines.append(f"  - worst: {worst.setting} ({worst['mean']:.2f}); the paper's worst: No clipping or penalty "
                         "(−0.39, driven by HalfCheetah).")
            none = t1[t1.variant.map(paper_name) == "ppo_none"]
            if len(none):
                n = none.iloc[0]
                lines.append(f"  - No clipping or penalty: {n['mean']:.2f} [{n.mean_ci_low:.2f}, {n.mean_ci_high:.2f}], "
                             f"rank {n['rank']:.0f} of {len(t1)} (interval {n.rank_ci_low:.0f}–{n.rank_ci_high:.0f}).")
            firm = t1[t1.rank_ci_low == t1.rank_ci_high]
            lines.append("  - settings whose rank is the same in 95% of resamples: " +
                         (", ".join(f"{r.setting} (rank {r.rank:.0f})" for r in firm.itertuples()) if len(firm) else "none") +
                         f"; the median width of a rank interval is {(t1.rank_ci_high - t1.rank_ci_low).median():.0f} places.")
        for r in rt[~rt.variant.map(paper_name).isin(TABLE1_SETTINGS)].dropna(subset=["mean"]).itertuples():
            lines.append(f"  - {r.setting}: {r.mean:.2f} [{r.mean_ci_low:.2f}, {r.mean_ci_high:.2f}] (not in the paper).")
    if comparison := regimes_text(table.iloc[0]):
        lines.append(f"- **ppo1 against ppo2**: {comparison}")
    engstrom = pd.read_csv(PUBLISHED / "engstrom2020.csv")
    hopper = engstrom[engstrom.env == "Hopper"].set_index("algo").value
    lines.append(f"- Published context: Engstrom et al. 2020 (Tables 2-3, Hopper-v2, 1M steps) find PPO-NoClip "
                 f"({hopper['PPO-NoClip']:.0f}) close to PPO ({hopper['PPO']:.0f}) and above PPO-M ({hopper['PPO-M']:.0f}) "
                 "when the code-level optimisations are on, but only with a 4-7× smaller, retuned policy step size and "
                 "gradient clipping; ours keeps the paper's 3e-4 for every setting. Andrychowicz et al. 2021 recommend the "
                 "clipped loss (start at ε = 0.25) and find no evidence that KL regularisers help "
                 "(`analysis/published/engstrom2020.csv`, `andrychowicz2021.csv`).")
    seeds = aggregated_seeds(table)
    if len(set(seeds.values())) == 1:
        lines.append(seed_caveat(min(seeds.values())))
    else:  # a partial grid: one regime complete, the other not yet
        lines += [seed_caveat(n, f"{regime} regime") for regime, n in seeds.items()]
    return "\n".join(lines) + (f"\n\n**How far each update moves the policy, measured.**\n\n{steps}" if steps else "")


RERUN_CONCLUSIONS = {"reaches": "seed noise alone can explain the disagreement",
                     "below": "seed noise alone does not explain the disagreement, and part of it is systematic "
                              "(task versions, code, normalisation anchors)",
                     "between": "seed noise explains much of the disagreement, and these seeds cannot tell whether "
                                "part of it is systematic"}


def rerun_verdict(r, suffix=""):
    """Where ρ with the paper (over all the settings, or with suffix '_without_none' without No clipping) stands
    against what seed noise alone allows: (a RERUN_CONCLUSIONS key, the facts), or None where not measured."""
    r = r.reindex(r.index.union(RHO_COLUMNS))  # a table without these columns has measured none of them
    low, high = r["rho_ci_low" + suffix], r["rho_ci_high" + suffix]
    rerun, rerun_min, rerun_max = r["rerun_rho" + suffix], r["rerun_rho_min" + suffix], r["rerun_rho_max" + suffix]
    if pd.isna(r["rho" + suffix]) or pd.isna(rerun):
        return None
    what = f"{'without No clipping' if suffix else 'over all the settings'}, ρ's interval [{low:.2f}, {high:.2f}]"
    if high >= rerun:
        return "reaches", f"{what} reaches a rerun's {rerun:.2f}"
    if high < rerun_min:
        return "below", f"{what} lies below even the least agreeing pair's {rerun_min:.2f}"
    return "between", (f"{what} ends below a rerun's {rerun:.2f} but inside the pairs' range "
                       f"{rerun_min:.2f}–{rerun_max:.2f}")


def rerun_reading(r):
    """The reading's sentence on what seed noise allows ρ (rho_checks_text, then rerun_verdict's conclusions)."""
    verdicts = [v for v in (rerun_verdict(r), rerun_verdict(r, "_without_none")) if v]
    if not verdicts:
        return ""
    text = "So, if the paper's 3-seed grid is about as noisy as ours: "
    if len({kind for kind, _ in verdicts}) == 1:
        return text + "; ".join(fact for _, fact in verdicts) + f". {RERUN_CONCLUSIONS[verdicts[0][0]].capitalize()}."
    return text + "; ".join(f"{fact}: {RERUN_CONCLUSIONS[kind]}" for kind, fact in verdicts) + "."


def aggregated_seeds(table):
    """Per regime, the fewest seeds of any cell its Table 1 aggregates resample: its cells on the envs it
    aggregates over (a partial grid's other envs appear only in the per-env table)."""
    return {regime: int(rt[[f"{env} seeds" for env in aggregated_envs(rt)]].min().min())
            for regime, rt in table.groupby("regime", sort=False)}


def published_placements(table, steps):
    """Ours against each published number matched to a variant (analysis/published/final_returns.csv), at the
    published budget only: one dict per (our cell, published number) with `where` the published mean lies
    against our 95% seed-bootstrap interval (None for a one-seed cell, which has no interval) and the ratio of
    the means (None unless both are positive); and the published results measured at another budget."""
    published = pd.read_csv(PUBLISHED / "final_returns.csv")
    placed, other_budget = [], set()
    for r in table.itertuples():
        for source, algo in PUBLISHED_MATCH.get(r.variant, []):
            for p in published[(published.source == source) & (published.algo == algo) &
                               (published.env == r.env.rsplit("-", 1)[0])].itertuples():
                if abs(p.steps - steps) > 0.01 * p.steps:
                    other_budget.add(f"{source} {algo}")
                    continue
                where = (None if getattr(r, "seeds", 2) < 2 else "inside" if r.ci_low <= p.value <= r.ci_high
                         else "above" if p.value > r.ci_high else "below")
                placed.append({"ours": r, "published": p, "label": f"{source} {algo}", "where": where,
                               "ratio": r.mean / p.value if p.value > 0 and r.mean > 0 else None})
    return placed, other_budget


def placement_summary(placed):
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
    order = [(v, f"{source} {algo}") for v, matches in PUBLISHED_MATCH.items() for source, algo in matches]
    summary = pd.DataFrame([rows[key] for key in order if key in rows])
    if not summary["one seed, not placed"].any():
        summary = summary.drop(columns="one seed, not placed")
    return summary.to_markdown(index=False)


def reading_published(table, steps):
    """A summary per (our variant, published result), then each env: whether the published mean lies inside
    our 95% seed-bootstrap interval, and the ratio of the means. Only at the published budget; at another
    budget the comparison says nothing and the reading says so."""
    placed, other_budget = published_placements(table, steps)
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
        lines = [placement_summary(placed), ""] + lines + [
            "- A published mean is one number from other seeds, code and environment versions (v2-v4, ours "
            "-v5): 'inside' (not told apart) means our seeds do not tell us apart from it, not that the two agree "
            "exactly."]
    if other_budget:
        lines.append(f"- Not compared: {', '.join(sorted(other_budget))}, measured at another budget than this "
                     f"scale's {steps:,} steps.")
    return "\n".join(lines)


def reading_algorithms(table, runs, progress, config, scale):
    """The orderings, then ours against the published numbers, how the compared setups differ, and how much
    of its initial exploration noise each policy keeps (one of those differences, measured)."""
    variants = grid.experiment_variants(config, scale, "algorithms")
    sections = [("Against the published numbers.", reading_published(table, config["scales"][scale]["steps"])),
                ("How the compared setups differ.", setups.reading(runs, variants)),
                ("What changed in the environments.",
                 setups.env_changes(config["scales"][scale]["experiments"]["algorithms"]["envs"])),
                ("Policy noise at the end, measured.",
                 setups.noise(runs, progress, grid.experiment_runs(config, scale, "algorithms")))]
    return "\n\n".join([reading_curves(table)] + [f"**{title}**\n\n{text}" for title, text in sections if text])


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


def late_diagnostics(progress, planned):
    """Two diagnostics of how much noise a policy-gradient weight leaves, per variant and env of the planned runs
    (grid.Run tuples): the batch gradient's norm (median over the second half of each run) and V's explained
    variance (mean over the last 10%; only the weights that fit V log it). Cells: mean over seeds (min–max)."""
    variants = list(dict.fromkeys(r.variant for r in planned))
    envs = sorted({r.env for r in planned})
    seeds = len({r.seed for r in planned})
    progress = stats.planned_rows(progress, planned)
    parts = []
    for title, column, start, statistic, digits in [
            ("Norm of the batch gradient (the policy's one gradient step per batch), median over the second "
             "half of each run", "grad_norm", 0.5, "median", "#.3g"),
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


def regime_steps(table, progress, planned):
    """How far each update moves the policy, and how broad it ends, per Table 1 setting and env, the two regimes
    side by side ('ppo2 / ppo1'): the KL from the old to the new policy per update (approx_kl, median over the
    second half of each run) and the policy's σ over its last 10% (stats.gaussian_sigma of the logged entropy,
    mean). Cells: mean over seeds. Then ppo1's KL per update as a multiple of ppo2's, per family of settings."""
    regimes = list(dict.fromkeys(table.regime))
    if len(regimes) < 2:
        return ""
    settings = table.assign(key=table.variant.map(paper_name)).drop_duplicates("key").set_index("key").setting
    variants = {r.variant for r in planned}
    envs = sorted({r.env for r in planned})
    seeds = len({r.seed for r in planned})
    per_run = update_measures(progress, planned)
    if not per_run:
        return ""
    measured = {column: frame.groupby(["variant", "env"])[column].agg(["mean", "size"])
                for column, frame in per_run.items()}
    parts = []
    for column, (title, _, _, digits) in UPDATE_MEASURES.items():
        cells = measured[column]

        def cell(key, regime, env):
            variant = regime_variant(key, regime)
            if (variant, env) not in cells.index:
                return "missing run" if variant in variants else "not planned"
            c = cells.loc[(variant, env)]
            return f"{c['mean']:{digits}}" + (f" ({c['size']:.0f} of {seeds} seeds)" if c["size"] < seeds else "")

        wide = pd.DataFrame({env: [" / ".join(cell(key, regime, env) for regime in regimes) for key in settings.index]
                             for env in envs}, index=pd.Index(settings.values, name=" / ".join(regimes)))
        parts += [f"{title}; mean over seeds ({' / '.join(regimes)}):", "", wide.to_markdown(disable_numparse=True), ""]
    # ppo1 against ppo2, cell by cell where both have runs, as a median per family of objectives
    kl = measured["approx_kl"]["mean"]
    ratio = pd.Series({(key, env): kl.get((regime_variant(key, "ppo1"), env), np.nan)
                       / kl.get((regime_variant(key, "ppo2"), env), np.nan)
                       for key in TABLE1_SETTINGS for env in envs}).dropna()
    families = {"clipping": "ppo_clip_", "adaptive KL": "ppo_kl_adaptive_", "fixed KL": "ppo_kl_fixed_",
                "no clipping or penalty": "ppo_none"}
    found = [(name, r) for name, prefix in families.items()
             if len(r := ratio[[key.startswith(prefix) for key, _ in ratio.index]])]
    if found:
        parts.append("- ppo1's KL per update as a multiple of ppo2's, setting by setting on each env (Table 1 settings "
                     "with runs in both regimes): " + "; ".join(
                         f"{name} median {r.median():.2f}× (range {r.min():.2f}–{r.max():.2f}, {len(r)} cell{'s' * (len(r) > 1)})"
                         for name, r in found) + ".")
    return "\n".join(parts).strip()


def reading_time_limits(table, progress, planned):
    """The orderings per env; each difference of the table and whether its interval excludes 0; where the seeds see
    a gap between the regimes as they run, how much of it is left once both bootstrap the time limit; then each
    cell's update size and σ at the end (UPDATE_MEASURES)."""
    scores = table[table.kind == "score"].dropna(subset=["mean"]).reset_index(drop=True)
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
            lines.append(f"- {env}: {gap.regime} is {gap['mean']:+.1f} as the regimes run and {left['mean']:+.1f} with "
                         f"the time limit {grid.TIME_LIMITS[0]} in both (an interval that "
                         + ("includes" if left.ci_low <= 0 <= left.ci_high else "excludes") + " 0): the time limit "
                         f"accounts for {1 - left['mean'] / gap['mean']:.0%} of the gap (of the means).")
    parts = [reading_curves(scores)]
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
    sections = [("Gradient noise and value fit, measured.", late_diagnostics(progress, planned)),
                ("Gradient noise at one fixed policy, measured.", fixed_policy_noise(scale_dir, config, scale)),
                ("Policy noise at the end, measured.", setups.noise(runs, progress, planned))]
    return "\n\n".join([reading_curves(table, ("vpg_total_return", ["vpg_value_baseline", "vpg_gae"]))]
                       + [f"**{title}**\n\n{text}" for title, text in sections if text])


def budget_caveat(scale_dir, config, scale):
    """Below the paper's 1M steps a score measures early learning speed: say so, and put the paper scale's
    1M-step runs (results/paper, if there) beside the same variants at this scale."""
    steps = config["scales"][scale]["steps"]
    if steps >= 1_000_000:
        return []
    lines = ["## Read this first: the step budget", "",
             f"Runs at this scale train for {steps:,} steps; the PPO paper's Table 1 and every 1M-step reference "
             "train for 1,000,000. A score here measures early learning speed, not final performance, and orderings "
             "can change by 1M (a setting that learns fast and then degrades ranks high here). Compare orderings "
             "with Table 1 at the paper scale; here they are a preview."]
    paper = pathlib.Path(scale_dir).parent / "paper"
    try:
        runs, _, episodes = load_runs(paper, allow_mixed_versions=True)
        ours = load_runs(scale_dir, allow_mixed_versions=True)[2]
    except RunContractError:
        return lines + [""]
    rows = []
    for (variant, env), g in stats.final_scores(episodes).groupby(["variant", "env"]):
        if runs[(runs.variant == variant) & (runs.env == env)].steps.max() < 990_000:
            continue
        here = ours[(ours.variant == variant) & (ours.env == env)]
        if not len(here):  # a setting this scale does not run
            continue
        here = stats.final_scores(here).score
        rows.append({"variant": variant, "env": env,
                     f"{scale} ({steps // 1000}k steps)": f"{here.mean():.0f} ± {here.std(ddof=0):.0f} ({len(here)} seeds)",
                     "paper scale (1M steps)": f"{g.score.mean():.0f} ± {g.score.std(ddof=0):.0f} ({len(g)} seeds)"})
    if rows:
        lines += ["", f"The same variants at 1M steps (`{paper}`, final score, mean ± std over seeds):", "",
                  pd.DataFrame(rows).to_markdown(index=False)]
    return lines + [""]


def grid_progress(config, scale, status):
    """The status lines of a partial or flagged report: finished / planned runs per experiment (each
    experiment's section names its missing runs), then what is stale."""
    lines = []
    if status.missing:
        missing, rows = set(status.missing), []
        for experiment in analysed(config, scale):  # the whole grid's status, counted per experiment
            planned = grid.experiment_runs(config, scale, experiment)
            absent = sum(r in missing for r in planned)
            rows.append({"experiment": experiment, "planned runs": len(planned),
                         "finished": len(planned) - absent, "missing": absent})
        rows.append({"experiment": "all (a run shared by experiments counts once)", "planned runs": len(status.planned),
                     "finished": len(status.planned) - len(status.missing), "missing": len(status.missing)})
        lines += [f"- **Partial:** {len(status.missing)} of the {len(status.planned)} planned runs are missing; each "
                  "experiment's section below names its missing runs.", "", pd.DataFrame(rows).to_markdown(index=False), ""]
    return lines + [f"- {line}" for line in status.lines() if not line.startswith("**Partial:**")]


def analysed(config, scale):
    return [e for e in EXPERIMENTS if e in config["scales"][scale]["experiments"]]


def report(scale_dir, config, scale, partial=False, allow_stale=False):
    scale_dir = pathlib.Path(scale_dir)
    status = GridStatus(scale_dir, config, scale, analysed(config, scale), gradient_noise=True).check(partial, allow_stale)
    runs, progress, _ = load_runs(scale_dir, only=status.found())
    sc = config["scales"][scale]
    flags = (" --partial" if partial else "") + (" --allow-stale" if allow_stale else "")
    parts = [f"# pgrepro results: {scale} scale", "",
             f"Generated {datetime.date.today().isoformat()} by `python -m analysis.report {scale_dir} --scale {scale}"
             f"{flags}` from the runs under `{scale_dir}/runs` (regenerate everything with "
             f"`snakemake --cores 2 --config scale={scale}`).", ""]
    if status.missing or status.stale or status.noise_missing or status.noise_stale:
        parts += ["## Status: not the whole planned grid", ""] + grid_progress(config, scale, status) + [
            "- A table cell with fewer seeds than planned says how many it has.", ""]
    parts += budget_caveat(scale_dir, config, scale)
    parts += [
             "## Protocol", "",
             f"- Steps per run: {sc['steps']:,}" + (f" (per env: {sc['env_steps']})" if sc.get("env_steps") else "") + ".",
             "- Score of a run: mean return of its last 100 training episodes (PPO paper §6.1), raw reward.",
             "- Normalised score: (score − random) / (best − random) per env; `random` = mean return of "
             f"{sc['random_episodes']} uniform-random episodes (the random experiment), `best` = the best setting's "
             "mean in the sweep (Table 1's rule).",
             f"- Intervals: 95% percentile bootstrap, {stats.BOOTSTRAP_REPS:,} resamples, seed {stats.BOOTSTRAP_SEED}; "
             "stratified by env when aggregating over envs (rliable's definitions); IQM = mean of the middle 50% of runs.",
             "- Learning curves: each run's episode returns averaged over 50 equal step intervals, carried forward "
             "through intervals without a finished episode; mean over seeds with a 95% bootstrap band.",
             "- Learning speed of a run (GAE-λ section): the mean of its learning curve over those intervals, i.e. the "
             "area under the curve divided by the steps; it rewards learning early as well as ending high.", ""]
    for name in ["random"] + EXPERIMENTS:
        chosen = sc["experiments"].get(name)
        if chosen:
            parts.append(f"- `{name}`: envs {', '.join(chosen['envs'])}; seeds {chosen['seeds']}; variants "
                         f"{', '.join(grid.experiment_variants(config, scale, name)) or '(none)'}.")
    rnd = load_random(scale_dir)
    if len(rnd):
        parts += ["", "Random-policy scores (the 0 of the normalised scores): " + "; ".join(
            f"{env} {g.ep_return.mean():.1f}" for env, g in rnd.groupby("env")) + "."]
    parts += ["", "## Versions and compute", "", versions_text(runs), "", compute_text(scale_dir, runs), ""]
    readings = {"baselines": lambda t: reading_baselines(t, runs, progress, config, scale, scale_dir),
                "gae_lambda": reading_gae,
                "ppo_objectives": lambda t: reading_objectives(
                    t, regime_steps(t, progress, grid.experiment_runs(config, scale, "ppo_objectives"))),
                "time_limits": lambda t: reading_time_limits(
                    t, progress, grid.experiment_runs(config, scale, "time_limits")),
                "algorithms": lambda t: reading_algorithms(t, runs, progress, config, scale)}
    for name in EXPERIMENTS:
        table_md = scale_dir / "tables" / f"{name}.md"
        if name not in sc["experiments"] or not table_md.exists():
            continue
        table = pd.read_csv(scale_dir / "tables" / f"{name}.csv")
        parts += [f"## {name}: {config['experiments'][name]['description']}", "",
                  f"![{name}](figures/{name}.png)", "", table_md.read_text(), ""]
        if len(table):  # a partial report may have no run of this experiment yet
            parts += ["**Reading.**", "", readings[name](table), ""] + discussion(table, scale, name)
    parts += ["## Caveats", "",
              "- Published numbers were measured on other environment versions (v1-v4; ours are -v5, "
              "MuJoCo 4.0) and, at this scale, often at other step budgets: compare orderings, not decimals.",
              "- Table 1's absolute values are not reproducible: the paper does not publish its per-env random "
              "and best anchors; our normalisation uses our own.", ""]
    (scale_dir / "REPORT.md").write_text("\n".join(parts))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scale_dir")
    parser.add_argument("--scale", choices=["smoke", "quick", "paper"], required=True)
    parser.add_argument("--config", default=str(grid.CONFIG), help="the grid's YAML file")
    parser.add_argument("--config-json", help="the grid as JSON (the workflow passes its merged config)")
    add_grid_flags(parser)
    parser.error = lambda message: sys.exit(f"error: {message} (python -m analysis.report --help)")  # one line
    args = parser.parse_args()
    try:  # everything is checked before anything is written
        report(args.scale_dir, grid.from_cli(args.config, args.config_json), args.scale, args.partial, args.allow_stale)
    except (RunContractError, grid.ConfigError) as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
