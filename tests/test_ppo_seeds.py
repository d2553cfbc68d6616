"""Several seeds in one process (ppo.py --seed 1 2 3): each seed's progress.csv and episodes.csv are those of
the same seed trained alone, byte for byte bar the clock columns, on every path the equivalence cases cover:
every objective (a per-seed adaptive β), per-seed KL early stopping, per-seed gradient clipping, both regimes
(ppo1's per-batch observation filter and batch-level advantage normalisation), time limits bootstrapped and
terminal, discrete and continuous actions, widths-1 heads (InvertedPendulum's policy, every V)."""
import json
import re
import subprocess
import sys

import gymnasium as gym
import pytest
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from conftest import ROOT, load_algorithm
from experiments import equivalence

# the equivalence cases' (three epochs rarely reach a KL stop) and two where the seeds stop at different minibatches
CASES = {name: kw for name, (algo, kw) in equivalence.CASES.items() if algo == "ppo"} | {
    "per-seed early stopping, discrete": dict(env_id="equivalence/CartPole-tl30-v1", objective="none", target_kl=0.0005,
                                              update_epochs=10),
    "per-seed early stopping, ppo1 kl_adaptive, width-1 policy": dict(env_id="equivalence/InvertedPendulum-tl40-v5",
                                                                      regime="ppo1", objective="kl_adaptive",
                                                                      target_kl=0.0005, update_epochs=10)}
SEEDS = (3, 4, 5)


def train(ppo, overrides, seeds, out):
    fields = set(ppo.Args.__dataclass_fields__)
    args = [ppo.Args(seed=s, out=str(out / f"seed{s}"), **(equivalence.SIZE["ppo"] | overrides)) for s in seeds]
    assert set(overrides) <= fields
    return ppo.train(args if len(seeds) > 1 else args[0], quiet=True)


@pytest.mark.parametrize("case", list(CASES))
def test_seeds_trained_at_once_are_the_seeds_trained_alone(case, tmp_path):
    ppo = load_algorithm("ppo")
    overrides = CASES[case]
    together = train(ppo, overrides, SEEDS, tmp_path / "together")
    for seed, out in zip(SEEDS, together):
        alone = train(ppo, overrides, (seed,), tmp_path / "alone")
        for name in ("progress.csv", "episodes.csv"):
            a, b = (equivalence.without_clock(f"{d}/{name}") for d in (alone, out))
            assert a == b, f"{case}, seed {seed}: {name} differs from row {next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)}"
        meta = json.loads(open(f"{out}/run.json").read())
        assert meta["seed"] == seed and meta["args"]["seed"] == seed and meta["args"]["out"] == out


def test_the_seeds_really_differ_and_early_stopping_is_per_seed(tmp_path):
    """The identity above is not trivial: the seeds' runs differ, and KL early stopping stops them at different
    minibatches (so a stopped seed sat beside seeds still stepping)."""
    import pandas as pd
    ppo = load_algorithm("ppo")
    for case in [c for c in CASES if c.startswith("per-seed early stopping")]:
        runs = [pd.read_csv(f"{d}/progress.csv") for d in train(ppo, CASES[case], SEEDS, tmp_path / case)]
        steps = [tuple(r.update_steps) for r in runs]
        assert len(set(steps)) == len(SEEDS) and 0 < min(map(min, steps)) < 10 * 4, steps
    assert len({tuple(r.policy_loss) for r in runs}) == len(SEEDS)


def test_the_command_line_trains_several_seeds_and_refuses_an_out_without_seed(tmp_path):
    cmd = [sys.executable, str(ROOT / "algorithms" / "ppo.py"), "--env-id", "CartPole-v1", "--num-steps", "64",
           "--total-timesteps", "128", "--seed", "7", "8"]
    bad = subprocess.run(cmd + ["--out", str(tmp_path / "same")], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        f"error: --out: must contain {{seed}} when several seeds train (each seed is a run of its own), got '{tmp_path / 'same'}'"]
    assert not (tmp_path / "same").exists()
    twice = subprocess.run(cmd + ["7", "--out", str(tmp_path / "s{seed}")], capture_output=True, text=True, timeout=300)
    assert twice.returncode == 2 and "--seed: names a seed twice" in twice.stderr
    ok = subprocess.run(cmd + ["--out", str(tmp_path / "s{seed}")], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    for seed in (7, 8):
        assert json.loads((tmp_path / f"s{seed}" / "run.json").read_text())["args"]["seed"] == seed


class NaNAfter300Steps(CartPoleEnv):
    """CartPole whose rewards turn NaN after 300 steps when its first reset's seed is even."""

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.poisoned, self.steps = seed % 2 == 0, 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        self.steps += 1
        return obs, float("nan") if self.poisoned and self.steps > 300 else reward, terminated, truncated, info


def test_a_seed_that_turns_nan_stops_unpublished_and_the_others_finish_as_alone(tmp_path):
    import numpy as np
    if "test/NaNAfter300-v1" not in gym.registry:
        gym.register("test/NaNAfter300-v1", entry_point=NaNAfter300Steps, max_episode_steps=500)
    ppo = load_algorithm("ppo")
    seeds = (3, 4, 5, 6)
    poisoned = {s for s in seeds if np.random.SeedSequence(s).spawn(4)[0].generate_state(1)[0] % 2 == 0}
    assert 0 < len(poisoned) < len(seeds), poisoned  # some seeds of each kind
    overrides = dict(env_id="test/NaNAfter300-v1")
    with pytest.raises(ppo.NonFiniteError) as error:
        train(ppo, overrides, seeds, tmp_path / "together")
    assert [int(s) for s in re.findall(r"seed (\d+):", str(error.value))] == sorted(poisoned), str(error.value)
    for seed in seeds:
        out = tmp_path / "together" / f"seed{seed}"
        assert (out / "run.json").exists() == (seed not in poisoned)
        assert not (out / ".lock").exists()
        if seed not in poisoned:
            alone = train(ppo, overrides, (seed,), tmp_path / "alone")
            for name in ("progress.csv", "episodes.csv"):
                assert equivalence.without_clock(f"{alone}/{name}") == equivalence.without_clock(out / name), (seed, name)
