"""One figure and one table per experiment (DESIGN §6-7), drawn from the runs of a scale.

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
from analysis.load import load_random, load_runs  # noqa: E402
from experiments import grid  # noqa: E402

PUBLISHED = pathlib.Path(__file__).resolve().parent / "published"
# which published rows stand beside which of our variants (algorithms experiment)
PUBLISHED_MATCH = {"vpg_gae": [("spinningup_pytorch", "vpg")],
                   "trpo": [("baselines", "trpo_mpi"), ("spinningup_tf1", "trpo")],
                   "ppo_clip_0.2": [("baselines", "ppo2"), ("cleanrl", "ppo_continuous_action")],
                   "ppo_clip_0.2_es_0.01": [("spinningup_pytorch", "ppo")]}


class Data:
    """The runs, scores and anchors one experiment needs, with the runs it expected but lacks."""

    def __init__(self, scale_dir, config, scale, experiment):
        self.scale_dir, self.experiment = pathlib.Path(scale_dir), experiment
        self.variants = grid.experiment_variants(config, scale, experiment)
        expected = grid.experiment_runs(config, scale, experiment)
        runs, _, episodes = load_runs(scale_dir)
        key = ["variant", "env", "seed"]
        wanted = pd.DataFrame(expected, columns=key)
        self.runs = runs.merge(wanted, on=key)
        self.episodes = episodes.merge(wanted, on=key)
        found = set(map(tuple, self.runs[key].itertuples(index=False)))
        self.missing = [r for r in expected if tuple(r) not in found]
        self.envs = list(dict.fromkeys(r.env for r in expected))
        self.steps = {env: grid.steps(config, scale, env) for env in self.envs}
        self.scores = stats.final_scores(self.episodes) if len(self.episodes) else pd.DataFrame(columns=key + ["score"])
        random = load_random(scale_dir)
        self.random_score = random.groupby("env").ep_return.mean()

    def normalised(self, best_from):
        """Scores normalised per env: random policy → 0, best variant of best_from → 1."""
        best = stats.best_of_sweep(self.scores[self.scores.variant.isin(best_from)])
        return self.scores.assign(normalised=stats.normalise(self.scores, self.random_score, best))


def ci_text(point, low, high, digits=1):
    return f"{point:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def per_env_table(data, value="score", digits=1):
    """variant × env: mean over seeds with a 95% bootstrap interval, and the seed count."""
    rows = []
    for (variant, env), g in data.scores.groupby(["variant", "env"], sort=False):
        point, low, high = stats.stratified_bootstrap_ci(g[value], np.zeros(len(g)), stats.aggregate_mean)
        rows.append(dict(variant=variant, env=env, seeds=len(g), mean=point, ci_low=low, ci_high=high,
                         text=ci_text(point, low, high, digits)))
    return pd.DataFrame(rows)


def learning_curves(data):
    curves = pd.concat([stats.curves(data.episodes[data.episodes.env == env], total_steps=data.steps[env])
                        for env in data.envs if (data.episodes.env == env).any()], ignore_index=True)
    grid_ = sns.relplot(data=curves, x="step", y="return", hue="variant", col="env", kind="line",
                        errorbar=("ci", 95), n_boot=1000, seed=stats.BOOTSTRAP_SEED, col_wrap=min(3, len(data.envs)),
                        facet_kws=dict(sharey=False), height=3.2, aspect=1.3, hue_order=data.variants)
    grid_.set_axis_labels("environment steps", "training episode return")
    return grid_.figure


def table_curves(data):
    table = per_env_table(data)
    wide = table.pivot(index="variant", columns="env", values="text").reindex(data.variants).reindex(columns=data.envs)
    return table, wide, learning_curves(data)


def table_gae_lambda(data):
    data.scores = data.scores.merge(data.runs[["variant", "env", "seed", "arg_gae_lambda"]], on=["variant", "env", "seed"])
    data.scores = data.normalised(best_from=data.variants)
    table = per_env_table(data).merge(data.scores.groupby("variant").arg_gae_lambda.first().rename("lambda"),
                                      left_on="variant", right_index=True)
    norm = per_env_table(data, "normalised", digits=2).rename(columns={"mean": "normalised_mean", "text": "normalised"})
    table = table.merge(norm[["variant", "env", "normalised_mean", "normalised"]], on=["variant", "env"])
    # per env, the share of seed resamples in which each λ scores best
    cell_means = stats.bootstrap_cell_means(data.scores)
    p_best = pd.concat([stats.ranking_uncertainty(cell_means.xs(env, axis=1, level="env")).p_best.rename(env)
                        for env in data.envs if env in cell_means.columns.get_level_values("env")], axis=1)
    table["p_best"] = [p_best.at[r.variant, r.env] for r in table.itertuples()]
    wide = table.pivot(index="lambda", columns="env", values="text").sort_index().reindex(columns=data.envs)
    fig, axes = plt.subplots(1, len(data.envs), figsize=(4.2 * len(data.envs), 3.4), squeeze=False)
    for ax, env in zip(axes[0], data.envs):
        sub = data.scores[data.scores.env == env]
        sns.lineplot(data=sub, x="arg_gae_lambda", y="score", marker="o", errorbar=("ci", 95), n_boot=1000,
                     seed=stats.BOOTSTRAP_SEED, ax=ax)
        ax.set(title=env, xlabel="GAE λ", ylabel="final score (last 100 episodes)")
    fig.tight_layout()
    return table.sort_values(["env", "lambda"]), wide, fig


TABLE1_SETTINGS = ["ppo_none", "ppo_clip_0.1", "ppo_clip_0.2", "ppo_clip_0.3", "ppo_kl_adaptive_0.003",
                   "ppo_kl_adaptive_0.01", "ppo_kl_adaptive_0.03", "ppo_kl_fixed_0.3", "ppo_kl_fixed_1",
                   "ppo_kl_fixed_3", "ppo_kl_fixed_10"]


def table_ppo_objectives(data):
    data.scores = data.normalised(best_from=[v for v in data.variants if v in TABLE1_SETTINGS])
    paper = pd.read_csv(PUBLISHED / "ppo_table1.csv").set_index("variant")
    rows = []
    for variant in data.variants:
        g = data.scores[data.scores.variant == variant]
        if g.empty:
            continue
        mean = stats.stratified_bootstrap_ci(g.normalised, g.env, stats.aggregate_mean)
        iqm = stats.stratified_bootstrap_ci(g.normalised, g.env, stats.iqm)
        row = dict(variant=variant, setting=paper.setting.get(variant, variant),
                   paper=paper.paper_normalised_score.get(variant, np.nan), runs=len(g),
                   mean=mean[0], mean_ci_low=mean[1], mean_ci_high=mean[2], iqm=iqm[0], iqm_ci_low=iqm[1],
                   iqm_ci_high=iqm[2])
        for env, e in g.groupby("env"):
            row[f"{env} score"] = e.score.mean()
        rows.append(row)
    table = pd.DataFrame(rows)
    # How firmly do these seeds rank the Table 1 settings? Resample each (setting, env) cell's seeds,
    # renormalise each replicate (its own best setting per env = 1) and rank the settings in it.
    in_t1 = table.variant.isin(TABLE1_SETTINGS)
    t1_scores = data.scores[data.scores.variant.isin(TABLE1_SETTINGS)]
    replicates = stats.normalise_replicates(stats.bootstrap_cell_means(t1_scores), data.random_score)
    table = table.merge(stats.ranking_uncertainty(replicates), left_on="variant", right_index=True, how="left")
    table.loc[in_t1, "rank"] = table[in_t1]["mean"].rank(ascending=False)
    table.loc[in_t1, "paper_rank"] = table[in_t1].paper.rank(ascending=False)
    # Spearman's ρ with the paper's column, at our point estimates and per replicate (one value per table)
    paper_t1 = table[in_t1].set_index("variant").paper.dropna()
    if len(paper_t1) >= 3:
        rho_reps = stats.spearman(replicates, paper_t1)
        table["rho"] = stats.spearman(table.set_index("variant")["mean"], paper_t1)
        table["rho_ci_low"], table["rho_ci_high"] = np.nanquantile(rho_reps, [0.025, 0.975])
    wide = table.assign(**{"ours: mean [95% CI]": [ci_text(r.mean, r.mean_ci_low, r.mean_ci_high, 2) for r in table.itertuples()],
                           "ours: IQM [95% CI]": [ci_text(r.iqm, r.iqm_ci_low, r.iqm_ci_high, 2) for r in table.itertuples()],
                           "ours: rank [95% CI]": [f"{r.rank:.0f} [{r.rank_ci_low:.0f}, {r.rank_ci_high:.0f}]"
                                                   if pd.notna(r.rank) else "" for r in table.itertuples()],
                           "P(best)": [f"{p:.2f}" if pd.notna(p) else "" for p in table.p_best],
                           "paper rank": [f"{r:g}" if pd.notna(r) else "" for r in table.paper_rank]})
    wide = wide[["setting", "paper", "paper rank", "ours: mean [95% CI]", "ours: IQM [95% CI]", "ours: rank [95% CI]",
                 "P(best)"] + [c for c in table.columns if c.endswith(" score")]].rename(columns={"paper": "paper (Table 1)"})
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(table) + 1.2))
    y = np.arange(len(table))
    ax.errorbar(table["mean"], y - 0.15, xerr=[table["mean"] - table.mean_ci_low, table.mean_ci_high - table["mean"]],
                fmt="o", label="ours: mean, 95% CI")
    ax.errorbar(table.iqm, y + 0.15, xerr=[table.iqm - table.iqm_ci_low, table.iqm_ci_high - table.iqm],
                fmt="s", label="ours: IQM, 95% CI")
    ax.plot(table.paper, y, "kx", markersize=8, label="PPO paper, Table 1")
    ax.set_yticks(y, table.setting)
    ax.invert_yaxis()
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel("normalised score (random policy 0, best Table 1 setting per env 1)")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return table, wide.set_index("setting"), fig


def table_algorithms(data):
    table, wide, fig = table_curves(data)
    published = pd.read_csv(PUBLISHED / "final_returns.csv")
    rows = []
    for variant in data.variants:
        for env in data.envs:
            ours = data.scores[(data.scores.variant == variant) & (data.scores.env == env)].score
            base, version = env.rsplit("-", 1)
            row = {"variant": variant, "env": env,
                   "ours": f"{ours.mean():.0f} ± {ours.std(ddof=0):.0f} ({len(ours)} seeds, {data.steps[env]:,} steps)"
                   if len(ours) else "missing"}
            for source, algo in PUBLISHED_MATCH.get(variant, []):
                hit = published[(published.source == source) & (published.algo == algo) & (published.env == base)]
                for p in hit.itertuples():
                    std = f" ± {p.std:.0f}" if pd.notna(p.std) else ""
                    row[f"{source} {algo}"] = f"{p.value:.0f}{std} ({p.env_version}, {p.steps:,} steps, [{p.tag}])"
            rows.append(row)
    return table, pd.DataFrame(rows).set_index(["variant", "env"]), fig


BUILDERS = {"baselines": table_curves, "gae_lambda": table_gae_lambda, "ppo_objectives": table_ppo_objectives,
            "algorithms": table_algorithms}


def build(scale_dir, config, scale, experiment):
    """Write the experiment's table (CSV + Markdown) and figure (PNG + PDF); return the paths."""
    data = Data(scale_dir, config, scale, experiment)
    table, wide, fig = BUILDERS[experiment](data)
    out = pathlib.Path(scale_dir)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "tables" / f"{experiment}.csv", index=False)
    markdown = wide.to_markdown()
    if data.missing:
        markdown += "\n\nMissing runs (expected by the grid, not found): " + \
            ", ".join(f"{r.variant}/{r.env}/seed{r.seed}" for r in data.missing)
    (out / "tables" / f"{experiment}.md").write_text(markdown + "\n")
    fig.suptitle(f"{experiment} ({scale} scale)", y=1.02)
    for ext in ("png", "pdf"):
        fig.savefig(out / "figures" / f"{experiment}.{ext}", bbox_inches="tight", dpi=130)
    plt.close(fig)
    return data


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scale_dir")
    parser.add_argument("--scale", required=True, choices=["smoke", "quick", "paper"])
    parser.add_argument("--experiment", required=True, choices=sorted(BUILDERS))
    parser.add_argument("--config", default=str(grid.CONFIG), help="the grid's YAML file")
    parser.add_argument("--config-json", help="the grid as JSON (the workflow passes its merged config)")
    args = parser.parse_args()
    build(args.scale_dir, grid.from_cli(args.config, args.config_json), args.scale, args.experiment)


if __name__ == "__main__":
    main()
