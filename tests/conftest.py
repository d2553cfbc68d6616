"""Shared test helpers: load the standalone algorithm files by path, and tiny scripted envs."""
import importlib.util
import pathlib

import gymnasium as gym
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROGRESS_COLUMNS = ("algo,env_id,seed,iteration,global_step,walltime_s,sps,rollout_s,update_s,ep_count,"
                    "ep_return_mean,ep_return_std,ep_length_mean,return_last100,policy_loss,value_loss,entropy,"
                    "approx_kl,clip_frac,kl_beta,update_steps,early_stopped,line_search_steps,step_accepted,"
                    "explained_variance,learning_rate,grad_norm").split(",")  # docs/DESIGN.md §3, verbatim
EPISODE_COLUMNS = ["global_step", "ep_return", "ep_length", "terminated"]
CLOCK_COLUMNS = ["walltime_s", "sps", "rollout_s", "update_s"]


def load_algorithm(name):
    spec = importlib.util.spec_from_file_location(f"pgrepro_{name}", ROOT / "algorithms" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CounterEnv(gym.Env):
    """Observation = steps since reset; reward 1 per step (or NaN at step nan_at); terminates at
    step terminate_at if given. Register it with max_episode_steps to get truncations."""

    def __init__(self, terminate_at=None, nan_at=None, discrete=False):
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2) if discrete else gym.spaces.Box(-1, 1, (1,), np.float32)
        self.terminate_at, self.nan_at, self.t = terminate_at, nan_at, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        reward = float("nan") if self.t == self.nan_at else 1.0
        return np.array([self.t], np.float32), reward, self.t == self.terminate_at, False, {}


gym.register("pgrepro/Truncating-v0", entry_point=CounterEnv, max_episode_steps=3)
gym.register("pgrepro/Terminating-v0", entry_point=CounterEnv, kwargs={"terminate_at": 3}, max_episode_steps=100)
gym.register("pgrepro/NaNReward-v0", entry_point=CounterEnv, kwargs={"nan_at": 2}, max_episode_steps=10)


def read_csv(path):
    """Rows of a plain, gzip (--compress) or xz (the workflow's finished runs) CSV file."""
    import csv
    from analysis.load import open_csv
    with open_csv(path) as f:
        return list(csv.reader(f))


def without_clock(rows):
    header = rows[0]
    keep = [i for i, c in enumerate(header) if c not in CLOCK_COLUMNS]
    return [[r[i] for i in keep] for r in rows]


@pytest.fixture(scope="session")
def ppo():
    return load_algorithm("ppo")


def assert_usage_error(module, tmp_path, capsys, argv, flag):
    """main(argv) exits 2 with one stderr line 'error: <flag>: …' and starts nothing."""
    with pytest.raises(SystemExit) as exit_info:
        module.main(argv + ([] if "--out" in argv else ["--out", str(tmp_path / "run")]))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {flag}:"), err
    assert not (tmp_path / "run" / "progress.csv.partial").exists()


@pytest.fixture(scope="session")
def vpg():
    return load_algorithm("vpg")


@pytest.fixture(scope="session")
def trpo():
    return load_algorithm("trpo")


# The smallest configuration of each algorithm: one 8-step batch, one update.
TINY = {"ppo": dict(num_steps=8, minibatch_size=8, update_epochs=1),
        "vpg": dict(batch_size=8, train_v_iters=2),
        "trpo": dict(batch_size=8, vf_minibatch_size=8, vf_epochs=1)}
