"""One figure and one table per experiment (docs/DESIGN.md §6-7), drawn from the runs of a scale.

  python -m analysis.experiments results/quick --scale quick --experiment ppo_objectives

writes results/<scale>/tables/<experiment>.{csv,md} and figures/<experiment>.{png,pdf}.
Numbers go to CSV first; the figure is drawn from the same frame; runs the grid expects but
that are not there are listed in the table's Markdown, never silently dropped. Each experiment's
table, figure and reading live in its own module, analysis/<experiment>.py, which gives
`table(data)` → (table, wide table or tables, figure), and for the report `reading(table, context)`,
`summary(table, context)` and `cite(table, context)` → Markdown and `caption(context)`.
"""
import argparse
import importlib

import matplotlib.pyplot as plt
import pandas as pd

from analysis.common import Data, add_grid_flags, output_dir, publish, save_figure, scoped, unpublished
from analysis.load import GridStatus, RunContractError, seed_list
from experiments import grid


def module(experiment):
    """analysis/<experiment>.py, the experiment's table, figure and reading."""
    return importlib.import_module(f"analysis.{experiment}")


def build(scale_dir, config, scale, experiment, partial=False, allow_stale=False, subset=None):
    """Write the experiment's table (CSV + Markdown) and figure (PNG + PDF) under output_dir; return the Data, or
    None when a partial report has no run of this experiment yet (the table then says so and the figure is empty).
    With `subset`, only that subset's runs (grid.subset) count."""
    config, out = scoped(config, scale, subset), output_dir(scale_dir, subset)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    csv, md = out / "tables" / f"{experiment}.csv", out / "tables" / f"{experiment}.md"
    status = GridStatus(scale_dir, config, scale, [experiment]).check(partial, allow_stale)
    if not status.found():
        pd.DataFrame(columns=["variant", "env"]).to_csv(unpublished(csv), index=False)
        unpublished(md).write_text(f"No runs yet: none of the {len(status.planned)} planned runs of this "
                                   "experiment is finished.\n")
        fig, ax = plt.subplots(figsize=(6, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, f"{experiment} ({scale} scale): no runs yet", ha="center", va="center")
        publish(csv, md, *save_figure(fig, out / "figures" / experiment))
        return None
    data = Data(scale_dir, config, scale, experiment, status)
    table, wide, fig = module(experiment).table(data)
    table.to_csv(unpublished(csv), index=False)
    frames = wide if isinstance(wide, list) else [wide]  # a builder may split its table in several
    markdown = "\n\n".join(f.to_markdown() for f in frames) + (f"\n\n{data.note}" if getattr(data, "note", "") else "")
    markdown += "".join(f"\n\n{line}" for line in data.status.lines())
    markdown += "\n\n" + per_seed_scores(data)
    unpublished(md).write_text(markdown + "\n")
    partial = (f"; partial: {len(status.found())} of {len(status.planned)} planned runs" if status.missing else "")
    fig.suptitle(f"{experiment} ({scale} scale{f', {subset}' if subset else ''}{partial})", y=1.0,
                 fontsize=7)  # a figure seen alone says what it is, and that it is partial
    publish(csv, md, *save_figure(fig, out / "figures" / experiment, bbox_inches="tight"))
    return data


def per_seed_scores(data):
    """Every run's final score, variant × env, seeds in order, in a collapsed block: what a discussion may quote
    beside the means (analysis.discussions checks its numbers against this too)."""
    scores = data.scores.sort_values("seed")
    cells = scores.groupby(["variant", "env"]).agg(text=("score", lambda x: " / ".join(f"{v:.1f}" for v in x)),
                                                   seeds=("seed", lambda x: ", ".join(map(str, x))))
    seeds = sorted(scores.seed.unique())
    wide = cells.text.unstack("env").reindex(index=[v for v in data.variants if v in set(scores.variant)],
                                             columns=[e for e in data.envs if e in set(scores.env)])
    short = cells[cells.seeds != ", ".join(map(str, seeds))].reset_index()
    note = ""
    for held, group in short.groupby("seeds", sort=False):  # one line per set of seeds, not one per cell
        envs = group.groupby("variant").env.agg(lambda e: sorted(e, key=data.envs.index))
        where = "; ".join(f"{v} on {'every env' if len(envs[v]) == len(wide.columns) > 1 else ', '.join(envs[v])}"
                          for v in data.variants if v in envs)
        note += f"\n\n{seed_list(map(int, held.split(', '))).capitalize()} only: {where}."
    return (f"<details><summary>Final score of every run (seeds {', '.join(map(str, seeds))}, in that order)</summary>"
            f"\n\n{wide.fillna('').to_markdown()}{note}\n\n</details>")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scale_dir")
    parser.add_argument("--scale", required=True, choices=["smoke", "quick", "paper"])
    parser.add_argument("--experiment", required=True, choices=sorted(grid.ANALYSED))
    parser.add_argument("--config", default=str(grid.CONFIG), help="the grid's YAML file")
    parser.add_argument("--config-json", help="the grid as JSON (the workflow passes its merged config)")
    add_grid_flags(parser)
    args = parser.parse_args()
    try:
        build(args.scale_dir, grid.from_cli(args.config, args.config_json), args.scale, args.experiment,
              args.partial, args.allow_stale, args.subset)
    except (RunContractError, grid.ConfigError) as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
