"""Look inside a committed run: train it again, byte for byte, and print what its batches held.

    python -m experiments.inside_run results/paper/runs/vpg_reward_to_go/Pendulum-v1/seed4 --batches 1 6 26 250

No policy is saved with a run, and none needs to be: its seed fixes every random stream (docs/DESIGN.md §4),
so the same code trains the same policy again. This reads the run's run.json (algorithm, arguments, seed),
trains it again into a temporary folder with the algorithm's `on_batch` hook, checks that its episodes come
out identical to the committed ones (if not, it says so: another CPU model, or code that changed the
numbers), and prints, per batch asked for: the mean return of the episodes that ended in it, the mean of
each observation (all, or those --obs names), the mean absolute value of each raw action the policy sampled,
and, for a bounded action space, the share of actions outside it (the environment clips those to the bound,
so a policy whose mean has left the bounds acts the same whatever its mean does next). It costs one run's
training time.
"""
import argparse
import json
import pathlib
import sys
import tempfile

import gymnasium as gym
import numpy as np
import pandas as pd

from analysis.load import run_file
from experiments import grid
from experiments.equivalence import without_clock


def batch_summary(batch, low=None, high=None, dims=None):
    """One batch's mean observation per dimension (those in `dims`, or all), mean |raw action| per dimension
    and, given the action bounds, the share of action components outside them."""
    obs = batch["obs"].reshape(-1, batch["obs"].shape[-1])
    actions = batch["actions"].reshape(len(obs), -1).astype(float)
    row = {f"obs {i}": v for i, v in enumerate(obs.mean(axis=0)) if dims is None or i in dims}
    row.update({f"|action {j}|": v for j, v in enumerate(np.abs(actions).mean(axis=0))})
    if low is not None:
        row["actions outside the bounds"] = ((actions < low) | (actions > high)).mean()
    return row


def inside(run_dir, batches, scratch, dims=None):
    """(identical to the committed episodes, a frame with a row per batch asked for that the run has, how many
    batches the run has)."""
    meta = json.loads((run_dir / "run.json").read_text())
    module = grid.algorithm(meta["algo"])
    fields = set(module.Args.__dataclass_fields__)
    args = module.Args(**{**{k: v for k, v in meta["args"].items() if k in fields},
                          "out": str(scratch / "run"), "overwrite": True, "compress": False})
    space = gym.make(args.env_id).action_space
    low, high = (space.low, space.high) if isinstance(space, gym.spaces.Box) else (None, None)
    seen, rows = [0], {}

    def on_batch(batch):
        seen[0] += 1
        if seen[0] in batches:
            rows[seen[0]] = batch_summary(batch, low, high, dims)

    out = pathlib.Path(module.train(args, quiet=True, on_batch=on_batch))
    identical = without_clock(out / "episodes.csv") == without_clock(run_file(run_dir, "episodes"))
    progress = pd.read_csv(out / "progress.csv").set_index("iteration")
    frame = pd.DataFrame([{"batch": b, "step": progress.global_step[b], "mean return": progress.ep_return_mean[b],
                           **rows[b]} for b in sorted(rows)])
    return identical, frame, seen[0]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("run_dir", type=pathlib.Path, help="a run directory (with run.json and episodes.csv[.xz])")
    p.add_argument("--batches", type=int, nargs="+", default=[1], help="which batches (1 = the first) to print")
    p.add_argument("--obs", type=int, nargs="+", help="which observation dimensions (0 = the first) to print; all "
                   "if not given")
    a = p.parse_args(argv)
    if not (a.run_dir / "run.json").exists():
        sys.exit(f"error: run_dir: no run.json in {a.run_dir}")
    if min(a.batches) < 1:
        sys.exit("error: --batches: batches count from 1")
    with tempfile.TemporaryDirectory() as scratch:
        identical, frame, total = inside(a.run_dir, set(a.batches), pathlib.Path(scratch),
                                         set(a.obs) if a.obs else None)
    if max(a.batches) > total:
        print(f"note: the run has {total} batches; those past it are left out", file=sys.stderr)
    print(("The rerun's episodes are identical to the committed run's." if identical else
           "WARNING: the rerun's episodes differ from the committed run's (another CPU model, or changed code): "
           "what follows describes the rerun, not the committed run.") + "\n")
    if frame.empty:
        return 0 if identical else 1
    shown = frame.astype(object).assign(step=frame.step.map("{:,}".format),
                                        **{"mean return": frame["mean return"].map("{:.1f}".format)})
    for column in frame.columns[3:]:
        shown[column] = frame[column].map("{:.3g}".format)
    print(shown.to_markdown(index=False, disable_numparse=True))
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
