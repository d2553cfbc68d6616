"""One figure and one table per experiment (docs/DESIGN.md §6-7), drawn from the runs of a scale.

  python -m analysis.experiments results/quick --scale quick --experiment ppo_objectives

writes results/<scale>/tables/<experiment>.{csv,md} and figures/<experiment>.{png,pdf}.
Numbers go to CSV first; the figure is drawn from the same frame; runs the grid expects but
that are not there are listed in the table's Markdown, never silently dropped.
"""
import argparse
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from analysis import stats  # noqa: E402
from analysis.load import GridStatus, RunContractError, load_random, load_runs  # noqa: E402
from experiments import grid  # noqa: E402

PUBLISHED = pathlib.Path(__file__).resolve().parent / "published"
# which published rows stand beside which of our variants (algorithms experiment)
PUBLISHED_MATCH = {"vpg_gae": [("spinningup_pytorch", "vpg")],
                   "trpo": [("baselines", "trpo_mpi"), ("spinningup_tf1", "trpo")],
                   "ppo_clip_0.2": [("baselines", "ppo2"), ("cleanrl", "ppo_continuous_action")],
                   "ppo_clip_0.2_no_trunc_bootstrap": [("baselines", "ppo2"), ("cleanrl", "ppo_continuous_action")],
                   "ppo_clip_0.2_es_0.01": [("spinningup_pytorch", "ppo")]}


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
        random = load_random(scale_dir, self.envs)
        self.random_score = random.groupby("env").ep_return.mean()

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
    """variant × env: mean over seeds with a 95% bootstrap interval, and the seed count."""
    rows = []
    for (variant, env), g in data.scores.groupby(["variant", "env"], sort=False):
        point, low, high = stats.stratified_bootstrap_ci(g[value], np.zeros(len(g)), stats.aggregate_mean)
        rows.append(dict(variant=variant, env=env, seeds=len(g), mean=point, ci_low=low, ci_high=high,
                         text=ci_text(point, low, high, digits) + data.seeds_note(len(g))))
    return pd.DataFrame(rows)


def learning_curves(data):
    grid_ = sns.relplot(data=data.curves(), x="step", y="return", hue="variant", col="env", kind="line",
                        errorbar=("ci", 95), n_boot=1000, seed=stats.BOOTSTRAP_SEED, col_wrap=min(3, len(data.envs)),
                        facet_kws=dict(sharey=False), height=3.2, aspect=1.3, hue_order=data.variants)
    grid_.set_axis_labels("environment steps", "training episode return")
    for ax in grid_.axes.flat:
        env = ax.get_title().split(" = ")[-1]
        total = data.steps.get(env, max(data.steps.values()))
        ax.set_xticks(np.linspace(0, total, 5), [step_label(x) for x in np.linspace(0, total, 5)])
    return grid_.figure


def step_label(steps):
    """0, 250k, 500k, 1M: tick labels that do not overlap."""
    if steps >= 1e6:
        return f"{steps / 1e6:g}M"
    return f"{steps / 1e3:g}k" if steps else "0"


def table_curves(data):
    table = per_env_table(data)
    wide = table.pivot(index="variant", columns="env", values="text").reindex(data.variants).reindex(columns=data.envs)
    return table, wide.astype(object).fillna(MISSING), learning_curves(data)


def table_gae_lambda(data):
    """Per λ and env: the final score and the learning speed (mean return over the whole run), each with its
    95% interval and the share of seed resamples in which that λ is best."""
    data.scores = data.scores.merge(data.runs[["variant", "env", "seed", "arg_gae_lambda"]], on=["variant", "env", "seed"])
    data.scores = data.normalised(best_from=data.variants).merge(stats.learning_speed(data.curves()),
                                                                 on=["variant", "env", "seed"])
    table = per_env_table(data).merge(data.scores.groupby("variant").arg_gae_lambda.first().rename("lambda"),
                                      left_on="variant", right_index=True)
    norm = per_env_table(data, "normalised", digits=2).rename(columns={"mean": "normalised_mean", "text": "normalised"})
    fast = per_env_table(data, "speed").rename(columns={"mean": "speed_mean", "ci_low": "speed_ci_low",
                                                         "ci_high": "speed_ci_high", "text": "speed"})
    table = (table.merge(norm[["variant", "env", "normalised_mean", "normalised"]], on=["variant", "env"])
             .merge(fast[["variant", "env", "speed_mean", "speed_ci_low", "speed_ci_high", "speed"]], on=["variant", "env"]))

    def share_best(value):
        """Per env, the share of seed resamples in which each λ has the highest mean `value`."""
        cell_means = stats.bootstrap_cell_means(data.scores.assign(score=data.scores[value]))
        p_best = pd.concat([stats.ranking_uncertainty(cell_means.xs(env, axis=1, level="env")).p_best.rename(env)
                            for env in data.envs if env in cell_means.columns.get_level_values("env")], axis=1)
        return [p_best.at[r.variant, r.env] for r in table.itertuples()]

    table["p_best"], table["speed_p_best"] = share_best("score"), share_best("speed")
    # every planned λ gets a row, one with no run yet too (its λ from the config, else the variant's name)
    lambdas = table.drop_duplicates("variant").set_index("variant")["lambda"]
    row_of = {v: lambdas.get(v, data.args[v].get("gae_lambda", v)) for v in data.variants}
    order = sorted(data.variants, key=lambda v: (isinstance(row_of[v], str), 0 if isinstance(row_of[v], str) else row_of[v]))
    measures = {"text": ("final score (mean of the last 100 episodes)", "score"),
                "speed": ("learning speed (mean return over the whole run)", "speed")}
    wide = [table.pivot(index="variant", columns="env", values=column).reindex(index=order, columns=data.envs)
            .rename(index=row_of).rename_axis(f"lambda: {title}").astype(object).fillna(MISSING)
            for column, (title, _) in measures.items()]
    # the planned λs equally spaced (they crowd towards 1: 0.92 ... 0.99, 1), the same ticks on every panel
    planned = sorted(x for x in row_of.values() if not isinstance(x, str))
    position = dict(zip(planned, range(len(planned))))
    low, high = gae_paper_range()
    band = np.interp([low, high], planned, range(len(planned)))  # the range's edges between the ticks
    fig, axes = plt.subplots(len(measures), len(data.envs), figsize=(4.2 * len(data.envs), 3.4 * len(measures)),
                             squeeze=False)
    for row, (title, value) in zip(axes, measures.values()):
        for ax, env in zip(row, data.envs):
            ax.axvspan(*band, color="0.9", zorder=0, label=f"GAE paper's best range, λ in [{low:g}, {high:g}]")
            ax.set(title=env, xlabel="GAE λ", ylabel=title.replace(" (", "\n("), xlim=(-0.5, len(planned) - 0.5))
            ax.set_xticks(range(len(planned)), [f"{x:g}" for x in planned], rotation=45)
            sub = data.scores[data.scores.env == env].assign(x=lambda d: d.arg_gae_lambda.map(position))
            if sub.empty:  # a partial grid: say so instead of drawing empty axes
                ax.text(0.5, 0.5, "no runs yet", ha="center", va="center", transform=ax.transAxes)
                continue
            sns.lineplot(data=sub, x="x", y=value, marker="o", errorbar=("ci", 95), n_boot=1000, err_style="bars",
                         seed=stats.BOOTSTRAP_SEED, ax=ax, label="mean over seeds, 95% CI")
            ax.plot(sub.x, sub[value], ".", color="0.35", markersize=4, label="one seed")
            ax.legend().remove()
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, bbox_to_anchor=(0.5, -0.01), frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return table.sort_values(["env", "lambda"]), wide, fig


def gae_paper_range(task="all tasks"):
    """A λ range of the GAE paper, from analysis/published/gae_lambda.csv: by default the one it recommends
    for all its tasks (§7); "cart-pole at gamma 0.99" gives the fastest improvement of its Fig. 2."""
    paper = pd.read_csv(PUBLISHED / "gae_lambda.csv")
    low, high = paper.loc[paper.task.str.startswith(task), "lambda_best"].iloc[0].strip("[]").split(",")
    return float(low), float(high)


# Table 1's 11 settings, named as the ppo2-regime variants; the ppo1 regime's variants are ppo1_<setting>
TABLE1_SETTINGS = ["ppo_none", "ppo_clip_0.1", "ppo_clip_0.2", "ppo_clip_0.3", "ppo_kl_adaptive_0.003",
                   "ppo_kl_adaptive_0.01", "ppo_kl_adaptive_0.03", "ppo_kl_fixed_0.3", "ppo_kl_fixed_1",
                   "ppo_kl_fixed_3", "ppo_kl_fixed_10"]
REGIME_PREFIX = {"ppo2": "ppo_", "ppo1": "ppo1_"}  # ppo.py --regime → variant prefix
RHO_CHECKS = ("seed_pair_rho", "seed_pair_rho_min", "seed_pair_rho_max", "rerun_rho", "rerun_rho_min", "rerun_rho_max",
              "held_out_rho", "held_out_rho_predicted")  # how far seed noise lets ρ reach (objectives_one_regime)
RHO_COLUMNS = ("rho", "rho_ci_low", "rho_ci_high") + RHO_CHECKS + tuple(
    c + "_without_none" for c in ("rho", "rho_ci_low", "rho_ci_high") + RHO_CHECKS)
MIN_SETTINGS_FOR_RHO = 4  # fewer settings (a partial grid) give a rank correlation that means nothing; and all on the same envs


def regime_of(variant):
    return "ppo1" if variant.startswith("ppo1_") else "ppo2"


def paper_name(variant):
    """The ppo2-regime name of a variant, the key of analysis/published/ppo_table1.csv."""
    return "ppo_" + variant[len("ppo1_"):] if variant.startswith("ppo1_") else variant


def regime_variant(setting, regime):
    """A Table 1 setting's variant under a regime (the inverse of paper_name): ppo_clip_0.2 → ppo1_clip_0.2."""
    return REGIME_PREFIX[regime] + setting[len("ppo_"):]


def paper_ranks(paper):
    """Each Table 1 setting's rank in the paper's column, among all 11 (1 = best)."""
    return paper.paper_normalised_score.reindex(TABLE1_SETTINGS).rank(ascending=False)


def objectives_one_regime(data, regime, paper):
    """Table 1 for one code-level regime: scores normalised with this regime's own best setting per env
    (Table 1's rule), mean and IQM with intervals, ranks with their seed-bootstrap intervals, P(best) and
    Spearman's ρ with the paper's column (point and interval)."""
    variants = [v for v in data.variants if regime_of(v) == regime]
    t1 = [regime_variant(s, regime) for s in TABLE1_SETTINGS if regime_variant(s, regime) in variants]
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
        key = paper_name(variant)
        row = dict(regime=regime, variant=variant, setting=paper.setting.get(key, key),
                   paper=paper.paper_normalised_score.get(key, np.nan), runs=len(g),
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
    table.loc[in_t1, "paper_rank"] = table[in_t1].variant.map(paper_name).map(paper_ranks(paper))  # of all 11
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
        others = paper_t1.drop(regime_variant("ppo_none", regime), errors="ignore")
        for suffix, ranked in (("", paper_t1.index), ("_without_none", others.index)):
            if len(ranked) < MIN_SETTINGS_FOR_RHO or (suffix and len(ranked) == len(paper_t1)):
                continue
            if suffix:
                table["rho" + suffix] = stats.spearman(table.set_index("variant")["mean"], others)
                table["rho_ci_low" + suffix], table["rho_ci_high" + suffix] = np.nanquantile(
                    stats.spearman(replicates, others), [0.025, 0.975])
            split = stats.seed_split_agreement(t1_scores, data.random_score, ranked)
            if not split:
                continue
            pairs, held_out = split
            table["seed_pair_rho" + suffix] = np.mean(pairs)
            table["seed_pair_rho_min" + suffix], table["seed_pair_rho_max" + suffix] = min(pairs), max(pairs)
            for name, r in (("rerun_rho", np.mean(pairs)), ("rerun_rho_min", min(pairs)),
                            ("rerun_rho_max", max(pairs))):
                table[name + suffix] = stats.predicted_agreement(r, seeds, seeds)
            if held_out:  # the model's check: one seed against the others, observed and predicted
                table["held_out_rho" + suffix] = np.mean(held_out)
                table["held_out_rho_predicted" + suffix] = stats.predicted_agreement(np.mean(pairs), 1, seeds - 1)
    return table


REGIMES_COLUMNS = ("regimes_envs", "regimes_rho", "regimes_rho_ci_low", "regimes_rho_ci_high", "regimes_rho_ceiling",
                   "regimes_rho_paper_ppo1", "regimes_rho_paper_ppo2", "delta_rho", "delta_rho_ci_low",
                   "delta_rho_ci_high")  # ppo1 against ppo2 (regime_comparison): the same in every row


def regime_comparison(data, paper):
    """Does the paper-era code (ppo1) order the 11 Table 1 settings differently from ppo2, and closer to the
    paper? Over the envs where both regimes hold every setting with all its seeds, each regime normalised on
    its own (Table 1's rule): Spearman's ρ between the two regimes' orderings with its seed-bootstrap interval;
    the ρ seed noise alone would leave if both regimes had the same true ordering, √(R₁ R₂) with R each
    regime's Spearman–Brown reliability of a 3-seed grid (Spearman's attenuation, 1904); and ρ(ppo1, paper) −
    ρ(ppo2, paper) with its interval. The two regimes' runs are resampled independently (different RNG
    streams): a conservative choice, since runs that share a seed number also share their reset streams.
    A dict of REGIMES_COLUMNS, or {} until both regimes hold some env whole."""
    paper_t1 = paper.paper_normalised_score.reindex(TABLE1_SETTINGS)
    regime_scores, envs = {}, None
    for regime in REGIME_PREFIX:
        t1 = [regime_variant(s, regime) for s in TABLE1_SETTINGS]
        if not set(t1) <= set(data.variants):
            return {}
        scores = data.scores[data.scores.variant.isin(t1)]
        whole = set(complete_envs(scores, t1, data.planned_seeds))
        envs = whole if envs is None else envs & whole
        regime_scores[regime] = scores.assign(variant=scores.variant.map(paper_name))  # ppo2 names, to compare
    if not envs:
        return {}
    means, replicates, reliability = {}, {}, {}
    for seed_offset, (regime, scores) in enumerate(regime_scores.items()):
        scores = scores[scores.env.isin(envs)]
        means[regime] = stats.normalised_means(scores, data.random_score)
        replicates[regime] = stats.normalise_replicates(
            stats.bootstrap_cell_means(scores, seed=stats.BOOTSTRAP_SEED + seed_offset), data.random_score)
        split = stats.seed_split_agreement(scores, data.random_score)
        seeds = scores.seed.nunique()
        reliability[regime] = stats.predicted_agreement(np.mean(split[0]), seeds, seeds) if split else np.nan
    rho_reps = stats.spearman_rows(replicates["ppo1"][TABLE1_SETTINGS], replicates["ppo2"])
    rho_paper = {regime: stats.spearman(means[regime], paper_t1) for regime in means}
    delta_reps = stats.spearman(replicates["ppo1"], paper_t1) - stats.spearman(replicates["ppo2"], paper_t1)
    return dict(zip(REGIMES_COLUMNS, (
        ", ".join(sorted(envs)), stats.spearman(means["ppo1"], means["ppo2"][TABLE1_SETTINGS]),
        *np.nanquantile(rho_reps, [0.025, 0.975]), np.sqrt(reliability["ppo1"] * reliability["ppo2"]),
        rho_paper["ppo1"], rho_paper["ppo2"], rho_paper["ppo1"] - rho_paper["ppo2"],
        *np.nanquantile(delta_reps, [0.025, 0.975]))))


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
    t1 = regime_table[regime_table.variant.map(paper_name).isin(TABLE1_SETTINGS)]
    envs = aggregated_envs(t1)
    return envs if len(envs) < t1.filter(like=" seeds").notna().any().sum() else None


def table_ppo_objectives(data):
    """Table 1 under both code-level regimes side by side, each against the paper's column."""
    paper = pd.read_csv(PUBLISHED / "ppo_table1.csv").set_index("variant")
    parts = [objectives_one_regime(data, regime, paper) for regime in REGIME_PREFIX]
    table = pd.concat([p for p in parts if len(p)], ignore_index=True)
    for column in RHO_COLUMNS:  # ρ needs MIN_SETTINGS_FOR_RHO settings with a paper value; its checks need seeds
        table[column] = table.get(column, np.nan)
    comparison = regime_comparison(data, paper)
    for column in REGIMES_COLUMNS:
        table[column] = comparison.get(column, np.nan)
    data.scores = data.scores.merge(table[["variant"]], on="variant")  # what the table covers
    regimes = list(dict.fromkeys(map(regime_of, data.variants)))  # planned, with runs or not (a partial grid)
    # one row per planned setting, with runs or not: its display name → its ppo2-regime name
    key_of = {paper.setting.get(paper_name(v), paper_name(v)): paper_name(v) for v in data.variants}
    settings = list(key_of)
    wide = pd.DataFrame(index=pd.Index(settings, name="setting"))
    by_setting = table.drop_duplicates("setting").set_index("setting").reindex(settings)
    by_setting["paper"] = [paper.paper_normalised_score.get(key_of[s], np.nan) for s in settings]
    wide["paper (Table 1)"] = [f"{p:.2f}" if pd.notna(p) else "not in the paper" for p in by_setting.paper]
    paper_rank = paper_ranks(paper)
    wide["paper rank"] = [f"{paper_rank[key_of[s]]:g}" if key_of[s] in paper_rank else "" for s in settings]
    cells = table.set_index(["setting", "regime"])

    def absent(setting, regime):
        """What a cell without runs says: planned and not run yet, or not planned for this regime."""
        return MISSING if regime_variant(key_of[setting], regime) in data.variants else "not planned"

    for regime in regimes:
        def cell(setting, text):
            return text(cells.loc[(setting, regime)]) if (setting, regime) in cells.index else absent(setting, regime)
        wide[f"{regime}: mean [95% CI]"] = [cell(s, lambda r: ci_text(r["mean"], r.mean_ci_low, r.mean_ci_high, 2)
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
    fig, ax = plt.subplots(figsize=(8.5, 0.5 * len(settings) + 1.6))
    y = np.arange(len(settings))
    offsets = dict(zip(regimes, np.linspace(-0.15, 0.15, len(regimes))))
    for regime, marker in zip(regimes, "os"):
        t = table[table.regime == regime].set_index("setting").reindex(settings)
        rho = t.rho.dropna()
        label = f"{regime} regime: mean, 95% CI" + (f"; ρ with the paper {rho.iloc[0]:.2f} "
                                                    f"[{t.rho_ci_low.dropna().iloc[0]:.2f}, "
                                                    f"{t.rho_ci_high.dropna().iloc[0]:.2f}]" if len(rho) else "")
        label += f"; over {scope[regime]} only" if regime in scope else ""
        ax.errorbar(t["mean"], y + offsets[regime], xerr=[t["mean"] - t.mean_ci_low, t.mean_ci_high - t["mean"]],
                    fmt=marker, label=label)
    ax.plot(by_setting.paper.reindex(settings), y, "kx", markersize=9, mew=2, label="PPO paper, Table 1")
    ax.set_yticks(y, settings)
    ax.invert_yaxis()
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel("normalised score (random policy 0, the regime's best Table 1 setting per env 1)")
    # below the axis label (a fixed 40 points under the axes, whatever the figure's height): covers no point or label
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0), fontsize=8,
              bbox_transform=matplotlib.transforms.offset_copy(ax.transAxes, fig, y=-40, units="points"))
    fig.tight_layout()
    rhos = table.dropna(subset=["rho"]).drop_duplicates("regime")
    data.note = "Spearman's ρ between our mean normalised scores and the paper's over the Table 1 settings: " + "; ".join(
        f"{r.regime} regime {r.rho:.2f} [95% seed-bootstrap interval {r.rho_ci_low:.2f}, {r.rho_ci_high:.2f}]"
        for r in rhos.itertuples()) + "." if len(rhos) else ""
    data.note += "".join(f"\n\n{r.regime} regime: {checks}" for _, r in rhos.iterrows()
                         if (checks := rho_checks_text(r)))
    data.note += f"\n\nppo1 against ppo2: {regimes_text(table.iloc[0])}" if comparison else ""
    data.note += "".join(f"\n\nPartial: the {regime} regime's means, ranks and ρ are over {envs} only, the envs that "
                         "hold every setting with all its seeds so far." for regime, envs in scope.items())
    return table, [wide, per_env], fig


def rho_checks_text(r):
    """How far seed noise lets a regime's ρ with the paper reach (a row of its table, a Series;
    stats.seed_split_agreement, stats.predicted_agreement), over all the settings and without No clipping;
    '' when not measured."""
    r = r.reindex(r.index.union(RHO_COLUMNS))  # a table without these columns has measured none of them
    parts = []
    if pd.notna(r.rerun_rho):
        text = (f"two independent grids with as many seeds as ours would order the settings alike at about "
                f"ρ {r.rerun_rho:.2f} ({r.rerun_rho_min:.2f} to {r.rerun_rho_max:.2f} from the least and the most "
                f"agreeing pair of our seeds, whose single-seed grids agree at ρ {r.seed_pair_rho_min:.2f} to "
                f"{r.seed_pair_rho_max:.2f}; Spearman–Brown")
        if pd.notna(r.held_out_rho):
            text += (f", which predicts {r.held_out_rho_predicted:.2f} for one seed against the others where we "
                     f"observe {r.held_out_rho:.2f}")
        parts.append(text + ")")
    if pd.notna(r.rho_without_none):
        text = (f"without No clipping or penalty, ρ with the paper over the other settings is "
                f"{r.rho_without_none:.2f} [{r.rho_ci_low_without_none:.2f}, {r.rho_ci_high_without_none:.2f}]")
        if pd.notna(r.rerun_rho_without_none):
            text += (f", where two such grids would agree at about {r.rerun_rho_without_none:.2f} "
                     f"({r.rerun_rho_min_without_none:.2f} to {r.rerun_rho_max_without_none:.2f}, from pairs of seeds that "
                     f"agree at ρ {r.seed_pair_rho_min_without_none:.2f} to {r.seed_pair_rho_max_without_none:.2f})")
        parts.append(text)
    return "; ".join(parts) + "." if parts else ""


def regimes_text(r):
    """ppo1 against ppo2 (a row of the Table 1 table, a Series; regime_comparison), or '' when not compared."""
    r = r.reindex(r.index.union(REGIMES_COLUMNS))
    if pd.isna(r.regimes_rho):
        return ""
    text = (f"over {r.regimes_envs} (the envs both regimes hold whole), the two order the "
            f"{len(TABLE1_SETTINGS)} settings alike at ρ {r.regimes_rho:.2f} [95% seed-bootstrap interval "
            f"{r.regimes_rho_ci_low:.2f}, {r.regimes_rho_ci_high:.2f}]")
    if pd.notna(r.regimes_rho_ceiling):
        text += (f"; with the same true ordering, seed noise alone would leave about {r.regimes_rho_ceiling:.2f}, so "
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


def table_algorithms(data):
    """One row per variant (ours, then the published rows matched to it), one column per env."""
    table, _, fig = table_curves(data)
    published = pd.read_csv(PUBLISHED / "final_returns.csv")
    rows = {}
    for variant in data.variants:
        row = {}
        for env in data.envs:
            ours = data.scores[(data.scores.variant == variant) & (data.scores.env == env)].score
            row[env] = (f"{ours.mean():.0f} ± {ours.std(ddof=0):.0f}{data.seeds_note(len(ours))}" if len(ours)
                        else MISSING)
        rows[f"ours: {variant}"] = row
        for source, algo in PUBLISHED_MATCH.get(variant, []):
            label = f"{source} {algo}"
            for env in data.envs:
                hit = published[(published.source == source) & (published.algo == algo) &
                                (published.env == env.rsplit("-", 1)[0])]
                rows.setdefault(label, {})[env] = "; ".join(
                    f"{p.value:.0f}{f' ± {p.std:.0f}' if pd.notna(p.std) else ''} ({p.env_version}, "
                    f"{step_label(p.steps)} steps, [{p.tag}])" for p in hit.itertuples()) or "not published"
    wide = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=data.envs)
    wide.index.name = f"final score, mean ± std over seeds ({', '.join(step_label(data.steps[e]) for e in data.envs[:1])} steps)"
    return table, wide, fig


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
    return *time_limit_rows(data, grid.time_limit_cells(data.config, data.scale)), learning_curves(data)


def time_limit_rows(data, cells):
    """Per env: each cell's final score (mean over seeds, 95% bootstrap interval), then the differences of
    time_limit_contrasts, each with the interval from resampling the two cells' seeds independently
    (stats.bootstrap_cell_means). Returns the table (a row per cell and env, kind 'score', then per difference
    variant − minus and env, kind 'difference') and its wide form."""
    scores = per_env_table(data).set_index(["variant", "env"])
    replicates = stats.bootstrap_cell_means(data.scores)
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
            if (a, env) in replicates.columns and (b, env) in replicates.columns:
                low, high = (replicates[(a, env)] - replicates[(b, env)]).quantile([0.025, 0.975])
                point = scores.loc[(a, env), "mean"] - scores.loc[(b, env), "mean"]
                seeds = int(min(scores.loc[(a, env), "seeds"], scores.loc[(b, env), "seeds"]))
                row.update(seeds=seeds, mean=point, ci_low=low, ci_high=high,
                           text=f"{point:+.1f} [{low:+.1f}, {high:+.1f}]" + data.seeds_note(seeds))
            rows.append(row)
    table = pd.DataFrame(rows)
    wide = table.pivot(index="label", columns="env", values="text").reindex(index=table.label.unique(),
                                                                            columns=data.envs)
    wide.index.name = "final score; then differences of two means"
    return table, wide


BUILDERS = {"baselines": table_curves, "gae_lambda": table_gae_lambda, "ppo_objectives": table_ppo_objectives,
            "time_limits": table_time_limits, "algorithms": table_algorithms}


def build(scale_dir, config, scale, experiment, partial=False, allow_stale=False):
    """Write the experiment's table (CSV + Markdown) and figure (PNG + PDF); return the Data, or None when a
    partial report has no run of this experiment yet (the table then says so and the figure is empty)."""
    out = pathlib.Path(scale_dir)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    status = GridStatus(scale_dir, config, scale, [experiment]).check(partial, allow_stale)
    if not status.found():
        pd.DataFrame(columns=["variant", "env"]).to_csv(out / "tables" / f"{experiment}.csv", index=False)
        (out / "tables" / f"{experiment}.md").write_text(f"No runs yet: none of the {len(status.planned)} planned "
                                                          "runs of this experiment is finished.\n")
        fig, ax = plt.subplots(figsize=(6, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, f"{experiment} ({scale} scale): no runs yet", ha="center", va="center")
        save_figure(fig, out / "figures" / experiment)
        return None
    data = Data(scale_dir, config, scale, experiment, status)
    table, wide, fig = BUILDERS[experiment](data)
    table.to_csv(out / "tables" / f"{experiment}.csv", index=False)
    frames = wide if isinstance(wide, list) else [wide]  # a builder may split its table in several
    markdown = "\n\n".join(f.to_markdown() for f in frames) + (f"\n\n{data.note}" if getattr(data, "note", "") else "")
    markdown += "".join(f"\n\n{line}" for line in data.status.lines())
    (out / "tables" / f"{experiment}.md").write_text(markdown + "\n")
    partial = (f"; partial: {len(status.found())} of {len(status.planned)} planned runs" if status.missing else "")
    fig.suptitle(f"{experiment} ({scale} scale{partial})", y=1.02)  # a figure seen alone says it is partial
    save_figure(fig, out / "figures" / experiment, bbox_inches="tight")
    return data


def save_figure(fig, stem, **kwargs):
    """stem.png and stem.pdf, then close the figure. The PDF gets no creation date, so the same runs
    give the same bytes (the PNG has none by default)."""
    fig.savefig(stem.parent / f"{stem.name}.png", dpi=130, **kwargs)
    fig.savefig(stem.parent / f"{stem.name}.pdf", dpi=130, metadata={"CreationDate": None}, **kwargs)
    plt.close(fig)


def add_grid_flags(parser):
    parser.add_argument("--partial", action="store_true",
                        help="analyse the runs there are: missing runs are listed (default: they stop the analysis)")
    parser.add_argument("--allow-stale", action="store_true",
                        help="accept runs made with other arguments or by other code, and flag them "
                             "(default: they stop the analysis)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scale_dir")
    parser.add_argument("--scale", required=True, choices=["smoke", "quick", "paper"])
    parser.add_argument("--experiment", required=True, choices=sorted(BUILDERS))
    parser.add_argument("--config", default=str(grid.CONFIG), help="the grid's YAML file")
    parser.add_argument("--config-json", help="the grid as JSON (the workflow passes its merged config)")
    add_grid_flags(parser)
    args = parser.parse_args()
    try:
        build(args.scale_dir, grid.from_cli(args.config, args.config_json), args.scale, args.experiment,
              args.partial, args.allow_stale)
    except (RunContractError, grid.ConfigError) as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
