"""What a scale still costs, projected from a few seconds of measurement on this machine.

  python -m experiments.cost --scale paper --cores 64
  python -m experiments.cost --scale paper --cores 2 --check results/paper
  python -m experiments.cost --scale paper --disk      # the results folder's size once the grid is done

Speed differs several-fold between machines (and between days on shared ones), so the
projection is calibrated here and now: each environment's speed with random actions (2,000
steps), and each algorithm's own cost per step on top of the simulator (two short iterations
of real training on Hopper-v5, the second one timed). A run then costs
steps × (1 / env speed + algorithm cost per step). The workflow trains a variant × env's seeds still to do in
one job, and ppo.py batches them in one process, which makes its cost per step and seed fall with the number of
seeds: it is measured at each number of seeds a job will train. Only runs still to do count: those without
a finished run.json, and stale ones (other arguments, or code not shown to compute the same numbers). Each run
counts once, under the first experiment of the config that plans it. VPG's gradient-noise
measurements still to do (missing or stale) count as vpg.py runs of their
(warmup + measured batches) × batch size steps. Wall time on N cores is
the core-hours over N, but never less than the longest single run.

--check DIR compares the projection with the wall times that finished runs under DIR record
in run.json, and prints the error.

--recorded projects without calibrating, from the wall times the scale's finished runs record (a process
that trained k seeds at once, as ppo.py does, counts as k runs of a k-th of its time each): a run still to
do costs, per step, the median of the finished runs of its algorithm on its env trained k at a time as its
job will be; with none trained k at a time there, that env's runs trained one at a time scaled by the
median ratio (k at a time / one at a time) on the envs that have both; with no finished run on its env,
its algorithm's median over the other envs (MuJoCo's costlier simulators overstate classic control). It
needs no idle machine (the calibration is slowed by whatever else runs, the grid included) and counts the
machine as the grid used it, contention and all.

--disk projects the scale's results folder on disk (files rounded up to whole 4 KiB blocks, as
`du` counts them) once every planned run is there: a run still to do is counted at the mean
footprint of the finished runs of its algorithm on its env; where there is none yet, at its
algorithm's mean footprint apart from its episodes CSV, plus an episodes CSV of steps / the
env's mean random-policy episode length rows at the finished runs' median bytes per row.
"""
import argparse
import collections
import dataclasses
import json
import os
import pathlib
import tempfile
import time

import gymnasium as gym
import numpy as np
import pandas as pd
import run_contract

from analysis.load import open_csv, run_file
from experiments import grid

CALIBRATION_ENV = "Hopper-v5"
BLOCK = 4096  # bytes per file-system block
TINY_BATCH = 1024  # steps per calibration iteration, for any algorithm file


def tiny_batch(module):
    """The algorithm's batch flag set to TINY_BATCH: --num-steps (PPO-like files) or --batch-size."""
    fields = {f.name for f in dataclasses.fields(module.Args)}
    return {"num_steps" if "num_steps" in fields else "batch_size": TINY_BATCH}


def env_seconds_per_step(env_id, steps=2000):
    env = run_contract.quietly(lambda: gym.make(env_id))
    env.reset(seed=0)
    env.action_space.seed(0)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - start
    env.close()
    return elapsed / steps


def algorithm_seconds_per_step(algo, seeds_at_once=1):
    """Training time per step and seed beyond the simulator's, from the second of two short iterations, with
    `seeds_at_once` seeds in one process (each seed's rollout, and its share of the update batched over seeds)."""
    module = grid.algorithm(algo)
    with tempfile.TemporaryDirectory() as out:
        runs = [module.Args(env_id=CALIBRATION_ENV, seed=s, total_timesteps=2 * TINY_BATCH, out=f"{out}/seed{s}",
                            **tiny_batch(module)) for s in range(1, seeds_at_once + 1)]
        module.train(runs if seeds_at_once > 1 else runs[0], quiet=True)
        last = pd.concat([pd.read_csv(pathlib.Path(run.out) / "progress.csv").iloc[-1:] for run in runs])
    return (last.rollout_s + last.update_s).mean() / TINY_BATCH - env_seconds_per_step(CALIBRATION_ENV)


def trains_seeds_at_once(algo):
    """Whether the algorithm file batches several seeds in one process (ppo.py); the others train them in turn."""
    return getattr(grid.algorithm(algo), "SEEDS_AT_ONCE", False)


class Calibration:
    """Seconds per step: each env's with random actions, and each algorithm's cost beyond the simulator for each
    number of seeds a job trains at once (measured for every number in `seed_counts`, for a file that batches seeds)."""

    def __init__(self, envs, algos, seed_counts=(1,)):
        self.env = {env: env_seconds_per_step(env) for env in sorted(envs)}
        self.algo = {(algo, k): max(algorithm_seconds_per_step(algo, k), 0.0) for algo in sorted(algos)
                     for k in sorted(set(seed_counts) if trains_seeds_at_once(algo) else {1})}

    def per_seed(self, algo, seeds_at_once):
        return self.algo[algo, seeds_at_once if (algo, seeds_at_once) in self.algo else 1]

    def job_seconds(self, algo, env, steps, seeds):
        """Wall time of one job training `seeds` seeds of steps each (at once, or in turn)."""
        return seeds * steps * (self.env[env] + self.per_seed(algo, seeds))

    def run_seconds(self, algo, env, steps):
        return self.job_seconds(algo, env, steps, 1)


def still_to_do(config, scale, scale_dir):
    """(experiment, run) pairs without a finished, fresh run under scale_dir; each run once."""
    todo, seen = [], set()
    for experiment in config["experiments"]:
        for run in grid.experiment_runs(config, scale, experiment):
            if run in seen:
                continue
            seen.add(run)
            meta_path = pathlib.Path(scale_dir, "runs", run_name(run), "run.json")
            if meta_path.exists() and not grid.stale_reason(config, scale, run, json.loads(meta_path.read_text())):
                continue
            todo.append((experiment, run))
    return todo


def gradient_noise_to_do(config, scale, scale_dir):
    """(env, seed, steps) of the gradient-noise measurements without a finished, fresh CSV under scale_dir."""
    todo = []
    for env, seed in grid.gradient_noise_runs(config, scale):
        if grid.gradient_noise_state(config, scale, scale_dir, env, seed) is not None:
            measured = grid.gradient_noise_args(config, scale, env)
            batch_size = grid.expected_args(config, scale, grid.Run("vpg_gae", env, seed))["batch_size"]
            todo.append((env, seed, (measured["warmup_batches"] + measured["batches"]) * batch_size))
    return todo


def hours(seconds):
    return f"{seconds / 3600:.1f} h" if seconds >= 360 else f"{seconds / 60:.0f} min"


def jobs_to_do(todo):
    """{(variant, env): runs to do}: the workflow trains a variant × env's missing seeds in one job."""
    jobs = {}
    for _, run in todo:
        jobs.setdefault((run.variant, run.env), []).append(run)
    return jobs


def projection(config, scale, scale_dir, cores, calibration):
    todo = still_to_do(config, scale, scale_dir)
    planned, jobs = len(grid.runs(config, scale)), jobs_to_do(todo)
    rows = []
    for experiment in config["experiments"]:
        runs = [r for e, r in todo if e == experiment]
        if not runs:
            continue
        # each run at its job's per-seed cost; the job's wall time is its seeds' together
        seconds = [calibration.job_seconds(config["variants"][r.variant]["algo"], r.env, grid.steps(config, scale, r.env),
                                           len(jobs[r.variant, r.env])) / len(jobs[r.variant, r.env]) for r in runs]
        longest = max(calibration.job_seconds(config["variants"][r.variant]["algo"], r.env, grid.steps(config, scale, r.env),
                                              len(jobs[r.variant, r.env])) for r in runs)
        rows.append({"experiment": experiment, "runs to do": len(runs), "core-hours": sum(seconds) / 3600,
                     "longest run": longest})
    noise_todo = gradient_noise_to_do(config, scale, scale_dir)
    if noise_todo:
        seconds = [calibration.run_seconds("vpg", env, steps) for env, _, steps in noise_todo]
        rows.append({"experiment": "gradient_noise (measurements)", "runs to do": len(noise_todo),
                     "core-hours": sum(seconds) / 3600, "longest run": max(seconds)})
    table = pd.DataFrame(rows)
    noise_planned = len(grid.gradient_noise_runs(config, scale))
    lines = [f"{scale} scale: {len(todo)} of {planned} planned runs still to do, in {len(jobs)} jobs (a variant × env's "
             "seeds in one process)" + (f", and {len(noise_todo)} of {noise_planned} gradient-noise measurements."
                                       if noise_planned else ".")]
    if len(table):
        total, longest = table["core-hours"].sum() * 3600, table["longest run"].max()
        wall = max(total / cores, longest)
        table["core-hours"] = table["core-hours"].map(lambda h: f"{h:.1f}")
        table["longest run"] = table["longest run"].map(hours)
        table = table.rename(columns={"longest run": "longest job"})
        lines += [table.to_markdown(index=False), "",
                  f"Total {total / 3600:.1f} core-hours; on {cores} cores about {hours(wall)} of wall time "
                  f"(one job per core; never less than the longest job)."]
    lines += ["", "Calibrated on this machine: env steps/s with random actions "
              + ", ".join(f"{e} {1 / s:,.0f}" for e, s in calibration.env.items())
              + "; training cost per step and seed beyond the simulator "
              + ", ".join(f"{a} {s * 1e6:.0f} µs" + (f" ({k} seeds at once)" if trains_seeds_at_once(a) else "")
                          for (a, k), s in calibration.algo.items()) + "."]
    return "\n".join(lines)


def recorded_costs(config, scale, scale_dir):
    """Core-seconds per step of the finished runs under scale_dir, one row per run: algo, env, the seeds its
    process trained at once (1 for files that train seeds in turn), and seconds_per_step."""
    rows = []
    for run in grid.runs(config, scale):
        meta_path = pathlib.Path(scale_dir, "runs", run_name(run), "run.json")
        if not meta_path.exists():
            continue
        meta = json.loads(meta_path.read_text())
        algo = meta["algo"]
        at_once = len(meta.get("seeds_in_process", [run.seed])) if trains_seeds_at_once(algo) else 1
        steps = meta.get("steps_trained", meta["args"]["total_timesteps"])
        rows.append({"algo": algo, "env": run.env, "at_once": at_once, "seconds_per_step": meta["walltime_s"] / at_once / steps})
    return pd.DataFrame(rows, columns=["algo", "env", "at_once", "seconds_per_step"])


def recorded_cost(finished, algo, env, at_once):
    """(core-seconds per step, how it was found) for a run of `algo` on `env` trained `at_once` seeds at a time,
    from recorded_costs' rows: 'recorded'; 'scaled' (from the env's runs trained one at a time); 'unscaled' (the
    env's runs trained some other number at a time, with no ratio to scale them by); 'borrowed' (other envs)."""
    mine = finished[finished.algo == algo]
    median = mine.groupby(["env", "at_once"]).seconds_per_step.median()
    if (env, at_once) in median:
        return median[env, at_once], "recorded"
    ratios = [median[e, at_once] / median[e, 1] for e in mine.env.unique() if (e, at_once) in median and (e, 1) in median]
    if (env, 1) in median and ratios:
        return median[env, 1] * float(np.median(ratios)), "scaled"
    here = mine[mine.env == env]
    if len(here):
        return here.seconds_per_step.median(), "unscaled"
    like = mine[mine.at_once == at_once] if (mine.at_once == at_once).any() else mine
    return (like if len(like) else finished).seconds_per_step.median(), "borrowed"


def recorded_projection(config, scale, scale_dir, cores):
    """The runs still to do and their core-hours at the finished runs' recorded cost (--recorded), in words."""
    finished = recorded_costs(config, scale, scale_dir)
    if finished.empty:
        return f"{scale} scale: no finished run under {scale_dir} to project from."
    todo = still_to_do(config, scale, scale_dir)
    jobs, rows, how_counts = jobs_to_do(todo), [], collections.Counter()
    for experiment, run in todo:
        algo, steps = config["variants"][run.variant]["algo"], grid.steps(config, scale, run.env)
        at_once = len(jobs[run.variant, run.env]) if trains_seeds_at_once(algo) else 1
        per_step, how = recorded_cost(finished, algo, run.env, at_once)
        how_counts[how, algo, run.env] += 1
        rows.append({"experiment": experiment, "seconds": per_step * steps})
    noise = gradient_noise_to_do(config, scale, scale_dir)
    for env, _, steps in noise:  # vpg.py steps, as its runs on the env cost
        rows.append({"experiment": "gradient_noise (measurements)",
                     "seconds": recorded_cost(finished, "vpg", env, 1)[0] * steps})
    if not rows:
        return f"{scale} scale: nothing still to do under {scale_dir}."
    table = pd.DataFrame(rows).groupby("experiment", sort=False).seconds.agg(["size", "sum"]).reset_index()
    total = table["sum"].sum()
    table = table.rename(columns={"size": "runs to do", "sum": "core-hours"})
    table["core-hours"] = table["core-hours"].map(lambda x: f"{x / 3600:.1f}")
    lines = [f"{scale} scale, from the wall times of {len(finished)} finished runs (no calibration): {len(todo)} runs "
             f"and {len(noise)} gradient-noise measurements still to do.", table.to_markdown(index=False), "",
             f"Total {total / 3600:.1f} core-hours; on {cores} cores about {hours(total / cores)} of wall time, "
             f"{len(todo) / (total / cores / 3600):.0f} runs an hour."]
    for how, says in (("scaled", "No finished run trained as many seeds at a time on their env, so its runs trained "
                                 "one at a time, scaled"),
                      ("unscaled", "No finished run trained as many seeds at a time on their env, and no ratio to "
                                   "scale by, so its runs as they were"),
                      ("borrowed", "No finished run on their env yet, so their algorithm's median cost per step over "
                                   "the other envs")):
        counted = sorted((a, e, n) for (h, a, e), n in how_counts.items() if h == how)
        if counted:
            lines.append(f"{says}: " + ", ".join(f"{a} {e} ({n} runs)" for a, e, n in counted) + ".")
    return "\n".join(lines)


def check(run_root, calibration):
    """Projected against recorded wall time for every finished run under run_root."""
    rows = []
    for meta_path in sorted(pathlib.Path(run_root).glob("runs/*/*/seed*/run.json")):
        meta = json.loads(meta_path.read_text())
        env, algo = meta["args"]["env_id"], meta["algo"]
        steps, seeds = meta.get("steps_trained", meta["args"]["total_timesteps"]), len(meta.get("seeds_in_process", [1]))
        if env not in calibration.env:
            calibration.env[env] = env_seconds_per_step(env)
        if trains_seeds_at_once(algo) and (algo, seeds) not in calibration.algo:
            calibration.algo[algo, seeds] = max(algorithm_seconds_per_step(algo, seeds), 0.0)
        rows.append({"run": str(meta_path.parent.relative_to(run_root)), "recorded_s": meta["walltime_s"],
                     "projected_s": calibration.job_seconds(algo, env, steps, seeds)})  # its process's, shared by its seeds
    table = pd.DataFrame(rows)
    ratio = table.recorded_s / table.projected_s
    return (f"{len(table)} finished runs under {run_root}: recorded / projected wall time: median {ratio.median():.2f}, "
            f"range {ratio.min():.2f}-{ratio.max():.2f}; total recorded {table.recorded_s.sum() / 3600:.2f} h, "
            f"projected {table.projected_s.sum() / 3600:.2f} h (error {100 * (table.projected_s.sum() / table.recorded_s.sum() - 1):+.0f}%).")


def on_disk(path):
    """Bytes a file or a folder takes on disk, as `du` counts them (each file and folder in whole blocks)."""
    path = pathlib.Path(path)
    if not path.exists():
        return 0
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    return sum(BLOCK if p.is_dir() else -(-p.stat().st_size // BLOCK) * BLOCK for p in paths)


def run_name(run):
    """<variant>/<env>/seed<k>: a run's path under runs/, logs/train/ and benchmarks/train/."""
    return pathlib.Path(run.variant, run.env, f"seed{run.seed}")


def run_footprint(scale_dir, run):
    """On-disk bytes of a finished run: its folder, its training log and its Snakemake benchmark."""
    name = run_name(run)
    return (on_disk(pathlib.Path(scale_dir, "runs", name)) + on_disk(pathlib.Path(scale_dir, "logs", "train", f"{name}.log"))
            + on_disk(pathlib.Path(scale_dir, "benchmarks", "train", f"{name}.tsv")))


def disk_totals(config, scale, scale_dir):
    """(planned runs, finished runs, bytes on disk now, bytes projected with every planned run finished, median
    compressed bytes per episode row, {(algo, env): runs projected from the random policy's episode length},
    {(algo, env): runs counted at the mean finished run}); None without a finished run."""
    planned = grid.runs(config, scale)
    algo = {r: config["variants"][r.variant]["algo"] for r in planned}
    done = {r for r in planned if pathlib.Path(scale_dir, "runs", run_name(r), "run.json").exists()}
    if not done:
        return None
    rows = []
    for r in sorted(done):
        episodes = run_file(pathlib.Path(scale_dir, "runs", run_name(r)), "episodes")
        with open_csv(episodes) as f:
            episode_rows = sum(1 for _ in f) - 1
        rows.append({"algo": algo[r], "env": r.env, "bytes": run_footprint(scale_dir, r),
                     "episodes_bytes": on_disk(episodes), "bytes_per_row": episodes.stat().st_size / max(episode_rows, 1)})
    finished = pd.DataFrame(rows)
    per_pair = finished.groupby(["algo", "env"]).bytes.mean()
    per_algo_rest = (finished.bytes - finished.episodes_bytes).groupby(finished.algo).mean()
    bytes_per_row = finished.bytes_per_row.median()
    now = on_disk(scale_dir)
    projected, guessed, unknown = now, {}, {}
    for r in planned:
        if r in done:
            continue
        if (algo[r], r.env) in per_pair:
            projected += per_pair[algo[r], r.env]
            continue
        random_episodes = pathlib.Path(scale_dir, "random", f"{r.env}.csv")
        if random_episodes.exists():  # the random experiment's episodes give the env's episode length
            episode_rows = grid.steps(config, scale, r.env) / pd.read_csv(random_episodes).ep_length.mean()
            rest = per_algo_rest.get(algo[r], per_algo_rest.mean())
            projected += rest + -(-episode_rows * bytes_per_row // BLOCK) * BLOCK
            guessed[(algo[r], r.env)] = guessed.get((algo[r], r.env), 0) + 1
        else:
            projected += finished.bytes.mean()
            unknown[(algo[r], r.env)] = unknown.get((algo[r], r.env), 0) + 1
    return planned, done, now, projected, bytes_per_row, guessed, unknown


def disk_projection(config, scale, scale_dir):
    """The scale's results folder on disk now, and projected with every planned run finished, in words."""
    totals = disk_totals(config, scale, scale_dir)
    if totals is None:
        return f"{scale} scale: no finished run under {scale_dir} to project the size from."
    planned, done, now, projected, bytes_per_row, guessed, unknown = totals
    lines = [f"{scale} scale: {scale_dir} takes {now / 2**20:.1f} MiB on disk with {len(done)} of {len(planned)} planned "
             f"runs; with all of them about {projected / 2**20:.1f} MiB."]
    if guessed:
        lines.append("No finished run yet, so projected from the random policy's mean episode length at "
                     f"{bytes_per_row:.1f} compressed bytes per episode row: "
                     + ", ".join(f"{a} {e} ({n} runs)" for (a, e), n in sorted(guessed.items())) + ".")
    if unknown:
        lines.append("Neither a finished run nor the random policy's episodes yet, so counted at the mean finished run: "
                     + ", ".join(f"{a} {e} ({n} runs)" for (a, e), n in sorted(unknown.items())) + ".")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", required=True, choices=["smoke", "quick", "paper"])
    parser.add_argument("--cores", type=int, nargs="+", default=[2], help="cores the grid will run on (one run per "
                                                                          "core); several values give several projections")
    parser.add_argument("--results", default=None, help="the scale's results folder (default: results/<scale>)")
    parser.add_argument("--check", metavar="DIR", help="also compare the projection with the finished runs under DIR")
    parser.add_argument("--disk", action="store_true", help="project the results folder's size on disk instead")
    parser.add_argument("--recorded", action="store_true",
                        help="project from the finished runs' recorded wall times instead of calibrating")
    args = parser.parse_args(argv)
    if min(args.cores) < 1:
        parser.error("--cores: must be at least 1")
    config = grid.load()
    scale_dir = args.results or str(grid.ROOT / "results" / args.scale)
    if args.disk:
        print(disk_projection(config, args.scale, scale_dir))
        return
    if args.recorded:
        for cores in args.cores:
            print(recorded_projection(config, args.scale, scale_dir, cores) + "\n")
        return
    runs = grid.runs(config, args.scale)
    seed_counts = {len(job) for job in jobs_to_do(still_to_do(config, args.scale, scale_dir)).values()} or {1}
    calibration = Calibration({r.env for r in runs}, {config["variants"][r.variant]["algo"] for r in runs}, seed_counts)
    print(f"Load average while calibrating: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
          "(other work on the machine slows the calibration and the projection with it).\n")
    for cores in args.cores:
        print(projection(config, args.scale, scale_dir, cores, calibration) + "\n")
    if args.check:
        print(check(args.check, calibration))


if __name__ == "__main__":
    main()
