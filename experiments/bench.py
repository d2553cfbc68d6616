"""Throughput benchmark: training steps per second against the simulator's own speed.

For each algorithm × environment, in one process and one thread:
  env_sps    the environment alone, stepped with uniformly random actions drawn in advance;
  env_sps_sampled  the same with action_space.sample() each step, for reference (slower: the
             sampler's own cost per call is counted as the environment's); the overhead ratio
             uses the stricter env_sps;
  train_sps  the algorithm with its paper defaults, over whole iterations (rollout + update),
             the first iteration left out as warm-up;
and their ratio (overhead ratio = env_sps / train_sps), plus the rollout/update split.
Each number is the fastest of --repeats measurements; versions are measured in turn.
Rows go to --csv (a label, algorithm and env measured again replaces its row) with the machine description,
and results/bench/throughput.png draws them.

  python -m experiments.bench                         # the current algorithm files
  mkdir -p /tmp/before && for a in ppo trpo vpg; do git show 73ca68d:algorithms/$a.py > /tmp/before/$a.py; done
  python -m experiments.bench --version before=/tmp/before --version after=algorithms

This is a measurement, never a test: the numbers depend on the machine and its load.
"""
import argparse
import datetime
import importlib.util
import os
import pathlib
import platform
import tempfile
import time

import gymnasium as gym
import numpy as np
import pandas as pd
import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
# total steps timed per algorithm: whole iterations of each algorithm's default batch
STEPS = {"ppo": 2048 * 11, "vpg": 4000 * 6, "trpo": 1024 * 21}


def machine():
    cpu = platform.processor()
    if os.path.exists("/proc/cpuinfo"):
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), cpu)
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}, 1 thread"


def env_only_sps(env_id, steps, seed=0, sample=False):
    """Steps per second of the environment alone, with uniform random actions drawn in advance
    (sample=False) or drawn one per step with action_space.sample() (sample=True)."""
    env = gym.make(env_id)
    env.reset(seed=seed)
    space = env.action_space
    space.seed(seed)
    actions = np.random.default_rng(seed).uniform(space.low, space.high, (steps,) + space.shape).astype(space.dtype)
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(space.sample() if sample else action)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def training_split(algorithm_file, env_id, steps):
    spec = importlib.util.spec_from_file_location(f"bench_{algorithm_file.stem}", algorithm_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with tempfile.TemporaryDirectory() as out:
        module.train(module.Args(env_id=env_id, total_timesteps=steps, out=out), quiet=True)
        progress = pd.read_csv(f"{out}/progress.csv").iloc[1:]  # first iteration: warm-up
    batch = progress.global_step.diff().iloc[-1] if len(progress) > 1 else progress.global_step.iloc[0]
    rollout, update = progress.rollout_s.sum(), progress.update_s.sum()
    return len(progress) * batch / (rollout + update), rollout, update


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algos", nargs="+", default=["ppo", "trpo", "vpg"])
    parser.add_argument("--envs", nargs="+", default=["HalfCheetah-v5", "Hopper-v5"])
    parser.add_argument("--version", action="append", metavar="LABEL=DIR",
                        help="a code version to measure: its label and the folder of its algorithm files; repeat the "
                             "flag to compare versions, measured in turn (default: current=algorithms/)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per number; the fastest is kept "
                        "(load from other processes only ever slows a measurement down)")
    parser.add_argument("--env-steps", type=int, default=30000)
    parser.add_argument("--csv", default=str(ROOT / "results/bench/throughput.csv"))
    args = parser.parse_args()
    versions = [v.split("=", 1) for v in args.version or [f"current={ROOT / 'algorithms'}"]]
    for label, folder in versions:
        for algo in args.algos:
            if not (pathlib.Path(folder) / f"{algo}.py").is_file():
                parser.error(f"--version {label}={folder}: no {algo}.py there")
    torch.set_num_threads(1)
    rows = []
    for env_id in args.envs:
        for algo in args.algos:
            best = {}  # label -> (env_sps, env_sps_sampled, train_sps, rollout_s, update_s), fastest of the repeats
            for _ in range(args.repeats):
                for label, folder in versions:  # interleaved, so a slow spell of the machine hits every version
                    env_sps = env_only_sps(env_id, args.env_steps)
                    sampled_sps = env_only_sps(env_id, args.env_steps, sample=True)
                    train = training_split(pathlib.Path(folder) / f"{algo}.py", env_id, STEPS[algo])
                    old = best.get(label, (0, 0, 0, 0, 0))
                    best[label] = (max(old[0], env_sps), max(old[1], sampled_sps)) + max(old[2:], train)
            for label, (env_sps, sampled_sps, train_sps, rollout, update) in best.items():
                rows.append(dict(label=label, algo=algo, env_id=env_id, env_sps=round(env_sps),
                                 env_sps_sampled=round(sampled_sps), train_sps=round(train_sps),
                                 overhead_ratio=round(env_sps / train_sps, 2),
                                 rollout_share=round(rollout / (rollout + update), 3),
                                 machine=machine(), date=datetime.date.today().isoformat()))
                print(" ".join(f"{k}={v}" for k, v in rows[-1].items() if k not in ("machine", "date")), flush=True)
    os.makedirs(os.path.dirname(args.csv), exist_ok=True)
    table = pd.DataFrame(rows)
    if os.path.exists(args.csv):
        old = pd.read_csv(args.csv)
        key = ["label", "algo", "env_id"]  # a measurement taken again replaces the old row
        kept = old.merge(table[key], on=key, how="left", indicator=True).query("_merge == 'left_only'").drop(columns="_merge")
        table = pd.concat([kept, table], ignore_index=True)
    table.to_csv(args.csv, index=False)
    draw(table, os.path.splitext(args.csv)[0] + ".png")
    print(f"machine: {machine()}\nwrote {args.csv}")


def draw(table, path):
    """Training SPS per algorithm and env for every label, beside the env-only SPS."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns
    bars = table.assign(run=table.algo + " (" + table.label + ")")
    fig, axes = plt.subplots(1, bars.env_id.nunique(), figsize=(5.5 * bars.env_id.nunique(), 3.6), squeeze=False)
    for ax, (env, g) in zip(axes[0], bars.groupby("env_id")):
        sns.barplot(data=g, y="run", x="train_sps", ax=ax, color="tab:blue")
        ax.axvline(g.env_sps.median(), color="k", ls="--", label=f"env alone, pre-drawn random actions ({g.env_sps.median():,.0f})")
        if g.env_sps_sampled.notna().any():
            ax.axvline(g.env_sps_sampled.median(), color="grey", ls="--",
                       label=f"env alone, action_space.sample() each step ({g.env_sps_sampled.median():,.0f})")
        ax.axvline(g.env_sps.median() / 5, color="tab:red", ls=":", label="target: overhead ratio 5")
        ax.set(title=env, xlabel="training steps per second (1 thread)", ylabel="")
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(table.machine.iloc[-1], fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)


if __name__ == "__main__":
    main()
