"""The paper-era code-level regime of ppo.py (--regime ppo1), against independent references:
the flag set read off baselines pposgd @ da99706, normc norms computed by hand, batch-level
advantage moments, and ppo1's observation filter recomputed from the raw observations."""
import json

import gymnasium as gym
import numpy as np
import pytest
import torch

# baselines pposgd @ da99706 (with d9f194f's plain MSE value loss), as listed in our fidelity notes §2.1
PPO1_FLAGS = dict(anneal_lr=False, adam_eps=1e-8, obs_stats="per_batch", obs_clip=5.0, scale_rewards=False,
                  adv_norm="batch", clip_vloss=False, max_grad_norm=0.0, init="normc", bootstrap_truncation=False)
PPO2_FLAGS = dict(anneal_lr=True, adam_eps=1e-5, obs_stats="per_step", obs_clip=10.0, scale_rewards=True,
                  adv_norm="minibatch", clip_vloss=True, max_grad_norm=0.5, init="orthogonal", bootstrap_truncation=True)


class RampEnv(gym.Env):
    """Observation [t, 0.01·(t mod 2)] (t = steps since reset), reward t/10; 20-step episodes via TimeLimit.
    The first component outgrows the ±5 clip; the second has a variance far below the 1e-2 floor."""
    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float64)
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        return np.array([self.t, 0.01 * (self.t % 2)])

    def step(self, action):
        self.t += 1
        return self._obs(), self.t / 10, False, False, {}


gym.register("pgrepro/Ramp-v0", entry_point=RampEnv, max_episode_steps=20)


def batches(ppo, tmp_path, **kw):
    args = ppo.Args(env_id="pgrepro/Ramp-v0", total_timesteps=96, num_steps=32, minibatch_size=8, update_epochs=2,
                    out=str(tmp_path / "run"), **kw)
    seen = []
    ppo.train(args, quiet=True, on_batch=lambda b: seen.append({k: None if v is None else v.copy() for k, v in b.items()}))
    return args, seen


def test_regime_ppo1_resolves_to_the_documented_flags_in_run_json(ppo, tmp_path):
    ppo.main(["--env-id", "CartPole-v1", "--regime", "ppo1", "--num-steps", "64", "--minibatch-size", "32",
              "--total-timesteps", "64", "--out", str(tmp_path / "a")])
    recorded = json.loads((tmp_path / "a" / "run.json").read_text())["args"]
    assert {k: recorded[k] for k in PPO1_FLAGS} == PPO1_FLAGS and recorded["regime"] == "ppo1"
    # an explicit flag wins over its regime; the other regime flags keep the regime's values
    ppo.main(["--env-id", "CartPole-v1", "--regime", "ppo1", "--obs-clip", "7", "--clip-vloss", "--num-steps", "64",
              "--minibatch-size", "32", "--total-timesteps", "64", "--out", str(tmp_path / "b")])
    recorded = json.loads((tmp_path / "b" / "run.json").read_text())["args"]
    assert {k: recorded[k] for k in PPO1_FLAGS} == {**PPO1_FLAGS, "obs_clip": 7.0, "clip_vloss": True}


def test_default_regime_is_ppo2_with_the_documented_flags(ppo):
    args = ppo.resolve(ppo.Args())
    assert args.regime == "ppo2" and {k: getattr(args, k) for k in PPO2_FLAGS} == PPO2_FLAGS


def test_normc_rows_have_the_requested_l2_norm_and_zero_biases(ppo):
    torch.manual_seed(0)
    net = ppo.MLP(11, 3, 0.01, "normc")
    (w1, b1), (w2, b2), (w3, b3) = ((w.detach().numpy(), b.detach().numpy()) for w, b in net.weights)
    # one row per output unit in torch's (out, in) layout = one column of TF's (in, out) matrix
    np.testing.assert_allclose(np.sqrt((w1 ** 2).sum(1)), np.ones(64), rtol=1e-6)
    np.testing.assert_allclose(np.sqrt((w2 ** 2).sum(1)), np.ones(64), rtol=1e-6)
    np.testing.assert_allclose(np.sqrt((w3 ** 2).sum(1)), np.full(3, 0.01), rtol=1e-6)
    assert not b1.any() and not b2.any() and not b3.any()
    assert len(np.unique(np.round(w1, 6))) > 600  # Gaussian draws, not a constant pattern
    value_head = ppo.MLP(11, 1, 1.0, "normc").weights[2][0].detach().numpy()
    assert np.sqrt((value_head ** 2).sum()) == pytest.approx(1.0, rel=1e-6)


def test_batch_advantage_normalisation_gives_mean_0_std_1_before_the_epochs(ppo, tmp_path):
    _, seen = batches(ppo, tmp_path, regime="ppo1")
    for b in seen:
        a = b["policy_advantages"].astype(np.float64)
        assert abs(a.mean()) < 1e-6 and a.std() == pytest.approx(1.0, abs=1e-5)  # population std, as ppo1
        raw = b["advantages"].astype(np.float64)
        np.testing.assert_allclose(a, (raw - raw.mean()) / raw.std(), rtol=1e-4, atol=1e-5)
    _, seen = batches(ppo, tmp_path / "off", regime="ppo1", adv_norm="none")
    np.testing.assert_array_equal(seen[0]["policy_advantages"], seen[0]["advantages"])


def test_ppo1_observation_filter_changes_once_per_iteration_is_floored_and_clipped(ppo, tmp_path):
    args, seen = batches(ppo, tmp_path, regime="ppo1")
    total, total_sq, count = np.zeros(2), np.full(2, 1e-2), 1e-2  # ppo1's initial sums: mean 0, std 1
    for b in seen:
        raw = b["raw_obs"].reshape(-1, 2)
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 1e-2))
        # the whole rollout used one set of statistics: those of the batches before it
        np.testing.assert_allclose(b["obs"].reshape(-1, 2), np.clip((raw - mean) / std, -5, 5), rtol=1e-5, atol=1e-6)
        total, total_sq, count = total + raw.sum(0), total_sq + (raw ** 2).sum(0), count + len(raw)
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 1e-2))
        # the epochs train on the same batch re-normalised with statistics that include it
        np.testing.assert_allclose(b["update_obs"].reshape(-1, 2), np.clip((raw - mean) / std, -5, 5), rtol=1e-5, atol=1e-6)
        assert std[1] == pytest.approx(0.1)  # variance 2.5e-5, floored at 1e-2
    np.testing.assert_array_equal(seen[0]["raw_obs"][:, 0, 0], list(range(20)) + list(range(12)))
    first = seen[0]["obs"][:, 0, 0]
    assert first.max() == 5.0 and (seen[0]["raw_obs"][:, 0, 0] > 5).any()  # clipped at ±5


def test_per_step_statistics_are_the_default_and_update_within_the_rollout(ppo, tmp_path):
    _, seen = batches(ppo, tmp_path)
    assert seen[0]["update_obs"] is seen[0]["obs"] or np.array_equal(seen[0]["update_obs"], seen[0]["obs"])
    obs = seen[0]["obs"][:, 0, 0]
    assert obs[1] != obs[21]  # the same raw t = 1, normalised with statistics updated in between
