"""Load runs into tidy pandas frames, checking each against the run contract (DESIGN §3).

  python -m analysis.load results/quick        # summary of the runs found, or the first broken one

A run directory results/<scale>/runs/<variant>/<env>/seed<k>/ must hold progress.csv,
episodes.csv and run.json with exactly the contract's columns and a successful exit status;
anything else raises RunContractError naming the directory.
"""
import json
import pathlib
import sys

import pandas as pd

from experiments import grid

# The contract's columns, as the algorithm files write them (tests hold each file to DESIGN §3).
PROGRESS_COLUMNS = grid.algorithm("ppo").PROGRESS_COLUMNS
EPISODE_COLUMNS = grid.algorithm("ppo").EPISODE_COLUMNS
VERSION_KEYS = ["torch", "numpy", "gymnasium", "mujoco"]
# DESIGN §4: the only columns allowed to differ between two runs of the same code, versions and seed
CLOCK_COLUMNS = ["walltime_s", "sps", "rollout_s", "update_s"]


class RunContractError(ValueError):
    """A run directory that breaks the run contract."""


def load_run(run_dir):
    """(meta dict, progress frame, episodes frame) of one run directory, validated."""
    run_dir = pathlib.Path(run_dir)
    for name in ("progress.csv", "episodes.csv", "run.json"):
        if not (run_dir / name).is_file():
            raise RunContractError(f"{run_dir}: missing {name}")
    try:
        meta = json.loads((run_dir / "run.json").read_text())
        progress = pd.read_csv(run_dir / "progress.csv")
        episodes = pd.read_csv(run_dir / "episodes.csv")
    except (ValueError, pd.errors.ParserError) as e:
        raise RunContractError(f"{run_dir}: unreadable file ({e})") from None
    if list(progress.columns) != PROGRESS_COLUMNS:
        raise RunContractError(f"{run_dir}: progress.csv columns differ from DESIGN §3")
    if list(episodes.columns) != EPISODE_COLUMNS:
        raise RunContractError(f"{run_dir}: episodes.csv columns differ from DESIGN §3")
    if meta.get("exit_status") != "success":
        raise RunContractError(f"{run_dir}: run.json exit_status is {meta.get('exit_status')!r}")
    if progress.empty:
        raise RunContractError(f"{run_dir}: progress.csv has no rows")
    return meta, progress, episodes


def load_runs(scale_dir, allow_mixed_versions=False):
    """Every run under <scale_dir>/runs as three tidy frames keyed by (variant, env, seed):
    runs (one row per run: algo, steps, walltime, versions, commit and the run's arguments),
    progress and episodes. Runs made with different library versions are refused unless
    allow_mixed_versions (user ask A.6: numbers from different MuJoCo versions are not comparable)."""
    rows, progress, episodes = [], [], []
    for meta_path in sorted(pathlib.Path(scale_dir, "runs").glob("*/*/seed*/run.json")):
        run_dir = meta_path.parent
        meta, prog, eps = load_run(run_dir)
        key = dict(variant=run_dir.parent.parent.name, env=run_dir.parent.name, seed=int(run_dir.name[4:]))
        rows.append({**key, "algo": meta["algo"], "steps": int(prog.global_step.iloc[-1]),
                     "walltime_s": meta["walltime_s"], "peak_rss_mb": meta.get("peak_rss_mb"),
                     "git_commit": meta["git_commit"], "cpu": meta["cpu"],
                     **{f"v_{k}": meta["versions"][k] for k in VERSION_KEYS},
                     **{f"arg_{k}": v for k, v in meta["args"].items()}})
        progress.append(prog.assign(**key))
        episodes.append(eps.assign(**key))
    if not rows:
        raise RunContractError(f"{scale_dir}: no runs found under runs/")
    runs = pd.DataFrame(rows)
    versions = runs[[f"v_{k}" for k in VERSION_KEYS]].drop_duplicates()
    if len(versions) > 1 and not allow_mixed_versions:
        raise RunContractError(f"{scale_dir}: runs were made with different library versions:\n{versions}")
    return runs, pd.concat(progress, ignore_index=True), pd.concat(episodes, ignore_index=True)


def load_random(scale_dir):
    """Random-policy episode returns per env (the random experiment), as a frame env, ep_return."""
    frames = [pd.read_csv(p).assign(env=p.stem) for p in sorted(pathlib.Path(scale_dir, "random").glob("*.csv"))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["env", "ep_return"])


if __name__ == "__main__":
    try:
        runs, _, episodes = load_runs(sys.argv[1])
    except RunContractError as e:
        sys.exit(f"error: {e}")
    print(runs.groupby(["variant", "env"]).seed.count().rename("seeds").to_string())
    print(f"{len(runs)} runs, {len(episodes)} episodes")
