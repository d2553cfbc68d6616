"""The speed work must not change what is computed: ppo.py's lean acting path (numpy over views
of the weights) against the straightforward torch.distributions path, step by step and over a
short training run."""
import numpy as np
import pandas as pd
import torch

from conftest import CLOCK_COLUMNS


def torch_distributions_actor(policy):
    """The straightforward path: torch forward + torch.distributions.Normal, fed the same noise."""
    def act(obs, rng):
        eps = torch.from_numpy(rng.standard_normal(policy.log_std.shape[0] * len(obs)).reshape(len(obs), -1))
        with torch.no_grad():
            mean, log_std = policy(torch.from_numpy(np.asarray(obs, np.float32)))
            dist = torch.distributions.Normal(mean, log_std.exp())
            return (dist.loc + dist.scale * eps.float()).numpy()  # Normal.rsample with this ε
    return act


def test_actions_and_log_probs_match_torch_distributions(ppo):
    torch.manual_seed(0)
    policy = ppo.GaussianPolicy(11, 3, ortho=True)
    with torch.no_grad():
        policy.log_std.copy_(torch.tensor([-1.0, 0.0, 0.5]))
        for p in policy.mean.parameters():
            p.add_(0.2 * torch.randn_like(p))
    obs = np.random.default_rng(0).normal(size=(1, 11)).astype(np.float32)
    lean, reference = policy.actor(), torch_distributions_actor(policy)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    for _ in range(50):
        a, b = lean(obs, rng_a), reference(obs, rng_b)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        with torch.no_grad():
            mean, log_std = policy(torch.from_numpy(obs))
            ref_logp = torch.distributions.Normal(mean, log_std.exp()).log_prob(torch.from_numpy(a)).sum(-1)
            np.testing.assert_allclose(policy.log_prob((mean, log_std), torch.from_numpy(a)), ref_logp, rtol=1e-5)


def test_short_run_losses_match_the_straightforward_path(ppo, tmp_path, monkeypatch):
    def run(name):
        args = ppo.Args(env_id="InvertedPendulum-v5", num_steps=512, minibatch_size=64, update_epochs=2,
                        total_timesteps=1536, seed=7, out=str(tmp_path / name))
        return pd.read_csv(f"{ppo.train(args, quiet=True)}/progress.csv").drop(columns=CLOCK_COLUMNS)

    lean = run("lean")
    monkeypatch.setattr(ppo.GaussianPolicy, "actor", torch_distributions_actor)
    reference = run("reference")
    assert (lean.ep_count == reference.ep_count).all()
    for column in ("policy_loss", "value_loss", "entropy", "approx_kl", "ep_return_mean", "explained_variance"):
        np.testing.assert_allclose(lean[column], reference[column], rtol=1e-3, atol=1e-6, err_msg=column)
