"""Score of the uniform-random policy: the 0 of every normalised score (PPO paper §6.1).

  python experiments/random_policy.py --env-id Hopper-v5 --episodes 100 --seed 0 --out random.csv

Writes one row per episode (episode, ep_return, ep_length, terminated), published atomically.
Episode k is reset with a seed derived from --seed, and actions come from a generator seeded
from it too, so the file is reproducible.
"""
import argparse
import csv
import os
import sys

import gymnasium as gym
import numpy as np


def random_episodes(env_id, episodes, seed):
    env = gym.make(env_id)
    space = env.action_space
    reset_seeds, action_seed = np.random.SeedSequence(seed).spawn(2)
    space.seed(int(action_seed.generate_state(1)[0]))
    rows = []
    for k, reset_seed in enumerate(reset_seeds.generate_state(episodes)):
        env.reset(seed=int(reset_seed))
        total, length, done, terminated = 0.0, 0, False, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(space.sample())
            total, length, done = total + float(reward), length + 1, terminated or truncated
        rows.append((k, total, length, int(terminated)))
    env.close()
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.error = lambda message: sys.exit(f"error: {message}")  # one line, without the usage
    parser.add_argument("--env-id", required=True)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.env_id not in gym.registry:
        sys.exit(f"error: --env-id: unknown environment {args.env_id!r}")
    if args.episodes < 1:
        sys.exit(f"error: --episodes: must be positive, got {args.episodes}")
    if args.seed < 0:
        sys.exit(f"error: --seed: must be >= 0, got {args.seed}")
    rows = random_episodes(args.env_id, args.episodes, args.seed)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".partial", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["episode", "ep_return", "ep_length", "terminated"])
        writer.writerows(rows)
    os.replace(args.out + ".partial", args.out)


if __name__ == "__main__":
    main()
