"""Throughput: training steps per second per seed, beside the simulator's own speed and two peers.

  python -m experiments.bench                      # ppo.py at K = 1, 3, 5, 10 seeds at once; trpo, vpg; env alone
  python -m experiments.bench --peer-python /work/peers/bin/python --cleanrl path/to/ppo_continuous_action.py

Everything is measured in one sitting, one measurement at a time, each on one thread, per environment:
  env alone       the environment stepped with uniformly random actions drawn in advance (gym.make's
                  wrappers included: they cost about 1% of a MuJoCo step here);
  ppo K=k         ppo.py training k seeds in one process (--seed 1 … k); per-seed SPS = k × steps / seconds;
  trpo, vpg       one seed (they train several seeds in turn, so no faster per seed);
  cleanrl         CleanRL's ppo_continuous_action.py (vwxyzjn/cleanrl), its own SPS print (--cleanrl; run by
                  --peer-python, which needs tyro and tensorboard; gymnasium 1.x needs the observation space
                  passed to TransformObservation, which is patched into a copy);
  sb3             Stable-Baselines3 PPO with the paper's settings (--peer-python with stable-baselines3):
                  horizon 2048, minibatch 64, 10 epochs, Adam 3e-4, γ 0.99, λ 0.95, ε 0.2, 64×64 tanh
                  networks for π and V apart, observations and rewards normalised (VecNormalize).
Every training SPS is the training loop's: from making the environments to the end of training, the
interpreter's start and the imports left out. --steps is per seed; the first iteration's warm-up is included.

Writes --csv (replaced whole: one sitting's numbers belong together) and the figure beside it. This is a
measurement, never a test: the numbers depend on the machine and its load.
"""
import argparse
import datetime
import os
import pathlib
import platform
import re
import subprocess
import sys
import tempfile
import time

import gymnasium as gym
import numpy as np
import pandas as pd
import run_contract
import torch

from experiments import grid

ROOT = pathlib.Path(__file__).resolve().parent.parent
SB3_DRIVER = """
import sys, time, torch
torch.set_num_threads(1)
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize
env_id, steps = sys.argv[1], int(sys.argv[2])
start = time.perf_counter()
env = VecNormalize(make_vec_env(env_id, n_envs=1, seed=1), gamma=0.99)
model = PPO("MlpPolicy", env, n_steps=2048, batch_size=64, n_epochs=10, learning_rate=3e-4, gamma=0.99,
            gae_lambda=0.95, clip_range=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5, seed=1, device="cpu",
            policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[64, 64]), activation_fn=torch.nn.Tanh))
model.learn(steps)
print("SPS", steps / (time.perf_counter() - start))
"""


def machine():
    return (f"{run_contract.cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"torch {torch.__version__}, 1 thread")


def env_alone_sps(env_id, steps, seed=0):
    env = gym.make(env_id)
    env.reset(seed=seed)
    space = env.action_space
    actions = np.random.default_rng(seed).uniform(space.low, space.high, (steps,) + space.shape).astype(space.dtype)
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def ours_sps(algo, env_id, steps, seeds_at_once):
    """Per-seed SPS of algorithms/<algo>.py training `seeds_at_once` seeds in this process."""
    module = grid.algorithm(algo)
    with tempfile.TemporaryDirectory() as out:
        runs = [module.Args(env_id=env_id, seed=s, total_timesteps=steps, out=f"{out}/seed{s}")
                for s in range(1, seeds_at_once + 1)]
        start = time.perf_counter()
        module.train(runs if seeds_at_once > 1 else runs[0], quiet=True)
        return seeds_at_once * steps / (time.perf_counter() - start)


def cleanrl_sps(python, script, env_id, steps):
    source = pathlib.Path(script).read_text()
    patched = source.replace("lambda obs: np.clip(obs, -10, 10))", "lambda obs: np.clip(obs, -10, 10), env.observation_space)")
    with tempfile.TemporaryDirectory() as work:
        pathlib.Path(work, "ppo_continuous_action.py").write_text(patched)
        out = peer(python, ["ppo_continuous_action.py", "--env-id", env_id, "--total-timesteps", str(steps), "--seed", "1",
                            "--no-cuda"], work)
    return float(re.findall(r"SPS: (\d+)", out)[-1])


def sb3_sps(python, env_id, steps):
    with tempfile.TemporaryDirectory() as work:
        return float(re.findall(r"SPS ([\d.]+)", peer(python, ["-c", SB3_DRIVER, env_id, str(steps)], work))[-1])


def peer(python, args, cwd):
    one_thread = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run([python, *args], cwd=cwd, capture_output=True, text=True, env=one_thread, timeout=3600)
    if proc.returncode != 0:
        sys.exit(f"error: {python} {args[0]} failed:\n{proc.stderr[-2000:]}")
    return proc.stdout


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=["HalfCheetah-v5", "Hopper-v5"])
    parser.add_argument("--seeds-at-once", type=int, nargs="+", default=[1, 3, 5, 10], help="ppo.py's K values")
    parser.add_argument("--steps", type=int, default=2048 * 40, help="training steps per seed per measurement")
    parser.add_argument("--env-steps", type=int, default=50000)
    parser.add_argument("--peer-python", help="a Python with stable-baselines3 (and tyro, tensorboard for CleanRL)")
    parser.add_argument("--cleanrl", help="CleanRL's cleanrl/ppo_continuous_action.py (needs --peer-python)")
    parser.add_argument("--csv", default=str(ROOT / "results/bench/throughput.csv"))
    args = parser.parse_args(argv)
    if args.cleanrl and not args.peer_python:
        parser.error("--cleanrl: needs --peer-python, a Python with tyro and tensorboard")
    torch.set_num_threads(1)
    rows = []

    def add(env_id, what, sps, seeds_at_once=1):
        rows.append(dict(env_id=env_id, what=what, seeds_at_once=seeds_at_once, per_seed_sps=round(sps)))
        print(f"{env_id:16s} {what:12s} {sps:9,.0f} steps/s per seed", flush=True)

    for env_id in args.envs:
        add(env_id, "env alone", env_alone_sps(env_id, args.env_steps))
        for k in args.seeds_at_once:
            add(env_id, f"ppo K={k}", ours_sps("ppo", env_id, args.steps, k), k)
        for algo in ("trpo", "vpg"):
            add(env_id, algo, ours_sps(algo, env_id, args.steps, 1))
        if args.cleanrl:
            add(env_id, "cleanrl", cleanrl_sps(args.peer_python, args.cleanrl, env_id, args.steps))
        if args.peer_python:
            add(env_id, "sb3", sb3_sps(args.peer_python, env_id, args.steps))
    table = pd.DataFrame(rows)
    reference = lambda what: table.env_id.map(table[table.what == what].set_index("env_id").per_seed_sps)
    table["env_alone_over_this"] = (reference("env alone") / table.per_seed_sps).round(2)
    table["over_ppo_k1"] = (table.per_seed_sps / reference("ppo K=1")).round(2)
    table["machine"], table["date"] = machine(), datetime.date.today().isoformat()
    os.makedirs(os.path.dirname(args.csv), exist_ok=True)
    table.to_csv(args.csv, index=False)
    draw(table, os.path.splitext(args.csv)[0] + ".png")
    print(table.drop(columns=["machine", "date"]).to_markdown(index=False))
    print(f"machine: {machine()}\nwrote {args.csv}")


def draw(table, path):
    """Per-seed training SPS of everything measured, per env, beside the env alone."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    envs = list(dict.fromkeys(table.env_id))
    fig, axes = plt.subplots(1, len(envs), figsize=(4.2 * len(envs), 3.4), squeeze=False)
    for ax, env in zip(axes[0], envs):
        g = table[(table.env_id == env) & (table.what != "env alone")]
        colours = ["#0072B2" if w.startswith("ppo") else "#999999" if w in ("cleanrl", "sb3") else "#E69F00" for w in g.what]
        ax.barh(g.what, g.per_seed_sps, color=colours)
        alone = table[(table.env_id == env) & (table.what == "env alone")].per_seed_sps.iloc[0]
        ax.axvline(alone, color="k", ls="--", lw=1, label=f"env alone ({alone:,.0f})")
        ax.invert_yaxis()
        ax.set(title=env, xlabel="training steps/s per seed (1 thread)")
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(table.machine.iloc[0], fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=150)


if __name__ == "__main__":
    main()
