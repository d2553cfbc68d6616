"""results/<scale>/REPORT.md: a summary and the tables to cite first, then every figure and table with a short
factual reading of each beside the published result, and the protocol, versions and compute.

  python -m analysis.report results/quick --scale quick       # after analysis.experiments

The report only assembles: each experiment's table, figure, reading, summary, cite table and caption come from
analysis/<experiment>.py (analysis.experiments.module), its hand-written discussion from analysis.discussions.
The readings are generated from the tables, so they always describe the numbers shown. A discussion written by
hand (analysis/discussion/<scale>[/<subset>]/<experiment>.md) is shown only beside the numbers it was written
from (its fingerprint lines) and only if every number it quotes is printed in the report.
"""
import argparse
import datetime
import pathlib
import re
import sys
from types import SimpleNamespace

import pandas as pd

from analysis import stats
from analysis.common import INTERVALS, add_grid_flags, output_dir, publish, scoped, unpublished
from analysis.discussions import discussion
from analysis.experiments import module
from analysis.load import GridStatus, RunContractError, load_random, load_runs
from experiments import grid, repack


EXPERIMENTS = list(grid.ANALYSED)


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
        same = all(grid.code_reason(algo, sha, cpu) is None for cpu in group.cpu.unique())  # on the CPUs that made them
        other = " the same numbers as this checkout's" if same else " not shown to compute this checkout's numbers"
        files.append(f"{algo}.py {sha[:12]} ({runs_count(len(group))},{other})")
    dirty = int(runs.git_dirty.eq(True).sum())  # None: not recorded
    dirty_text = f", {runs_count(dirty)} from a working tree with uncommitted changes" if dirty else ""
    return (f"Code: by fingerprint (`experiments/code_versions.yaml`), {', '.join(files)}; the runs were started "
            f"at {runs.git_commit.nunique()} git commit(s) (run.json's `git_commit`){dirty_text}.")


def compute_text(scale_dir, runs, jobs=True):
    """The runs' steps, core-hours and memory; with `jobs`, the Snakemake benchmarks of every job of the scale (a
    subset's report leaves them out: a job trains all the seeds of a variant × env, the subset's and others')."""
    b = repack.benchmarks(scale_dir) if jobs else []  # each job's own file, or its row folded into benchmarks/train.tsv
    text = (f"{len(runs)} training runs, {runs.steps.sum():,} environment steps, "
            f"{runs.walltime_s.sum() / 3600:.2f} core-hours of training (sum of run.json wall times, one thread each); "
            f"largest peak resident memory of a run {runs.peak_rss_mb.max():.0f} MB.")
    if len(b):
        text += f" Snakemake benchmarks: {len(b)} jobs, {b.s.sum() / 3600:.2f} job-hours, max RSS {b.max_rss.max():.0f} MB."
    return text


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
                     f"{scale} ({steps // 1000}k steps)": f"{here.mean():.0f} ± {here.std(ddof=1):.0f} ({len(here)} seeds)",
                     "paper scale (1M steps)": f"{g.score.mean():.0f} ± {g.score.std(ddof=1):.0f} ({len(g)} seeds)"})
    if rows:
        lines += ["", f"The same variants at 1M steps (`{paper}`, final score, mean ± sample SD over seeds):", "",
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


def report(scale_dir, config, scale, partial=False, allow_stale=False, subset=None):
    """REPORT.md: a summary of one screen (each experiment's finding with its number and interval, the protocol in
    three lines, the contents), a table to cite per experiment, then each experiment's figure with its caption, its
    tables, the generated reading and the hand-written discussion (shown only where its fingerprint and its numbers
    check out), and last the protocol, versions, compute and caveats in full."""
    scale_dir, out = pathlib.Path(scale_dir), output_dir(scale_dir, subset)
    about = config["scales"][scale].get("subsets", {}).get(subset, {}).get("description")
    config = scoped(config, scale, subset)
    status = GridStatus(scale_dir, config, scale, analysed(config, scale), gradient_noise=True).check(partial, allow_stale)
    runs, progress, episodes = load_runs(scale_dir, only=status.found())
    scores = stats.final_scores(episodes) if len(episodes) else None
    flags = (f" --subset {subset}" if subset else "") + (" --partial" if partial else "") + (
        " --allow-stale" if allow_stale else "")
    title = f"# pgrepro results: {scale} scale" + ((f", subset {subset}" + (f" ({about})" if about else "")) if subset else "")
    made = (f"Generated {datetime.date.today().isoformat()} by `python -m analysis.report {scale_dir} --scale {scale}{flags}` "
            f"from {runs_count(len(runs))} under `{scale_dir}/runs`; `snakemake --cores 2 --config scale={scale}` "
            "regenerates everything.")
    protocol = protocol_lines(config, scale, scale_dir)
    sections, summaries, cites, toc, written = [], [], [], [], []
    for name in analysed(config, scale):
        table_md = out / "tables" / f"{name}.md"
        if not table_md.exists():
            continue
        table = pd.read_csv(out / "tables" / f"{name}.csv")
        experiment = module(name)
        heading = f"{name}: {config['experiments'][name]['description']}"
        toc.append(f"[{name}](#{anchor(heading)})")
        context = SimpleNamespace(runs=runs, progress=progress, scores=scores, config=config, scale=scale, scale_dir=scale_dir,
                                  planned=grid.experiment_runs(config, scale, name))
        section = [f"## {heading}", "", f"![{name}](figures/{name}.png)", "",
                   f"*Figure: {experiment.caption(context)}*", "", table_md.read_text(), ""]
        if len(table):  # a partial report may have no run of this experiment yet
            reading = experiment.reading(table, context)
            section += ["**Reading.**", "", reading, ""]
            written.append((len(sections) + len(section), table, name))  # its discussion goes here, once all is generated
            if finding := experiment.summary(table, context):
                summaries.append(f"- **{name}**: {finding}")
            cites += [f"**{name}** ({config['experiments'][name]['description']})", "", experiment.cite(table, context), ""]
        sections += section
    # a discussion may quote any generated number of the report (its own section's, another experiment's it
    # compares with, or the intervals of the tables to cite), never one the report does not print
    generated = "\n".join(cites + sections + protocol)
    for at, table, name in reversed(written):
        sections[at:at] = discussion(table, f"{scale}/{subset}" if subset else scale, name, generated=generated)
    beside = []
    if not subset:
        more, more_found = more_seeds(config, scale, scores)
        beside = subset_summaries(scale_dir, config, scale, runs, progress, scores) + more
        summaries += more_found
    parts = [title, "", made, "", "## Summary", ""]
    if status.missing or status.stale or status.noise_missing or status.noise_stale:
        parts += [f"**Not the whole planned grid**: {len(status.planned) - len(status.missing)} of "
                  f"{len(status.planned)} planned runs; the findings below are from the runs there are (see Status).", ""]
    parts += summaries + ["", f"Protocol: {protocol_summary(config, scale)}", "",
                          "Contents: [cite this](#cite-this) · " + "".join(
                              f"[{h[3:]}](#{anchor(h[3:])}) · " for h in beside if h.startswith("## ")) + " · ".join(toc)
                          + " · [protocol](#protocol) · [versions and compute](#versions-and-compute) · [caveats](#caveats)",
                          "", "## Cite this", "",
                          "The tables below are the numbers to cite, each with its interval (Protocol says what an "
                          "interval is); the sections after them give the figures, the full tables and the readings.", ""]
    parts += cites + beside
    if status.missing or status.stale or status.noise_missing or status.noise_stale:
        parts += ["## Status: not the whole planned grid", ""] + grid_progress(config, scale, status) + [
            "- A table cell with fewer seeds than planned says how many it has.", ""]
    parts += budget_caveat(scale_dir, config, scale)
    parts += sections
    parts += ["## Protocol", ""] + protocol + [
        "", "## Versions and compute", "", versions_text(runs), "", compute_text(scale_dir, runs, jobs=not subset), "",
        "## Caveats", "",
        "- Published numbers were measured on other environment versions (v1-v4; ours are -v5, MuJoCo 4.0) and, at "
        "this scale, often at other step budgets: compare orderings, not decimals.",
        "- Table 1's absolute values are not reproducible: the paper does not publish its per-env random and best "
        "anchors; our normalisation uses our own.", ""]
    unpublished(out / "REPORT.md").write_text("\n".join(parts))
    publish(out / "REPORT.md")


def subset_summaries(scale_dir, config, scale, runs, progress, scores):
    """Each subset's summary (scales.<scale>.subsets, e.g. the 3-seed grid), finding by finding, read from the
    subset's own tables, so that a reader sees what the scale's runs say beside what part of them said."""
    lines = []
    for name, spec in config["scales"][scale].get("subsets", {}).items():
        chosen, tables = scoped(config, scale, name), output_dir(scale_dir, name) / "tables"
        found = []
        for experiment in analysed(chosen, scale):
            path = tables / f"{experiment}.csv"
            table = pd.read_csv(path) if path.exists() else pd.DataFrame()
            if table.empty:
                continue
            planned = grid.experiment_runs(chosen, scale, experiment)
            mine = lambda frame: stats.planned_rows(frame, planned)  # noqa: E731
            context = SimpleNamespace(runs=mine(runs), progress=mine(progress), config=chosen, scale=scale,
                                      scores=None if scores is None else mine(scores), scale_dir=scale_dir,
                                      planned=planned)
            if finding := module(experiment).summary(table, context):
                found.append(f"- **{experiment}**: {finding}")
        if found:
            lines += [f"## The same findings from {name}", "", f"{spec.get('description', name).capitalize()}: the summary of its "
                      f"own report ([{name}/REPORT.md]({name}/REPORT.md)), beside the one above.", "", *found, ""]
    return lines


def more_seeds(config, scale, scores):
    """For each subset of the scale that keeps fewer seeds (scales.<scale>.subsets, e.g. seeds1-3): what the other
    seeds changed, over the cells (variant × env of the subset's envs) that have every planned seed. Does the
    subset's t-interval of a cell hold the mean of the cell's other seeds (stats.held_out_cells; the share to
    expect is stats.held_out_expected), and which pairs of variants on one env does Welch's interval decide with
    the subset's seeds, with all of them, and in which direction (stats.pair_decisions)? Returns the section's
    lines and its one-line finding for the summary."""
    lines, found_lines = [], []
    if scores is None:
        return lines, found_lines
    found = {(r.variant, r.env, r.seed) for r in scores.itertuples()}
    for name, spec in config["scales"][scale].get("subsets", {}).items():
        first = spec.get("seeds")
        if not first:
            continue
        rows, cells_all, pairs_all, incomplete = [], [], [], False
        for experiment in analysed(config, scale):
            planned = [r for r in grid.experiment_runs(config, scale, experiment) if r.env in spec.get("envs", [r.env])]
            cells = {}
            for r in planned:
                cells.setdefault((r.variant, r.env), []).append((r.variant, r.env, r.seed))
            complete = {c for c, keys in cells.items() if all(k in found for k in keys)}
            incomplete |= len(complete) < len(cells)
            if not complete:
                continue
            mine = scores[[(v, e) in complete for v, e in zip(scores.variant, scores.env)]]
            held, pairs = stats.held_out_cells(mine, first), stats.pair_decisions(mine, first)
            cells_all.append(held)
            pairs_all.append(pairs.assign(experiment=experiment))
            rows.append(more_seeds_row(experiment, len(complete), len(cells), held, pairs))
        if not rows:
            continue
        held = pd.concat(cells_all).drop_duplicates(["variant", "env"])
        pairs = pd.concat(pairs_all).drop_duplicates(["env", "a", "b"])
        total = more_seeds_row("all, each cell and pair once", len(held), None, held, pairs)
        k, m = int(held.k.median()), int(held.m.median())
        seeds_first = f"seeds {min(first)}-{max(first)}" if first == list(range(min(first), max(first) + 1)) else \
            "seeds " + ", ".join(map(str, first))
        heading = f"What the seeds beyond {name} changed"
        decided_first, decided_all, reversed_, undecided = pair_counts(pairs)
        found_lines.append(
            f"- **seeds beyond {name}** ({len(held)} cells with every seed{' so far' if incomplete else ''}): "
            f"{held.holds.sum()} of {len(held)} {seeds_first} intervals held the mean of the other seeds "
            f"({stats.held_out_expected(k, m):.0%} would for normal seeds); of {len(pairs)} pairs of variants on one "
            f"env, {seeds_first} decided {decided_first}, all seeds {decided_all}, and {reversed_} reversed, "
            f"{undecided} undecided now ([details](#{anchor(heading)})).")
        lines += [f"## {heading}", "",
                  f"Over the cells (variant × env) of the {name} envs that have every planned seed"
                  + (", the rest still training" if incomplete else "")
                  + f". Interval: does the 95% t-interval from {seeds_first} ({name}/REPORT.md prints it) hold "
                  f"the mean of the cell's other seeds? If every seed's score came from one normal distribution it "
                  f"would {stats.held_out_expected(k, m):.0%} of the time ({k} seeds against {m}: the other mean has "
                  "noise of its own). Pairs: two variants on one env, compared by Welch's 95% interval of the "
                  f"difference of their means, with {seeds_first} and with all seeds; decided where it excludes 0 "
                  "(no correction for the many pairs).", "",
                  "| experiment | cells with every seed | interval holds the other seeds' mean | interval width, all "
                  "seeds / first (median) | pairs | decided, first seeds | decided, all seeds | decided first, "
                  "reversed | decided first, undecided now |",
                  "|---|---|---|---|---|---|---|---|---|", *rows, total, ""]
        by_env = held.groupby("env", sort=False).holds.agg(["sum", "size"])
        lines += ["By env, the intervals that hold the other seeds' mean: " + "; ".join(
            f"{env} {int(r['sum'])} of {int(r['size'])}" for env, r in by_env.iterrows()) + ".", ""]
        misses = held[~held.holds]
        if len(misses):
            lines += [f"Cells whose {seeds_first} interval misses the other seeds' mean: " + "; ".join(
                f"{r.variant} on {r.env}, [{r.low:.5g}, {r.high:.5g}] against {r.rest_mean:.5g}"
                + (f" (its {r.k} seeds scored the same: an interval of no width, no t-interval's coverage)"
                   if r.low == r.high else "") for r in misses.itertuples()) + ".", ""]
    return lines, found_lines


def pair_counts(pairs):
    """(decided by the first seeds, decided by all, decided first and reversed, decided first and undecided now)."""
    first = pairs[pairs.first_sign != 0]
    return (len(first), int((pairs.all_sign != 0).sum()), int((first.all_sign == -first.first_sign).sum()),
            int((first.all_sign == 0).sum()))


def more_seeds_row(experiment, complete, planned_cells, held, pairs):
    low, high = stats.share_interval(held.holds.sum(), len(held))
    cells = f"{complete} of {planned_cells}" if planned_cells else f"{complete}"
    return (f"| {experiment} | {cells} | {held.holds.sum()} of {len(held)} ({held.holds.mean():.0%}) "
            f"[{low:.0%}, {high:.0%}] | {(held.width_all / held.width_first).median():.2f} | {len(pairs)} | "
            + " | ".join(map(str, pair_counts(pairs))) + " |")


def anchor(heading):
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def protocol_summary(config, scale):
    """The protocol in three lines' worth."""
    sc = config["scales"][scale]
    seeds = sorted({s for chosen in sc["experiments"].values() for s in chosen["seeds"]})
    others = {env: n for env in grid.random_envs(config, scale) if (n := grid.steps(config, scale, env)) != sc["steps"]}
    budget = f"{sc['steps']:,}" + (" (" + ", ".join(f"{env} {n:,}" for env, n in sorted(others.items())) + ")"
                                   if others else "")
    return (f"{budget} environment steps per run, seeds {seeds[0]}-{seeds[-1]}; a run's "
            "score is the mean return of its last 100 training episodes (PPO paper §6.1); a cell's interval is the 95% "
            "Student-t interval of its seeds' mean, an aggregate over tasks rliable's stratified bootstrap.")


def protocol_lines(config, scale, scale_dir):
    """The protocol in full: budgets, scores, normalisation, intervals, curves, each experiment's grid, the anchors."""
    sc = config["scales"][scale]
    own = sc.get("env_steps", {})
    lines = [f"- Steps per run: {sc['steps']:,}" + "".join(f"; {env} {n:,}" for env, n in own.items()) + "." + (
        f" Why: {sc['steps_why']}" if own and sc.get("steps_why") else ""),
             "- Score of a run: mean return of its last 100 training episodes (PPO paper §6.1), raw reward.",
             "- Normalised score: (score − random) / (best − random) per env; `random` = mean return of "
             f"{sc['random_episodes']} uniform-random episodes (the random experiment), `best` = the best setting's "
             "mean in the sweep (Table 1's rule).",
             f"- Intervals: {INTERVALS} Bootstraps: {stats.BOOTSTRAP_REPS:,} resamples, seed {stats.BOOTSTRAP_SEED}; "
             "IQM = mean of the middle 50% of runs.",
             "- Learning curves: each run's episode returns averaged over 50 equal step intervals, carried forward "
             "through intervals without a finished episode; mean over seeds with a 95% t-interval band.",
             "- Learning speed of a run (GAE-λ section): the mean of its learning curve over those intervals, i.e. the "
             "area under the curve divided by the steps; it rewards learning early as well as ending high."]
    for name in ["random"] + EXPERIMENTS:
        chosen = sc["experiments"].get(name)
        if chosen:
            lines.append(f"- `{name}`: envs {', '.join(chosen['envs'])}; seeds {chosen['seeds']}; variants "
                         f"{', '.join(grid.experiment_variants(config, scale, name)) or '(none)'}.")
    rnd = load_random(scale_dir, grid.random_envs(config, scale))
    if len(rnd):
        lines += ["- Random-policy scores (the 0 of the normalised scores): " + "; ".join(
            f"{env} {g.ep_return.mean():.1f}" for env, g in rnd.groupby("env")) + "."]
    return lines


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
        report(args.scale_dir, grid.from_cli(args.config, args.config_json), args.scale, args.partial, args.allow_stale,
               args.subset)
    except (RunContractError, grid.ConfigError) as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
