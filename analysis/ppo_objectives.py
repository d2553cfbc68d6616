"""The PPO paper's Table 1 under two code-level regimes (ppo2 and the paper-era ppo1): normalised scores, ranks,
Spearman's ρ with the paper and what seed noise allows it, the regimes against each other, and how far each
update moves the policy."""
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from analysis import setups, stats
from analysis.common import (FIGURE_STYLE, IMPROVEMENT_MEANS, MISSING, NOT_ON_WHOLE_ENVS, PROFILE_TAUS, PUBLISHED,
                             UPDATE_MEASURES, ci_text, collapse_reading, improvement_rows, improvement_text,
                             seed_caveat, seeds_text, two_groups_text, update_measures)
from experiments import grid

REGIMES = ("ppo2", "ppo1")  # ppo.py --regime: the code-level regimes Table 1 runs under (ppo.py's REGIMES table)
OBJECTIVE_FAMILIES = {"clip": "clipping", "kl_adaptive": "adaptive KL", "kl_fixed": "fixed KL",
                      "none": "no clipping or penalty"}  # ppo.py --objective


class Identity(NamedTuple):
    """What a variant is in Table 1, read from its resolved arguments: the setting (a row of ppo_table1.csv, or
    the variant's own name where none matches), the code-level regime and the objective."""
    setting: str
    regime: str
    objective: str


def load_paper():
    """analysis/published/ppo_table1.csv indexed by setting: Table 1's settings (those with a paper score) and the
    ones we add, each with the arguments (`args`, setups.satisfies) that make a run of ppo.py that setting."""
    return pd.read_csv(PUBLISHED / "ppo_table1.csv").set_index("setting")


def paper_settings(paper):
    """Table 1's settings, the rows with a paper score, in the paper's order."""
    return list(paper.index[paper.paper_normalised_score.notna()])


def identify(config, scale, variants, paper):
    """{variant: Identity} from each variant's resolved arguments (grid.expected_args), never from its name."""
    env = grid.env_order(config, scale)[0]
    found = {}
    for variant in variants:
        algo, args = config["variants"][variant]["algo"], grid.expected_args(config, scale, grid.Run(variant, env, 1))
        hits = [setting for setting, spec in paper.args.items() if setups.satisfies(algo, args, spec)]
        found[variant] = Identity(hits[0] if hits else variant, args.get("regime", ""), args.get("objective", ""))
    return found


def variant_of(data, setting, regime):
    """The experiment's variant for a setting under a regime, or None."""
    return next((v for v in data.variants if data.table1[v][:2] == (setting, regime)), None)


RHO_CHECKS = ("seed_pair_rho", "seed_pair_rho_min", "seed_pair_rho_max", "rerun_rho", "rerun_rho_min", "rerun_rho_max",
              "held_out_rho", "held_out_rho_predicted", "half_seeds", "half_other_seeds", "half_rho",
              "half_rho_predicted")  # how far seed noise lets ρ reach (objectives_one_regime)


RHO_COLUMNS = ("rho", "rho_ci_low", "rho_ci_high") + RHO_CHECKS + tuple(
    c + "_without_none" for c in ("rho", "rho_ci_low", "rho_ci_high") + RHO_CHECKS)


DRAW_COLUMNS = ("draw_rho", "draw_rho_low", "draw_rho_high", "draw_paper_rho", "draw_paper_below", "draws")
DRAW_COLUMNS += tuple(c + "_without_none" for c in DRAW_COLUMNS)  # only in a table that measured them (6+ seeds)
PAPER_RERUN_COLUMNS = ("paper_rerun_rho", "paper_rerun_rho_min", "paper_rerun_rho_max")  # our grid against a
PAPER_RERUN_COLUMNS += tuple(c + "_without_none" for c in PAPER_RERUN_COLUMNS)  # 3-seed one: only with other seeds
PAPER_SEEDS = 3  # Schulman et al. 2017, §6.1: each setting on 7 environments with 3 random seeds

MIN_SETTINGS_FOR_RHO = 4  # fewer settings (a partial grid) give a rank correlation that means nothing; and all on the same envs


def paper_ranks(paper):
    """Each Table 1 setting's rank in the paper's column, among all 11 (1 = best)."""
    return paper.paper_normalised_score.reindex(paper_settings(paper)).rank(ascending=False)


def objectives_one_regime(data, regime, paper):
    """Table 1 for one code-level regime: scores normalised with this regime's own best setting per env
    (Table 1's rule), mean and IQM with intervals, ranks with their seed-bootstrap intervals, P(best) and
    Spearman's ρ with the paper's column (point and interval)."""
    variants = [v for v in data.variants if data.table1[v].regime == regime]
    t1 = [v for s in paper_settings(paper) if (v := variant_of(data, s, regime))]
    all_scores = data.scores[data.scores.variant.isin(variants)]
    envs = whole_envs(all_scores[all_scores.variant.isin(t1)], t1, data.planned_seeds)
    scores = all_scores[all_scores.env.isin(envs)]  # what the aggregates, ranks and ρ are over
    t1_scores = scores[scores.variant.isin(t1)]
    if t1_scores.empty:
        return pd.DataFrame()
    best = stats.best_of_sweep(t1_scores)
    scores = scores.assign(normalised=stats.normalise(scores, data.random_score, best))
    rows = []
    for variant in variants:
        g, raw = scores[scores.variant == variant], all_scores[all_scores.variant == variant]
        if raw.empty:
            continue
        setting = data.table1[variant].setting
        row = dict(regime=regime, variant=variant, setting=setting, objective=data.table1[variant].objective,
                   paper=paper.paper_normalised_score.get(setting, np.nan), runs=len(g),
                   aggregated_envs=", ".join(sorted(envs)))
        if len(g):
            mean = stats.stratified_bootstrap_ci(g.normalised, g.env, stats.aggregate_mean)
            iqm = stats.stratified_bootstrap_ci(g.normalised, g.env, stats.iqm)
            row.update(mean=mean[0], mean_ci_low=mean[1], mean_ci_high=mean[2], iqm=iqm[0], iqm_ci_low=iqm[1],
                       iqm_ci_high=iqm[2])
        for env, e in raw.groupby("env"):  # every env's raw score, held whole or not
            row[f"{env} score"], row[f"{env} seeds"] = e.score.mean(), len(e)
        rows.append(row)
    table = pd.DataFrame(rows)
    # How firmly do these seeds rank the Table 1 settings? Resample each (setting, env) cell's seeds,
    # renormalise each replicate (its own best setting per env = 1) and rank the settings in it.
    in_t1 = table.variant.isin(t1)
    replicates = stats.normalise_replicates(stats.bootstrap_cell_means(t1_scores), data.random_score)
    table = table.merge(stats.ranking_uncertainty(replicates), left_on="variant", right_index=True, how="left")
    table.loc[in_t1, "rank"] = table[in_t1]["mean"].rank(ascending=False)
    table.loc[in_t1, "paper_rank"] = table[in_t1].setting.map(paper_ranks(paper))  # of all 11
    paper_t1 = table[in_t1].set_index("variant").paper.dropna()
    same_envs = t1_scores.groupby("variant").env.agg(frozenset).nunique() == 1  # else scores on different tasks
    if len(paper_t1) >= MIN_SETTINGS_FOR_RHO and same_envs:  # Spearman's ρ with the paper, at our points and per replicate
        rho_reps = stats.spearman(replicates, paper_t1)
        table["rho"] = stats.spearman(table.set_index("variant")["mean"], paper_t1)
        table["rho_ci_low"], table["rho_ci_high"] = np.nanquantile(rho_reps, [0.025, 0.975])
        # What could ρ reach? Seed noise alone caps how well two grids of 3 seeds can agree: our own seeds'
        # orderings against each other (stats.seed_split_agreement), and Spearman–Brown for two whole grids
        # (stats.predicted_agreement). Over all the settings, and without the one both put last.
        seeds = t1_scores.seed.nunique()
        others = paper_t1.drop(variant_of(data, paper.paper_normalised_score.idxmin(), regime), errors="ignore")
        for suffix, ranked in (("", paper_t1.index), ("_without_none", others.index)):
            if len(ranked) < MIN_SETTINGS_FOR_RHO or (suffix and len(ranked) == len(paper_t1)):
                continue
            if suffix:
                table["rho" + suffix] = stats.spearman(table.set_index("variant")["mean"], others)
                table["rho_ci_low" + suffix], table["rho_ci_high" + suffix] = np.nanquantile(
                    stats.spearman(replicates, others), [0.025, 0.975])
            # Could the paper's column be a 3-seed grid drawn like ours? Only with twice the paper's seeds or more
            if drawn := stats.draw_agreement(t1_scores, data.random_score, others if suffix else paper_t1, PAPER_SEEDS):
                draws, paper_rhos = drawn
                table["draw_rho" + suffix] = draws.mean()
                table["draw_rho_low" + suffix], table["draw_rho_high" + suffix] = np.quantile(draws, [0.025, 0.975])
                table["draw_paper_rho" + suffix] = paper_rhos.mean()
                # the share of splits in which the paper agrees with our other seeds less than our own draw does
                table["draw_paper_below" + suffix] = np.mean(paper_rhos < draws) + np.mean(paper_rhos == draws) / 2
                table["draws" + suffix] = len(draws)
            split = stats.seed_split_agreement(t1_scores, data.random_score, ranked)
            if not split:
                continue
            pairs, held_out = split
            table["seed_pair_rho" + suffix] = np.mean(pairs)
            table["seed_pair_rho_min" + suffix], table["seed_pair_rho_max" + suffix] = min(pairs), max(pairs)
            for name, r in (("rerun_rho", np.mean(pairs)), ("rerun_rho_min", min(pairs)),
                            ("rerun_rho_max", max(pairs))):
                table[name + suffix] = stats.predicted_agreement(r, seeds, seeds)
                if seeds != PAPER_SEEDS:  # ρ with the paper sets our grid against one of the paper's 3 seeds
                    table[name.replace("rerun", "paper_rerun") + suffix] = stats.predicted_agreement(r, seeds,
                                                                                                     PAPER_SEEDS)
            if held_out:  # the model's check: one seed against the others, observed and predicted
                table["held_out_rho" + suffix] = np.mean(held_out)
                table["held_out_rho_predicted" + suffix] = stats.predicted_agreement(np.mean(pairs), 1, seeds - 1)
            halves = stats.half_split_agreement({regime: t1_scores}, data.random_score, ranked) if not suffix else None
            if halves:  # and with as many seeds on each side as the seeds allow
                k, agreement = halves
                table["half_seeds"], table["half_other_seeds"] = k, seeds - k
                table["half_rho"] = np.nanmean(agreement[regime])
                table["half_rho_predicted"] = stats.predicted_agreement(np.mean(pairs), k, seeds - k)
    return table


REGIMES_COLUMNS = ("regimes_envs", "regimes_rho", "regimes_rho_ci_low", "regimes_rho_ci_high", "regimes_rho_ceiling",
                   "regimes_rho_paper_ppo1", "regimes_rho_paper_ppo2", "delta_rho", "delta_rho_ci_low",
                   "delta_rho_ci_high", "regimes_half_seeds", "regimes_half_other_seeds", "regimes_half_ppo1",
                   "regimes_half_ppo2", "regimes_half_across")  # ppo1 against ppo2 (regime_comparison): in every row
OVERPREDICTED = 0.05  # a Spearman–Brown prediction this far above the ρ observed between halves is called out


def regime_comparison(data, paper):
    """Does the paper-era code (ppo1) order the 11 Table 1 settings differently from ppo2, and closer to the
    paper? Over the envs where both regimes hold every setting with all its seeds, each regime normalised on
    its own (Table 1's rule): Spearman's ρ between the two regimes' orderings with its seed-bootstrap interval;
    the ρ seed noise alone would leave if both regimes had the same true ordering, modelled (√(R₁ R₂) with R each
    regime's Spearman–Brown reliability of a grid of its seeds; Spearman's attenuation, 1904) and measured
    (stats.half_split_agreement: disjoint halves of the seeds, each regime against itself and against the other,
    both directions averaged); and ρ(ppo1, paper) − ρ(ppo2, paper) with its interval. The two regimes' runs are
    resampled independently (different RNG streams): a conservative choice, since runs that share a seed number
    also share their reset streams. A dict of REGIMES_COLUMNS, or {} until both regimes hold some env whole."""
    settings = paper_settings(paper)
    paper_t1 = paper.paper_normalised_score.reindex(settings)
    regime_scores, envs = {}, None
    for regime in REGIMES:
        t1 = [variant_of(data, s, regime) for s in settings]
        if None in t1:
            return {}
        scores = data.scores[data.scores.variant.isin(t1)]
        whole = set(complete_envs(scores, t1, data.planned_seeds))
        envs = whole if envs is None else envs & whole
        regime_scores[regime] = scores.assign(variant=scores.variant.map(lambda v: data.table1[v].setting))
    if not envs:
        return {}
    means, replicates, reliability = {}, {}, {}
    regime_scores = {regime: scores[scores.env.isin(envs)] for regime, scores in regime_scores.items()}
    for seed_offset, (regime, scores) in enumerate(regime_scores.items()):
        means[regime] = stats.normalised_means(scores, data.random_score)
        replicates[regime] = stats.normalise_replicates(
            stats.bootstrap_cell_means(scores, seed=stats.BOOTSTRAP_SEED + seed_offset), data.random_score)
        split = stats.seed_split_agreement(scores, data.random_score)
        seeds = scores.seed.nunique()
        reliability[regime] = stats.predicted_agreement(np.mean(split[0]), seeds, seeds) if split else np.nan
    rho_reps = stats.spearman_rows(replicates["ppo1"][settings], replicates["ppo2"])
    rho_paper = {regime: stats.spearman(means[regime], paper_t1) for regime in means}
    delta_reps = stats.spearman(replicates["ppo1"], paper_t1) - stats.spearman(replicates["ppo2"], paper_t1)
    halves = stats.half_split_agreement(regime_scores, data.random_score, settings)
    measured = (np.nan,) * 5  # fewer than 4 seeds: no halves
    if halves:
        k, agreement = halves
        across = np.concatenate([agreement[("ppo1", "ppo2")], agreement[("ppo2", "ppo1")]])  # both directions
        measured = (k, regime_scores["ppo1"].seed.nunique() - k, np.nanmean(agreement["ppo1"]),
                    np.nanmean(agreement["ppo2"]), np.nanmean(across))
    return dict(zip(REGIMES_COLUMNS, (
        ", ".join(sorted(envs)), stats.spearman(means["ppo1"], means["ppo2"][settings]),
        *np.nanquantile(rho_reps, [0.025, 0.975]), np.sqrt(reliability["ppo1"] * reliability["ppo2"]),
        rho_paper["ppo1"], rho_paper["ppo2"], rho_paper["ppo1"] - rho_paper["ppo2"],
        *np.nanquantile(delta_reps, [0.025, 0.975]), *measured)))


COMMON_COLUMNS = ("common_envs", "common_mean", "common_ci_low", "common_ci_high", "common_rho", "common_rho_ci_low",
                  "common_rho_ci_high", "common_delta_rho", "common_delta_rho_ci_low", "common_delta_rho_ci_high",
                  "regime_diff", "regime_diff_ci_low", "regime_diff_ci_high", "regime_diff_family_low",
                  "regime_diff_family_high")


def common_normalised(data, table):
    """Every run's score on the common scale (common_scale): per env, random → 0 and the best Table 1 setting of
    either regime → 1, over the envs both regimes aggregate: (those envs, the scores frame with a `normalised`
    column), or None with fewer than two regimes or no Table 1 run on those envs."""
    regimes = list(dict.fromkeys(table.regime))
    if len(regimes) < 2:
        return None
    envs = sorted(set.intersection(*(set(aggregated_envs(table[table.regime == r])) for r in regimes)))
    scores = data.scores[data.scores.env.isin(envs) & data.scores.variant.isin(table.variant)]
    t1_scores = scores[scores.variant.isin(table[table.paper.notna()].variant)]
    if t1_scores.empty:
        return None
    best = stats.best_of_sweep(t1_scores)  # per env, over both regimes' Table 1 settings
    return envs, scores.assign(normalised=stats.normalise(scores, data.random_score, best))


def common_scale(data, table, common):
    """Both regimes on one scale: per env, random → 0 and the best Table 1 setting of either regime → 1, over the
    envs both regimes aggregate. Each regime's own scale (Table 1's rule) says how its settings rank among
    themselves; this one says how far apart the regimes are, which their own scales hide (each regime's best is 1).
    Per variant, the mean normalised score with its stratified-bootstrap interval; per regime, ρ with the paper on
    this scale with its seed-bootstrap interval, and ρ(ppo1, paper) − ρ(ppo2, paper) with its interval from the
    same replicates (each renormalised by its own best of either regime); per Table 1 setting, ppo1 − ppo2 averaged
    over the envs with its t-interval (stats.combination_interval over the per-env cells' seeds, the anchors held
    fixed), and the same interval at Bonferroni's level 1 − 0.05/m for the m settings compared, so that all m
    hold their true differences together with 95% probability (regime_diff_family_*). `common` is
    common_normalised's result. A dict of COMMON_COLUMNS → {variant: value}, or {} with fewer than two regimes."""
    regimes = list(dict.fromkeys(table.regime))
    if common is None:
        return {}
    envs, normalised = common
    in_paper = table[table.paper.notna()]
    t1_scores = normalised[normalised.variant.isin(in_paper.variant)]
    columns = {c: {} for c in COMMON_COLUMNS}
    for variant, g in normalised.groupby("variant", sort=False):
        point, low, high = stats.stratified_bootstrap_ci(g.normalised, g.env, stats.aggregate_mean)
        columns["common_envs"][variant] = ", ".join(envs)
        columns["common_mean"][variant], columns["common_ci_low"][variant], columns["common_ci_high"][variant] = (
            point, low, high)
    replicates = stats.normalise_replicates(stats.bootstrap_cell_means(t1_scores), data.random_score)
    means = normalised.groupby("variant").normalised.mean()
    rhos = {}  # regime → (ρ with the paper, ρ per replicate)
    for regime in regimes:
        rows = in_paper[in_paper.regime == regime].set_index("variant")
        rows = rows[rows.index.isin(replicates.columns)]
        if len(rows) < MIN_SETTINGS_FOR_RHO:
            continue
        rhos[regime] = stats.spearman(means[rows.index], rows.paper), stats.spearman(replicates[rows.index], rows.paper)
        low, high = np.nanquantile(rhos[regime][1], [0.025, 0.975])
        for variant in table[table.regime == regime].variant:
            columns["common_rho"][variant], columns["common_rho_ci_low"][variant] = rhos[regime][0], low
            columns["common_rho_ci_high"][variant] = high
    if {"ppo1", "ppo2"} <= set(rhos):  # is either regime closer to the paper on this scale?
        delta = rhos["ppo1"][0] - rhos["ppo2"][0]
        low, high = np.nanquantile(rhos["ppo1"][1] - rhos["ppo2"][1], [0.025, 0.975])
        for variant in table.variant:
            columns["common_delta_rho"][variant], columns["common_delta_rho_ci_low"][variant] = delta, low
            columns["common_delta_rho_ci_high"][variant] = high
    cells = {key: g.normalised.to_numpy() for key, g in normalised.groupby(["variant", "env"])}
    compared = {}  # setting → (its variants, the cells and weights of ppo1 − ppo2 averaged over the envs)
    for setting, g in in_paper.groupby("setting"):
        by_regime = g.set_index("regime").variant
        if not {"ppo1", "ppo2"} <= set(by_regime.index):
            continue
        pair = [(by_regime["ppo1"], 1.0), (by_regime["ppo2"], -1.0)]
        if all((v, env) in cells for v, _ in pair for env in envs):
            compared[setting] = (g.variant, [cells[(v, env)] for v, _ in pair for env in envs],
                                 [sign / len(envs) for _, sign in pair for _ in envs])
    for variants, diff_cells, weights in compared.values():
        point, low, high = stats.combination_interval(diff_cells, weights)
        _, family_low, family_high = stats.combination_interval(diff_cells, weights, 1 - 0.05 / len(compared))
        for variant in variants:
            for name, value in zip(("regime_diff", "regime_diff_ci_low", "regime_diff_ci_high",
                                    "regime_diff_family_low", "regime_diff_family_high"),
                                   (point, low, high, family_low, family_high)):
                columns[name][variant] = value
    return columns


PROFILE_WIDTH = 6.4  # inches: the performance profiles beside Table 1's means, four small panels to a row


def regime_profiles(table, common, settings, names):
    """Performance profiles (stats.performance_profile) on the common scale: each Table 1 setting that has runs
    under both regimes, then all of those settings' runs together, each regime's runs of it. Where the means
    say how far apart the regimes are, a profile says where in the spread of runs (a lower tail, a lost upper
    group, or the whole distribution shifted). {panel title: {regime: (τ, profile, low, high)}}, in the order
    of `settings`, or {} without a common scale (one regime). `common` is common_normalised's result."""
    if common is None:
        return {}
    _, normalised = common
    t1 = table[table.paper.notna()]
    paired = [s for s in settings if t1[t1.setting == s].regime.nunique() == 2]
    runs = normalised[normalised.variant.isin(t1[t1.setting.isin(paired)].variant)]
    if runs.empty:
        return {}
    taus = np.linspace(0, max(runs.normalised.max(), 1), PROFILE_TAUS)  # from the random policy's score up
    regime_of, setting_of = t1.set_index("variant").regime, t1.set_index("variant").setting
    runs = runs.assign(regime=runs.variant.map(regime_of), setting=runs.variant.map(setting_of))
    panels = [(names[s], runs[runs.setting == s]) for s in paired]
    panels.append((f"all {len(paired)} settings", runs))
    return {title: {regime: (taus, *stats.performance_profile(g.normalised, g.env, taus))
                    for regime in REGIMES if len(g := runs_of[runs_of.regime == regime])}
            for title, runs_of in panels}


def draw_profiles(subfigure, profiles, colours):
    """The profiles of regime_profiles as small multiples, four to a row, sharing both axes: each regime's share
    of runs above τ, with its pointwise 95% band."""
    rows = -(-len(profiles) // 4)
    axes = subfigure.subplots(rows, 4, sharex=True, sharey=True, squeeze=False).ravel()
    for ax, (title, by_regime) in zip(axes, profiles.items()):
        for regime, (taus, point, low, high) in by_regime.items():
            ax.plot(taus, point, color=colours[regime], label=regime)
            ax.fill_between(taus, low, high, color=colours[regime], alpha=0.2, linewidth=0)
        ax.set_title(title, pad=2)
        ax.axvline(0, color="grey", lw=0.5)
        ax.axvline(1, color="grey", lw=0.5, ls=":")
        ax.grid(alpha=0.3, linewidth=0.4)
    for ax in axes[len(profiles):]:
        ax.axis("off")
    for ax in axes[::4]:
        ax.set_ylabel("share of runs > τ")
    axes[len(profiles) - 1].legend(loc="lower left", frameon=False)
    subfigure.supxlabel("τ, normalised score on one scale for both regimes (random 0, the best setting of either 1)",
                        fontsize=7)


def whole_envs(t1_scores, t1, planned_seeds):
    """The envs a regime's Table 1 aggregates over. Each env is normalised by its best setting, so an env
    where some setting's seeds are still missing would be normalised by a best that may yet change, and
    settings with runs on different envs would be averaged over unlike tasks. So in a partial grid, once
    some env holds every setting with all its seeds, only such envs count; before that, every env with
    runs does (each setting's mean over its own envs; the reading says so)."""
    whole = complete_envs(t1_scores, t1, planned_seeds)
    return whole if whole else sorted(t1_scores.env.unique())


def complete_envs(scores, variants, planned_seeds):
    """The envs on which every one of `variants` has all its planned seeds."""
    seeds = scores.groupby(["env", "variant"]).size().unstack(fill_value=0).reindex(columns=variants, fill_value=0)
    return list(seeds.index[(seeds >= planned_seeds).all(axis=1)])


def aggregated_envs(regime_table):
    """The envs a regime's aggregates are over (whole_envs), as its table's aggregated_envs column names them."""
    return regime_table.aggregated_envs.iloc[0].split(", ")


def narrowed_envs(regime_table):
    """The envs a regime's aggregates are over (whole_envs) where they are fewer than the envs its Table 1
    settings have runs on (a partial grid); else None."""
    t1 = regime_table[regime_table.paper.notna()]
    envs = aggregated_envs(t1)
    return envs if len(envs) < t1.filter(like=" seeds").notna().any().sum() else None


def table_ppo_objectives(data):
    """Table 1 under both code-level regimes side by side, each against the paper's column."""
    paper = load_paper()
    if getattr(data, "table1", None) is None:
        data.table1 = identify(data.config, data.scale, data.variants, paper)
    parts = [objectives_one_regime(data, regime, paper) for regime in REGIMES]
    table = pd.concat([p for p in parts if len(p)], ignore_index=True)
    for column in RHO_COLUMNS:  # ρ needs MIN_SETTINGS_FOR_RHO settings with a paper value; its checks need seeds
        table[column] = table.get(column, np.nan)
    comparison = regime_comparison(data, paper)
    for column in REGIMES_COLUMNS:
        table[column] = comparison.get(column, np.nan)
    on_one_scale = common_normalised(data, table)  # for the common-scale columns and the profiles alike
    common = common_scale(data, table, on_one_scale)
    for column in COMMON_COLUMNS:
        table[column] = table.variant.map(common.get(column, {}))
    data.scores = data.scores.merge(table[["variant"]], on="variant")  # what the table covers
    regimes = list(dict.fromkeys(data.table1[v].regime for v in data.variants))  # planned, with runs or not
    settings = list(dict.fromkeys(data.table1[v].setting for v in data.variants))  # a row per planned setting
    wide = pd.DataFrame(index=pd.Index(settings, name="setting"))
    by_setting = table.drop_duplicates("setting").set_index("setting").reindex(settings)
    by_setting["paper"] = [paper.paper_normalised_score.get(s, np.nan) for s in settings]
    wide["paper (Table 1)"] = [f"{p:.2f}" if pd.notna(p) else "not in the paper" for p in by_setting.paper]
    paper_rank = paper_ranks(paper)
    wide["paper rank"] = [f"{paper_rank[s]:g}" if s in paper_rank else "" for s in settings]
    cells = table.set_index(["setting", "regime"])

    def absent(setting, regime):
        """What a cell without runs says: planned and not run yet, or not planned for this regime."""
        return MISSING if variant_of(data, setting, regime) else "not planned"

    for regime in regimes:
        def cell(setting, text):
            return text(cells.loc[(setting, regime)]) if (setting, regime) in cells.index else absent(setting, regime)
        wide[f"{regime}: mean, own scale [95% CI]"] = [cell(s, lambda r: ci_text(r["mean"], r.mean_ci_low, r.mean_ci_high, 2)
                                                 if pd.notna(r["mean"]) else NOT_ON_WHOLE_ENVS) for s in settings]
        wide[f"{regime}: rank [95% CI]"] = [cell(s, lambda r: f"{r['rank']:.0f} [{r.rank_ci_low:.0f}, "
                                                 f"{r.rank_ci_high:.0f}]" if pd.notna(r["rank"]) else "")
                                            for s in settings]
        wide[f"{regime}: P(best)"] = [cell(s, lambda r: f"{r.p_best:.2f}" if pd.notna(r.p_best) else "")
                                      for s in settings]
    # the per-env scores in a second table, so that each stays readable at a glance
    per_env = pd.DataFrame(index=pd.Index(settings, name=f"setting: mean final score per env ({' / '.join(regimes)})"))
    for env in data.envs:
        per_env[env] = [" / ".join(cell_score(data, cells, s, r, env) if (s, r) in cells.index
                                   else absent(s, r) for r in regimes) for s in settings]
    # a partial grid aggregates each regime over the envs it holds whole (whole_envs): say which, where fewer
    scope = {regime: ", ".join(envs) for regime, t in table.groupby("regime") if (envs := narrowed_envs(t))}
    profiles = regime_profiles(table, on_one_scale, settings, {s: paper.short.get(s, s) for s in settings})
    height = 0.22 * len(settings) + 1.5
    colours = dict(zip(regimes, sns.color_palette("colorblind", len(regimes))))
    with plt.rc_context(FIGURE_STYLE):
        fig = plt.figure(figsize=(3.4 + PROFILE_WIDTH * bool(profiles), height), layout="constrained")
        fig.get_layout_engine().set(rect=(0, 0, 1, 1 - 0.15 / height))  # room for build()'s title above
        means, right = fig.subfigures(1, 2, width_ratios=(3.4, PROFILE_WIDTH)) if profiles else (fig, None)
        ax = means.subplots()
        y = np.arange(len(settings))
        offsets = dict(zip(regimes, np.linspace(-0.15, 0.15, len(regimes))))
        for regime, marker in zip(regimes, "os"):
            t = table[table.regime == regime].set_index("setting").reindex(settings)
            rho = t.rho.dropna()
            label = f"{regime}: mean, 95% CI" + (f"; ρ with the paper {rho.iloc[0]:.2f}" if len(rho) else "")
            label += f"; over {scope[regime]} only" if regime in scope else ""
            ax.errorbar(t["mean"], y + offsets[regime], xerr=[t["mean"] - t.mean_ci_low, t.mean_ci_high - t["mean"]],
                        fmt=marker, markersize=3, elinewidth=0.8, color=colours[regime], label=label)
        ax.plot(by_setting.paper.reindex(settings), y, "kx", markersize=5, mew=1.2, label="PPO paper, Table 1")
        ax.set_yticks(y, [paper.short.get(s, s) for s in settings])
        ax.invert_yaxis()
        ax.axvline(0, color="grey", lw=0.5)
        ax.grid(axis="x", alpha=0.3, linewidth=0.4)
        ax.set_xlabel("normalised score\n(random 0, the regime's best setting 1)")
        means.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=1, frameon=False)
        if profiles:
            draw_profiles(right, profiles, colours)
    data.note = ""  # ρ, what seed noise allows it and the regimes' comparison are in the report's reading, once
    data.note += "".join(f"\n\nPartial: the {regime} regime's means, ranks and ρ are over {envs} only, the envs that "
                         "hold every setting with all its seeds so far." for regime, envs in scope.items())
    both = table[table.common_mean.notna()]
    if len(both):
        common_wide = pd.DataFrame(index=pd.Index(settings, name="setting: both regimes on one scale"))
        common_cells = both.set_index(["setting", "regime"])
        for regime in regimes:
            common_wide[f"{regime}: mean, common scale [95% CI]"] = [
                ci_text(*common_cells.loc[(s, regime), ["common_mean", "common_ci_low", "common_ci_high"]], 2)
                if (s, regime) in common_cells.index else absent(s, regime) for s in settings]
        diff = both.drop_duplicates("setting").set_index("setting")
        common_wide["ppo1 − ppo2 [95% t-interval]"] = [
            f"{d.regime_diff:+.2f} [{d.regime_diff_ci_low:+.2f}, {d.regime_diff_ci_high:+.2f}]"
            if s in diff.index and pd.notna((d := diff.loc[s]).regime_diff) else "" for s in settings]
        wide = [wide, common_wide]
    else:
        wide = [wide]
    return table, [*wide, per_env], fig


def paper_rerun_text(r, suffix="", spread=True):
    """'; ours and a 3-seed grid drawn like ours, as the paper's was, at about ρ …' (Spearman–Brown for our k
    seeds and 3, stats.predicted_agreement), with the pairs' range unless not `spread`, or '' where ours has the
    paper's 3 seeds (a rerun of ours is that)."""
    r = r.reindex(r.index.union(PAPER_RERUN_COLUMNS))
    if pd.isna(r["paper_rerun_rho" + suffix]):
        return ""
    return (f"; ours and a {PAPER_SEEDS}-seed grid drawn like ours, as the paper's was, at about ρ "
            f"{r['paper_rerun_rho' + suffix]:.2f}" + (f" ({r['paper_rerun_rho_min' + suffix]:.2f} to "
                                                      f"{r['paper_rerun_rho_max' + suffix]:.2f})" if spread else ""))


def draws_measured(r):
    """Whether a row of the Table 1 table holds the 3-seed draws (stats.draw_agreement: 6 or more seeds a cell)."""
    return "draws" in r.index and pd.notna(r["draws"])


def rho_checks_text(r):
    """How far seed noise lets a regime's ρ with the paper reach (a row of its table, a Series;
    stats.seed_split_agreement, stats.predicted_agreement), over all the settings and without No clipping;
    '' when not measured. The range from the least to the most agreeing pair of seeds is a spread only for a few
    seeds: it widens with every seed added (10 seeds make 45 pairs, whose extremes map to about 0 and 1), so where
    the 3-seed draws measure the spread itself (draw_text), it is left out."""
    r = r.reindex(r.index.union(RHO_COLUMNS))  # a table without these columns has measured none of them
    spread = not draws_measured(r)
    parts = []
    if pd.notna(r.rerun_rho):
        text = (f"two independent grids with as many seeds as ours would order the settings alike at about "
                f"ρ {r.rerun_rho:.2f} (" + (f"{r.rerun_rho_min:.2f} to {r.rerun_rho_max:.2f} from the least and the "
                f"most agreeing pair of our seeds, whose single-seed grids agree at ρ {r.seed_pair_rho_min:.2f} to "
                f"{r.seed_pair_rho_max:.2f}" if spread else
                f"from pairs of our single seeds, whose grids agree at ρ {r.seed_pair_rho:.2f} on average")
                + "; Spearman–Brown")
        if pd.notna(r.held_out_rho):
            text += (f", which predicts {r.held_out_rho_predicted:.2f} for one seed against the others where we "
                     f"observe {r.held_out_rho:.2f}")
        if pd.notna(r.half_rho):
            text += (f", and {r.half_rho_predicted:.2f} for {r.half_seeds:.0f} seeds against the other "
                     f"{r.half_other_seeds:.0f} where we observe {r.half_rho:.2f}"
                     + (": the model runs ahead of the seeds as they are added, so read its figures for whole grids "
                        "as upper estimates" if r.half_rho < r.half_rho_predicted - OVERPREDICTED else ""))
        parts.append(text + ")" + paper_rerun_text(r, spread=spread))
    if pd.notna(r.rho_without_none):
        text = (f"without No clipping or penalty, ρ with the paper over the other settings is "
                f"{r.rho_without_none:.2f} [{r.rho_ci_low_without_none:.2f}, {r.rho_ci_high_without_none:.2f}]")
        if pd.notna(r.rerun_rho_without_none):
            text += (f", where two such grids would agree at about {r.rerun_rho_without_none:.2f} (" +
                     (f"{r.rerun_rho_min_without_none:.2f} to {r.rerun_rho_max_without_none:.2f}, from pairs of seeds "
                      f"that agree at ρ {r.seed_pair_rho_min_without_none:.2f} to "
                      f"{r.seed_pair_rho_max_without_none:.2f}" if spread else
                      f"from pairs of seeds that agree at ρ {r.seed_pair_rho_without_none:.2f} on average")
                     + ")" + paper_rerun_text(r, "_without_none", spread))
        parts.append(text)
    if parts and not spread:
        parts[-1] += (". These are the expected agreements; whether ρ with the paper lies within seed noise, the "
                      f"{PAPER_SEEDS}-seed draws below measure directly")
    return "; ".join(parts) + "." if parts else ""


DRAW_VERDICTS = ((0.95, "not a plausible 3-seed draw from this code on these tasks (fewer than 5% of our own draws agree "
                        "with the other seeds less)"),
                 (0.0, "a plausible 3-seed draw: its agreement lies within the spread of our own draws'"))


def draw_text(r):
    """The paper's column against 3-seed grids drawn from ours (stats.draw_agreement; a row of the Table 1 table),
    over all the settings and without No clipping; '' when not measured (fewer than 6 seeds in a cell)."""
    r = r.reindex(r.index.union(DRAW_COLUMNS))
    parts = []
    for suffix, over in (("", "over all the settings"), ("_without_none", "without No clipping or penalty")):
        if pd.isna(r["draws" + suffix]):
            continue
        below = r["draw_paper_below" + suffix]
        verdict = next(text for threshold, text in DRAW_VERDICTS if below >= threshold)
        parts.append(f"{over}, a 3-seed grid of ours orders the settings like our other seeds at ρ "
                     f"{r['draw_rho' + suffix]:.2f} on average (95% of draws {r['draw_rho_low' + suffix]:.2f} to "
                     f"{r['draw_rho_high' + suffix]:.2f}), the paper's column like the same other seeds at ρ "
                     f"{r['draw_paper_rho' + suffix]:.2f}, less than our draw in {below:.0%} of the splits; {verdict}")
    if not parts:
        return ""
    return (f"Taking {PAPER_SEEDS} of our seeds in every cell, all {r.draws:.0f} ways, and setting that grid's ordering "
            "and the paper's each against the grid of the seeds left: " + "; ".join(parts) + ".")


def family_text(diffs):
    """How many ppo1 − ppo2 intervals exclude 0 once widened to hold all the settings at once (Bonferroni)."""
    below = diffs[diffs.regime_diff_family_high < 0]
    above = diffs[diffs.regime_diff_family_low > 0]
    return (f"Corrected for comparing {len(diffs)} settings at once (Bonferroni: each interval at the "
            f"{100 * (1 - 0.05 / len(diffs)):.2f}% level, so that together they hold with 95% probability), it lies "
            f"below 0 in {len(below)}" + (f" ({', '.join(below.setting)})" if 0 < len(below) < len(diffs) else "")
            + f" and above 0 in {len(above)}" + (f" ({', '.join(above.setting)})" if len(above) else "") + ".")


def common_text(table):
    """The regimes on one common scale (common_scale): how far ppo1 lies from ppo2 setting by setting, and ρ with the
    paper on this scale; '' where not computed."""
    table = table.reindex(columns=table.columns.union(COMMON_COLUMNS))
    diffs = table.dropna(subset=["regime_diff"]).drop_duplicates("setting")
    if diffs.empty:
        return ""
    below, above = diffs[diffs.regime_diff_ci_high < 0], diffs[diffs.regime_diff_ci_low > 0]
    text = (f"per env, random 0 and the best Table 1 setting of either regime 1, over {diffs.common_envs.iloc[0]}. "
            f"ppo1 − ppo2 is below 0 in {(diffs.regime_diff < 0).sum()} of {len(diffs)} settings "
            f"({diffs.regime_diff.min():+.2f} to {diffs.regime_diff.max():+.2f}); its 95% t-interval lies below 0 in "
            f"{len(below)}" + (f" ({', '.join(below.setting)})" if 0 < len(below) < len(diffs) else "")
            + f" and above 0 in {len(above)}" + (f" ({', '.join(above.setting)})" if len(above) else "") + ". "
            + family_text(diffs))
    rhos = table.dropna(subset=["common_rho"]).drop_duplicates("regime")
    if len(rhos):
        text += " ρ with the paper on this scale: " + "; ".join(
            f"{r.regime} {r.common_rho:.2f} [{r.common_rho_ci_low:.2f}, {r.common_rho_ci_high:.2f}]"
            for r in rhos.itertuples())
        if pd.notna((r := rhos.iloc[0]).common_delta_rho):
            closer = ("excludes 0: on this scale the paper-era code orders the settings closer to the paper"
                      if r.common_delta_rho_ci_low > 0 else
                      "excludes 0: on this scale the paper-era code orders the settings further from the paper"
                      if r.common_delta_rho_ci_high < 0 else
                      "includes 0: on this scale, these seeds cannot tell which regime orders the settings closer "
                      "to the paper")
            text += (f"; the difference ppo1 − ppo2, {r.common_delta_rho:+.2f} [{r.common_delta_rho_ci_low:+.2f}, "
                     f"{r.common_delta_rho_ci_high:+.2f}], {closer}")
        text += "."
    return text + (" Each regime's own scale (its best setting 1, Table 1's rule) orders its settings and gives "
                   "the ρ and ranks above; the regimes' levels are compared on this one only.")


def regimes_text(r):
    """ppo1 against ppo2 (a row of the Table 1 table, a Series; regime_comparison), or '' when not compared."""
    r = r.reindex(r.index.union(REGIMES_COLUMNS))
    if pd.isna(r.regimes_rho):
        return ""
    text = (f"over {r.regimes_envs} (the envs both regimes hold whole), the two order the "
            f"{len(paper_settings(load_paper()))} settings alike at ρ {r.regimes_rho:.2f} [95% seed-bootstrap interval "
            f"{r.regimes_rho_ci_low:.2f}, {r.regimes_rho_ci_high:.2f}]")
    if pd.notna(r.regimes_half_across):
        noise = float(np.sqrt(max(r.regimes_half_ppo1, 0) * max(r.regimes_half_ppo2, 0)))
        text += (f". Measured at equal seeds, over every split of the seeds into disjoint halves "
                 f"({r.regimes_half_seeds:.0f} and {r.regimes_half_other_seeds:.0f}): one regime's half orders the "
                 f"settings like the other regime's other half at ρ {r.regimes_half_across:.2f} on average, and like "
                 f"its own other half at ppo1 {r.regimes_half_ppo1:.2f}, ppo2 {r.regimes_half_ppo2:.2f}; with the "
                 f"same true ordering the regimes would agree at about their geometric mean, {noise:.2f}, so "
                 + ("seed noise alone can explain why the two orderings differ" if r.regimes_half_across >= noise else
                    f"the regimes agree with each other less than with themselves (disattenuated, their true "
                    f"orderings correlate at about {r.regimes_half_across / noise:.2f})" if noise > 0 else
                    "the halves share no ordering to compare"))
        if pd.notna(r.regimes_rho_ceiling):
            text += (f" (Spearman–Brown, from single seeds, would put the ceiling for whole grids at "
                     f"{r.regimes_rho_ceiling:.2f}; each regime's reading sets its predictions beside what halves of its "
                     "seeds measure)")
    elif pd.notna(r.regimes_rho_ceiling):
        text += (f"; with the same true ordering, seed noise alone would leave about {r.regimes_rho_ceiling:.2f} "
                 f"(Spearman–Brown), so "
                 + ("these seeds cannot tell the two orderings apart" if r.regimes_rho_ci_high >= r.regimes_rho_ceiling
                    else "the regimes order the settings differently, beyond seed noise"))
    closer = ("excludes 0: the paper-era code orders the settings closer to the paper" if r.delta_rho_ci_low > 0 else
              "excludes 0: the paper-era code orders the settings further from the paper" if r.delta_rho_ci_high < 0
              else "includes 0: these seeds cannot tell which regime orders the settings closer to the paper")
    return (text + f". ρ with the paper over these envs: ppo1 {r.regimes_rho_paper_ppo1:.2f}, ppo2 "
            f"{r.regimes_rho_paper_ppo2:.2f}; the difference, {r.delta_rho:+.2f} [{r.delta_rho_ci_low:+.2f}, "
            f"{r.delta_rho_ci_high:+.2f}], {closer}.")


def cell_score(data, cells, setting, regime, env):
    """One regime's mean score of a setting (that has runs) on one env, with the seed count when it is short."""
    row = cells.loc[(setting, regime)]
    if pd.isna(row.get(f"{env} score")):
        return MISSING
    return f"{row[f'{env} score']:.0f}{data.seeds_note(int(row[f'{env} seeds']))}"


def reading_objectives(table, steps=""):
    """Per code-level regime: ρ with the paper and what its interval says, best and worst setting, where
    'no clipping' lands; then the variants that are not in the paper; then the published context; then
    `steps`, the regimes' update sizes measured (regime_steps)."""
    lines = []
    paper = load_paper()
    settings, scores = paper_settings(paper), paper.paper_normalised_score
    for regime, rt in table.groupby("regime", sort=False):
        t1 = rt.dropna(subset=["paper"])
        if "rho" in t1 and t1.rho.notna().any():
            r = t1.iloc[0]
            verdict = ("excludes 0: the ordering agrees with the paper's" if r.rho_ci_low > 0 else
                       "excludes 0: the ordering runs against the paper's" if r.rho_ci_high < 0 else
                       "includes 0: these seeds cannot tell whether the ordering agrees with the paper's")
            lines.append(f"- **{regime} regime**: Spearman's ρ with the paper over {len(t1)} settings = {r.rho:.2f}, "
                         f"95% seed-bootstrap interval [{r.rho_ci_low:.2f}, {r.rho_ci_high:.2f}]; the interval {verdict}.")
            if checks := rho_checks_text(r):
                lines.append(f"  - What seed noise allows: {checks} {rerun_reading(r)}".rstrip())
            if drawn := draw_text(r):
                lines.append(f"  - Is the paper's column a plausible 3-seed draw from ours? {drawn}")
        else:
            lines.append(f"- **{regime} regime**: no rank correlation with the paper yet: it needs at least 4 Table 1 "
                         f"settings with runs on the same envs ({len(t1)} of the {len(settings)} have runs so far).")
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
                            if len(contenders) else "") + f"); the paper's best: {scores.idxmax()} ({scores.max():.2f}).")
            lines.append(f"  - worst: {worst.setting} ({worst['mean']:.2f}); the paper's worst: {scores.idxmin()} "
                         f"({scores.min():.2f}, driven by HalfCheetah).")
            none = t1[t1.setting == scores.idxmin()]
            if len(none):
                n = none.iloc[0]
                lines.append(f"  - {n.setting}: {n['mean']:.2f} [{n.mean_ci_low:.2f}, {n.mean_ci_high:.2f}], "
                             f"rank {n['rank']:.0f} of {len(t1)} (interval {n.rank_ci_low:.0f}–{n.rank_ci_high:.0f}).")
            firm = t1[t1.rank_ci_low == t1.rank_ci_high]
            lines.append("  - settings whose rank is the same in 95% of resamples: " +
                         (", ".join(f"{r.setting} (rank {r.rank:.0f})" for r in firm.itertuples()) if len(firm) else "none") +
                         f"; the median width of a rank interval is {(t1.rank_ci_high - t1.rank_ci_low).median():.0f} places.")
        for r in rt[rt.paper.isna()].dropna(subset=["mean"]).itertuples():
            lines.append(f"  - {r.setting}: {r.mean:.2f} [{r.mean_ci_low:.2f}, {r.mean_ci_high:.2f}] (not in the paper).")
    if common := common_text(table):
        lines.append(f"- **Both regimes on one scale**: {common}")
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
    caveats = ([seed_caveat(min(seeds.values()))] if len(set(seeds.values())) == 1  # else a partial grid
               else [seed_caveat(n, f"{regime} regime") for regime, n in seeds.items()])
    lines += [caveat for caveat in caveats if caveat]
    return "\n".join(lines) + (f"\n\n**How far each update moves the policy, measured.**\n\n{steps}" if steps else "")


RERUN_CONCLUSIONS = {"reaches": "seed noise alone can explain the disagreement",
                     "below": "seed noise alone does not explain the disagreement, and part of it is systematic "
                              "(task versions, code, normalisation anchors)",
                     "between": "seed noise explains much of the disagreement, and these seeds cannot tell whether "
                                "part of it is systematic"}


def rerun_verdict(r, suffix=""):
    """Where ρ with the paper (over all the settings, or with suffix '_without_none' without No clipping) stands
    against what seed noise alone allows: (a RERUN_CONCLUSIONS key, the facts), or None where not measured."""
    r = r.reindex(r.index.union(RHO_COLUMNS + PAPER_RERUN_COLUMNS))  # absent columns: not measured
    low, high = r["rho_ci_low" + suffix], r["rho_ci_high" + suffix]
    # the paper's grid had 3 seeds: with as many of ours, a rerun of ours is the yardstick; with more, ours
    # against a 3-seed grid drawn like ours (a 3-seed rerun)
    rerun_of = "paper_rerun" if pd.notna(r["paper_rerun_rho" + suffix]) else "rerun"
    rerun, rerun_min, rerun_max = (r[f"{rerun_of}_rho{end}{suffix}"] for end in ("", "_min", "_max"))
    if pd.isna(r["rho" + suffix]) or pd.isna(rerun):
        return None
    what = f"{'without No clipping' if suffix else 'over all the settings'}, ρ's interval [{low:.2f}, {high:.2f}]"
    if high >= rerun:
        return "reaches", f"{what} reaches {'a 3-seed' if rerun_of == 'paper_rerun' else 'a'} rerun's {rerun:.2f}"
    if high < rerun_min:
        return "below", f"{what} lies below even the least agreeing pair's {rerun_min:.2f}"
    return "between", (f"{what} ends below {'a 3-seed' if rerun_of == 'paper_rerun' else 'a'} rerun's "
                       f"{rerun:.2f} but inside the pairs' range {rerun_min:.2f}–{rerun_max:.2f}")


def rerun_reading(r):
    """The reading's sentence on what seed noise allows ρ (rho_checks_text, then rerun_verdict's conclusions); ''
    where the 3-seed draws give the verdict from the spread they measure (draw_text)."""
    if draws_measured(r):
        return ""
    verdicts = [v for v in (rerun_verdict(r), rerun_verdict(r, "_without_none")) if v]
    if not verdicts:
        return ""
    text = "So, if the paper's seeds are about as noisy as ours: "
    if len({kind for kind, _ in verdicts}) == 1:
        return text + "; ".join(fact for _, fact in verdicts) + f". {RERUN_CONCLUSIONS[verdicts[0][0]].capitalize()}."
    return text + "; ".join(f"{fact}: {RERUN_CONCLUSIONS[kind]}" for kind, fact in verdicts) + "."


def aggregated_seeds(table):
    """Per regime, the fewest seeds of any cell its Table 1 aggregates resample: its cells on the envs it
    aggregates over (a partial grid's other envs appear only in the per-env table)."""
    return {regime: int(rt[[f"{env} seeds" for env in aggregated_envs(rt)]].min().min())
            for regime, rt in table.groupby("regime", sort=False)}


def regime_steps(table, progress, planned, identities):
    """How far each update moves the policy, and how broad it ends, per Table 1 setting and env, the two regimes
    side by side ('ppo2 / ppo1'): the KL from the old to the new policy per update (approx_kl, median over the
    second half of each run) and the policy's σ over its last 10% (stats.gaussian_sigma of the logged entropy,
    mean). Cells: mean over seeds. Then ppo1's KL per update as a multiple of ppo2's, per family of settings,
    over the second half of the runs and over their first and last tenth (phase_text).
    `identities`: the planned variants' Identity (identify), to tell a cell without runs from one not planned."""
    regimes = list(dict.fromkeys(table.regime))
    if len(regimes) < 2:
        return ""
    settings = list(dict.fromkeys(table.setting))
    variants = {r.variant for r in planned}
    variant_at = {identities[v][:2]: v for v in variants}  # (setting, regime) → the planned variant
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

        def cell(setting, regime, env):
            variant = variant_at.get((setting, regime))
            if (variant, env) not in cells.index:
                return "missing run" if variant else "not planned"
            c = cells.loc[(variant, env)]
            return f"{c['mean']:{digits}}" + (f" ({c['size']:.0f} of {seeds} seeds)" if c["size"] < seeds else "")

        wide = pd.DataFrame({env: [" / ".join(cell(setting, regime, env) for regime in regimes) for setting in settings]
                             for env in envs}, index=pd.Index(settings, name=" / ".join(regimes)))
        parts += [f"{title}; mean over seeds ({' / '.join(regimes)}):", "", wide.to_markdown(disable_numparse=True), ""]
    # ppo1 against ppo2, cell by cell where both have runs, as a median per family of objectives
    in_paper = table[table.paper.notna()].drop_duplicates("setting").set_index("setting").objective

    def ratios(kl):  # kl: mean over seeds per (variant, env) → [(family, ppo1 / ppo2 per cell)]
        ratio = pd.Series({(setting, env): kl.get((variant_at.get((setting, "ppo1")), env), np.nan)
                           / kl.get((variant_at.get((setting, "ppo2")), env), np.nan)
                           for setting in in_paper.index for env in envs}).dropna()
        return [(name, r) for objective, name in OBJECTIVE_FAMILIES.items()
                if len(r := ratio[[in_paper[setting] == objective for setting, _ in ratio.index]])]
    found = ratios(measured["approx_kl"]["mean"])
    if found:
        parts.append("- ppo1's KL per update as a multiple of ppo2's, setting by setting on each env (Table 1 settings "
                     "with runs in both regimes): " + "; ".join(
                         f"{name} median {r.median():.2f}× (range {r.min():.2f}–{r.max():.2f}, {len(r)} cell{'s' * (len(r) > 1)})"
                         for name, r in found) + ".")
    parts.append(phase_text(kl_phases(progress, planned), ratios, {v: identities[v].regime for v in variants}))
    return "\n".join(parts).strip()


PHASE = 0.1  # kl_phases: the first and the last tenth of a run's steps


def kl_phases(progress, planned):
    """Per planned run that logs a learning rate, for the first and the last PHASE of its steps: the median KL per
    update (approx_kl) there, and the mean learning rate there as a fraction of the run's first (ppo2 anneals it
    to 0, ppo1 keeps it). {"first"/"last": frame indexed by variant, env, seed with columns kl and lr}."""
    if not {"approx_kl", "learning_rate"} <= set(progress.columns):
        return {}
    keys = ["variant", "env", "seed"]
    progress = stats.planned_rows(progress, planned)
    progress = progress.assign(lr=progress.learning_rate / progress.groupby(keys).learning_rate.transform("max"))  # never rises

    def window(start, end):  # one row per run: kl (median), lr (mean)
        kl = stats.late_per_run(progress, "approx_kl", start, end=end).set_index(keys).approx_kl
        lr = stats.late_per_run(progress, "lr", start, "mean", end).set_index(keys).lr
        return pd.DataFrame({"kl": kl, "lr": lr}).dropna()
    return {"first": window(0.0, PHASE), "last": window(1 - PHASE, 1.0)}


def phase_text(phases, ratios, regime_of):
    """The sentence on when in a run ppo1's updates outgrow ppo2's: ratios(KL per cell) in the first and in the
    last PHASE of the runs, beside each regime's learning rate there (mean over its runs, a fraction of its start)."""
    if not phases or any(frame.empty for frame in phases.values()):
        return ""
    found = {phase: dict(ratios(frame.kl.groupby(["variant", "env"]).mean())) for phase, frame in phases.items()}
    families = [name for name in OBJECTIVE_FAMILIES.values() if all(name in f for f in found.values())]
    if not families:
        return ""
    lr = {phase: frame.lr.groupby(frame.index.get_level_values("variant").map(regime_of)).mean()
          for phase, frame in phases.items()}
    share = lambda phase: " and ".join(f"{regime}'s {lr[phase][regime]:.2f}×" for regime in REGIMES  # noqa: E731
                                       if regime in lr[phase])
    cell = lambda r: f"{r.median():.2f}× ({r.min():.2f}–{r.max():.2f})"  # noqa: E731
    return (f"- The same multiple in the first and in the last {PHASE:.0%} of each run's steps (median KL per update "
            f"there), where the learning rate is on average {share('first')} its start, then {share('last')}: "
            + "; ".join(f"{name} {cell(found['first'][name])}, then {cell(found['last'][name])}" for name in families)
            + " (median over cells, with the range).")


table = table_ppo_objectives


REFERENCE_SETTING = "Clipping, eps = 0.2"  # the paper's best and today's default, which every other setting meets


def regime_improvement(table, scores):
    """(rows, rows at the Bonferroni level for them all, envs): P(ppo1 run > ppo2 run) of each Table 1 setting
    (common.improvement_rows) over the envs both regimes hold whole (the common scale's); None before there are."""
    common = table.reindex(columns=table.columns.union(COMMON_COLUMNS)).common_envs.dropna()
    if not len(common) or not set(REGIMES) <= set(table.regime):
        return None
    variant, envs = table.set_index(["setting", "regime"]).variant, common.iloc[0].split(", ")
    pairs = [(variant[(s, "ppo1")], variant[(s, "ppo2")]) for s in dict.fromkeys(table.setting)
             if (s, "ppo1") in variant.index and (s, "ppo2") in variant.index]
    rows = improvement_rows(scores, pairs, envs)
    if not len(rows):
        return None
    return rows, improvement_rows(scores, pairs, envs, level=1 - 0.05 / len(rows)), envs


def improvement_objectives(table, scores):
    """Probability of improvement (common.improvement_rows) per setting: over REFERENCE_SETTING in each regime, on
    the envs that regime's aggregates are over, and ppo1 over ppo2 on the envs both hold whole, with how many
    intervals exclude 0.5 alone and corrected for the settings compared at once (Bonferroni); '' without pairs."""
    settings = list(dict.fromkeys(table.setting))
    variant, setting_of = table.set_index(["setting", "regime"]).variant, table.set_index("variant").setting
    columns, notes = {}, []
    for regime, rt in table.groupby("regime", sort=False):
        if (REFERENCE_SETTING, regime) not in variant.index:
            continue
        reference = variant[(REFERENCE_SETTING, regime)]
        rows = improvement_rows(scores, [(v, reference) for v in rt.variant if v != reference], aggregated_envs(rt))
        if len(rows):
            columns[f"{regime}: over {REFERENCE_SETTING} ({len(rows.envs.iloc[0])} tasks)"] = {
                setting_of[r.x]: improvement_text(r) for r in rows.itertuples()}
    if (found := regime_improvement(table, scores)) is not None:
        rows, family, envs = found
        columns[f"ppo1 over ppo2 ({len(envs)} tasks)"] = {
            setting_of[r.x]: improvement_text(r) for r in rows.itertuples()}
        notes.append(
            f"ppo1 over ppo2, over {', '.join(envs)}: a ppo1 run ends below a ppo2 run of the same setting more "
            f"often than not in {(rows.p < 0.5).sum()} of {len(rows)} settings; the interval lies below 0.5 in "
            f"{(rows.p_high < 0.5).sum()} and above in {(rows.p_low > 0.5).sum()}, and corrected for the "
            f"{len(rows)} at once (Bonferroni) below in {(family.p_high < 0.5).sum()} and above in "
            f"{(family.p_low > 0.5).sum()}.")
    if not columns:
        return ""
    wide = pd.DataFrame(columns).reindex([s for s in settings if any(s in c for c in columns.values())]).fillna("")
    wide.index.name = "P(X > Y) [95% CI], X the setting or ppo1"
    return ("**Which setting's runs end higher.** The chance that a run of one setting ends above a run of another "
            f"{IMPROVEMENT_MEANS}, averaged over the tasks. It "
            "compares runs by their order alone, so it needs no normalisation, and no one task's spread swamps it, as "
            "HalfCheetah's two far-apart groups of runs swamp the intervals of a mean of normalised scores. "
            + " ".join(notes) + "\n\n" + wide.to_markdown())


def reading(table, ctx):
    variants = list(dict.fromkeys(r.variant for r in ctx.planned))
    identities = identify(ctx.config, ctx.scale, variants, load_paper())
    text = reading_objectives(table, regime_steps(table, ctx.progress, ctx.planned, identities))
    if improvement := improvement_objectives(table, stats.planned_rows(ctx.scores, ctx.planned)):
        text += "\n\n" + improvement
    cells = (lambda v: identities[v].setting, lambda v: identities[v].regime, REGIMES)
    return text + collapse_reading(ctx, *cells) + two_groups_text(ctx.scores, ctx.planned, *cells)


def summary(table, ctx):
    """ρ with the paper per regime on its own scale, and the regimes on one common scale."""
    parts = []
    for regime, rt in table.groupby("regime", sort=False):
        r = rt.dropna(subset=["rho"])
        if len(r):
            r = r.iloc[0]
            parts.append(f"{regime} {r.rho:.2f} [{r.rho_ci_low:.2f}, {r.rho_ci_high:.2f}]")
    tasks = table.aggregated_envs.iloc[0].count(",") + 1
    text = (f"Table 1 ({seeds_text(ctx)}, {tasks} task{'s' * (tasks != 1)}): Spearman's ρ between our "
            f"ordering of the 11 settings and the paper's, each regime on its own scale: " + "; ".join(parts) + ".")
    diffs = table.reindex(columns=table.columns.union(COMMON_COLUMNS)).dropna(subset=["regime_diff"]).drop_duplicates("setting")
    if len(diffs):
        spread = (f"by {-diffs.regime_diff.max():.2f} to {-diffs.regime_diff.min():.2f}" if (diffs.regime_diff < 0).all()
                  else f"ppo1 − ppo2 from {diffs.regime_diff.min():+.2f} to {diffs.regime_diff.max():+.2f}")
        text += (f" On one common scale ppo1 (the paper-era code) scores below ppo2 in {(diffs.regime_diff < 0).sum()} of "
                 f"{len(diffs)} settings ({spread}), with the 95% interval below 0 in "
                 f"{(diffs.regime_diff_ci_high < 0).sum()} and above 0 in {(diffs.regime_diff_ci_low > 0).sum()} "
                 f"({(diffs.regime_diff_family_high < 0).sum()} and {(diffs.regime_diff_family_low > 0).sum()} with "
                 f"the {len(diffs)} intervals corrected to hold together, Bonferroni).")
    if ctx.scores is not None and (found := regime_improvement(table, stats.planned_rows(ctx.scores, ctx.planned))):
        rows, family, _ = found
        text += (f" Compared by order alone (P(X > Y), no scale), a ppo1 run ends below a ppo2 run of the same "
                 f"setting more often than not in {(rows.p < 0.5).sum()} of {len(rows)} settings, the 95% interval "
                 f"below 0.5 in {(rows.p_high < 0.5).sum()} and above in {(rows.p_low > 0.5).sum()} "
                 f"({(family.p_high < 0.5).sum()} and {(family.p_low > 0.5).sum()} corrected).")
    return text


def cite(table, ctx):
    """Table 1 under both regimes beside the paper: own-scale means with ranks, and ppo1 − ppo2 on the common scale."""
    paper = load_paper()
    rows = []
    for setting in paper_settings(paper):
        row = {"setting": setting, "paper (rank)": f"{paper.paper_normalised_score[setting]:.2f} "
                                                  f"({paper_ranks(paper)[setting]:g})"}
        for regime, rt in table.groupby("regime", sort=False):
            r = rt[rt.setting == setting]
            row[f"{regime}, own scale [95% CI] (rank)"] = (
                f"{ci_text(r['mean'].iloc[0], r.mean_ci_low.iloc[0], r.mean_ci_high.iloc[0], 2)} ({r['rank'].iloc[0]:.0f})"
                if len(r) and pd.notna(r["mean"].iloc[0]) else MISSING)
        d = table[(table.setting == setting)].reindex(columns=table.columns.union(COMMON_COLUMNS)).dropna(
            subset=["regime_diff"])
        row["ppo1 − ppo2, common scale [95% CI]"] = (
            f"{d.regime_diff.iloc[0]:+.2f} [{d.regime_diff_ci_low.iloc[0]:+.2f}, {d.regime_diff_ci_high.iloc[0]:+.2f}]"
            if len(d) else "")
        rows.append(row)
    rho = {regime: rt.dropna(subset=["rho"]) for regime, rt in table.groupby("regime", sort=False)}
    rows.append({"setting": "Spearman's ρ with the paper [95% CI]", "paper (rank)": "1", **{
        f"{regime}, own scale [95% CI] (rank)": f"{r.rho.iloc[0]:.2f} [{r.rho_ci_low.iloc[0]:.2f}, {r.rho_ci_high.iloc[0]:.2f}]"
        for regime, r in rho.items() if len(r)}})
    return pd.DataFrame(rows).fillna("").to_markdown(index=False)


def caption(ctx):
    return (f"Left, Table 1 under the two code-level regimes: each setting's mean normalised score over the tasks "
            f"(random policy 0, the regime's own best setting per task 1), mean over {seeds_text(ctx)} per task "
            "with rliable's stratified-bootstrap 95% interval; crosses, the paper's Table 1. Right, where both regimes "
            "have runs: performance profiles (Agarwal et al. 2021), the share of runs scoring above τ per task "
            "averaged over the tasks, on one scale for both regimes (random 0, the best Table 1 setting of either "
            "regime 1), with a pointwise 95% stratified-bootstrap band; a profile lower at every τ is a worse setting "
            "over the whole spread of runs, not only in the mean.")
