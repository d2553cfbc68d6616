"""algorithms/ppo.py against independent references: a naive GAE loop, hand-computed
objectives, torch.distributions, scripted environments, and the run contract."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import CLOCK_COLUMNS, EPISODE_COLUMNS, PROGRESS_COLUMNS, ROOT, assert_usage_error, read_csv


def naive_gae(r, v, v_next, term, end, gamma, lam):
    """A_t = Σ_k (γλ)^k δ_{t+k}, summed forwards until the episode (or batch) ends."""
    T, N = r.shape
    adv = np.zeros((T, N))
    for n in range(N):
        for t in range(T):
            coef = 1.0
            for k in range(t, T):
                adv[t, n] += coef * (r[k, n] + gamma * (1 - term[k, n]) * v_next[k, n] - v[k, n])
                if end[k, n]:
                    break
                coef *= gamma * lam
    return adv


# One column: episode A terminates at t=1, B is truncated at t=3 (V(final obs) = 7), C is cut
# by the batch end at t=5 (V(next obs) = 8). Next-value 555 follows a termination: it must be ignored.
R = np.array([[1, 2, 3, 4, 5, 6]], float).T
V = np.array([[10, 20, 30, 40, 50, 60]], float).T
V_NEXT = np.array([[20, 555, 40, 7, 60, 8]], float).T
TERM = np.array([[0, 1, 0, 0, 0, 0]], float).T
END = np.array([[0, 1, 0, 1, 0, 0]], float).T


def test_gae_lambda_one_is_monte_carlo_return_minus_value(ppo):
    adv, ret = ppo.gae(R, V, V_NEXT, TERM, END, gamma=0.5, lam=1.0)
    # by hand: G0 = 1 + .5·2, G1 = 2; G3 = 4 + .5·7, G2 = 3 + .5·G3; G5 = 6 + .5·8, G4 = 5 + .5·G5
    np.testing.assert_allclose(adv[:, 0], [2 - 10, 2 - 20, 6.75 - 30, 7.5 - 40, 10 - 50, 10 - 60])
    np.testing.assert_allclose(ret, adv + V)


def test_gae_lambda_zero_is_td_error(ppo):
    adv, _ = ppo.gae(R, V, V_NEXT, TERM, END, gamma=0.5, lam=0.0)
    np.testing.assert_allclose(adv[:, 0], [1 + 10 - 10, 2 - 20, 3 + 20 - 30, 4 + 3.5 - 40, 5 + 30 - 50, 6 + 4 - 60])


@pytest.mark.parametrize("lam", [0.0, 0.36, 0.95, 1.0])
def test_gae_matches_naive_loop_on_random_episodes(ppo, lam):
    rng = np.random.default_rng(0)
    T, N = 50, 3
    term = (rng.random((T, N)) < 0.08).astype(float)
    end = np.maximum(term, (rng.random((T, N)) < 0.08).astype(float))
    r, v, v_next = rng.normal(size=(T, N)), rng.normal(size=(T, N)), rng.normal(size=(T, N))
    adv, _ = ppo.gae(r, v, v_next, term, end, 0.99, lam)
    np.testing.assert_allclose(adv, naive_gae(r, v, v_next, term, end, 0.99, lam), rtol=1e-10, atol=1e-10)


# ratio r and advantage A chosen to hit every branch of min(rA, clip(r)A) with ε = 0.2
RATIO = [0.5, 1.0, 1.5, 1.5, 0.5]
ADV = [1.0, -1.0, 1.0, -1.0, -1.0]


def loss_and_grad(ppo, objective, kl=None, beta=0.0):
    ratio = torch.tensor(RATIO, requires_grad=True)
    kl = torch.zeros(5) if kl is None else kl
    loss = ppo.policy_loss(objective, ratio, torch.tensor(ADV), kl, 0.2, beta)
    loss.backward()
    return loss.item(), ratio.grad.numpy()


def test_clip_objective_value_and_gradient(ppo):
    loss, grad = loss_and_grad(ppo, "clip")
    # min terms: 0.5 (unclipped), -1, 1.2 (clipped), -1.5 (unclipped), -0.8 (clipped)
    assert loss == pytest.approx(-(0.5 - 1 + 1.2 - 1.5 - 0.8) / 5)
    np.testing.assert_allclose(grad, -np.array([1, -1, 0, -1, 0]) / 5)  # no gradient where clipped


def test_unclipped_objective_value_and_gradient(ppo):
    loss, grad = loss_and_grad(ppo, "none")
    assert loss == pytest.approx(-(0.5 - 1 + 1.5 - 1.5 - 0.5) / 5)
    np.testing.assert_allclose(grad, -np.array(ADV) / 5)


@pytest.mark.parametrize("objective", ["kl_fixed", "kl_adaptive"])
def test_kl_penalty_objective_value_and_gradient(ppo, objective):
    kl = torch.tensor([0.1, 0.2, 0.0, 0.4, 0.3], requires_grad=True)
    loss, grad = loss_and_grad(ppo, objective, kl=kl, beta=3.0)
    assert loss == pytest.approx(-(0.5 - 1 + 1.5 - 1.5 - 0.5) / 5 + 3.0 * 1.0 / 5)
    np.testing.assert_allclose(grad, -np.array(ADV) / 5)
    np.testing.assert_allclose(kl.grad.numpy(), np.full(5, 3.0 / 5))


def test_adaptive_beta_rule(ppo):
    d_targ = 0.01
    assert ppo.adapt_beta(1.0, 0.001, d_targ) == 0.5      # d < d_targ/1.5: halve
    assert ppo.adapt_beta(1.0, 0.016, d_targ) == 2.0      # d > 1.5 d_targ: double
    assert ppo.adapt_beta(1.0, 0.01, d_targ) == 1.0       # in between: keep
    assert ppo.adapt_beta(1.0, 0.015, d_targ) == 1.0      # boundaries are not crossed
    assert ppo.adapt_beta(1.0, d_targ / 1.5, d_targ) == 1.0


def test_gaussian_formulas_match_torch_distributions(ppo):
    torch.manual_seed(0)
    pol = ppo.GaussianPolicy(5, 3, init="orthogonal")
    with torch.no_grad():
        pol.log_std.copy_(torch.tensor([-0.5, 0.0, 0.3]))
    obs, act = torch.randn(20, 5), torch.randn(20, 3)
    mean, log_std = pol(obs)
    ref = torch.distributions.Normal(mean, log_std.exp())
    np.testing.assert_allclose(pol.log_prob((mean, log_std), act).detach(), ref.log_prob(act).sum(-1).detach(), rtol=1e-5)
    np.testing.assert_allclose(pol.entropy((mean, log_std)).detach(), ref.entropy().sum(-1).detach(), rtol=1e-5)
    other = torch.distributions.Normal(mean + 0.3, (log_std - 0.2).exp())
    kl = pol.kl((mean, log_std), (mean + 0.3, log_std - 0.2))
    np.testing.assert_allclose(kl.detach(), torch.distributions.kl_divergence(ref, other).sum(-1).detach(), rtol=1e-5)


def test_categorical_formulas_match_torch_distributions(ppo):
    torch.manual_seed(0)
    pol = ppo.CategoricalPolicy(4, 5, init="normc")
    with torch.no_grad():
        pol.logits.weights[2][0].mul_(300)  # logits of order 1, not 0.01, so the KL is not ~1e-6
    obs = torch.randn(20, 4)
    (log_p,) = pol(obs)
    ref = torch.distributions.Categorical(logits=pol.logits(obs))
    act = ref.sample().float()
    np.testing.assert_allclose(pol.log_prob((log_p,), act).detach(), ref.log_prob(act.long()).detach(), rtol=1e-5)
    np.testing.assert_allclose(pol.entropy((log_p,)).detach(), ref.entropy().detach(), rtol=1e-5)
    other_logits = pol.logits(obs) * 0.5
    other = torch.distributions.Categorical(logits=other_logits)
    kl = pol.kl((log_p,), (torch.log_softmax(other_logits, -1),))
    np.testing.assert_allclose(kl.detach(), torch.distributions.kl_divergence(ref, other).detach(), rtol=1e-4, atol=1e-7)


def test_lean_gaussian_actor_matches_torch_path(ppo):
    """The numpy acting path draws the same action as μ_θ(s) + σ·ε in torch, for the same ε."""
    torch.manual_seed(1)
    pol = ppo.GaussianPolicy(6, 2, init="orthogonal")
    with torch.no_grad():
        pol.log_std.copy_(torch.tensor([-0.7, 0.4]))
        for p in pol.mean.parameters():
            p.add_(0.3 * torch.randn_like(p))  # move away from the 0.01-scaled head
    obs = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    action = pol.actor()(obs, np.random.default_rng(7))
    eps = np.random.default_rng(7).standard_normal(8).reshape(4, 2)
    with torch.no_grad():
        mean, log_std = pol(torch.from_numpy(obs))
        expected = (mean + log_std.exp() * torch.from_numpy(eps).float()).numpy()
    np.testing.assert_allclose(action, expected, rtol=1e-5, atol=1e-6)


def test_lean_categorical_actor_is_inverse_cdf_of_torch_probs(ppo):
    torch.manual_seed(2)
    pol = ppo.CategoricalPolicy(3, 4, init="normc")
    obs = np.random.default_rng(0).normal(size=(500, 3)).astype(np.float32)
    action = pol.actor()(obs, np.random.default_rng(3))
    u = np.random.default_rng(3).random((500, 1))
    with torch.no_grad():
        cdf = torch.softmax(pol.logits(torch.from_numpy(obs)), -1).cumsum(-1).numpy()
    expected = np.minimum((cdf < u).sum(-1), 3)
    assert (action == expected).mean() > 0.99  # equal up to float ties at the CDF boundaries


def cartpole(ppo, tmp_path, name, **kw):
    base = dict(env_id="CartPole-v1", num_steps=128, total_timesteps=384, minibatch_size=32, update_epochs=2,
                out=str(tmp_path / name))
    base.update(kw)
    return ppo.train(ppo.Args(**base), quiet=True)


def test_adaptive_beta_follows_the_rule_in_the_log(ppo, tmp_path):
    import pandas as pd
    run = cartpole(ppo, tmp_path, "kl", objective="kl_adaptive", d_targ=0.003, total_timesteps=768)
    p = pd.read_csv(f"{run}/progress.csv")
    assert p.kl_beta.iloc[0] == 1.0
    for prev, now in zip(p.itertuples(), p.iloc[1:].itertuples()):
        assert now.kl_beta == ppo.adapt_beta(prev.kl_beta, prev.approx_kl, 0.003)


def test_kl_early_stopping_cuts_policy_steps(ppo, tmp_path):
    import pandas as pd
    full = pd.read_csv(f"{cartpole(ppo, tmp_path, 'full')}/progress.csv")
    stopped = pd.read_csv(f"{cartpole(ppo, tmp_path, 'stop', target_kl=1e-6)}/progress.csv")
    assert (full.update_steps == 2 * 128 // 32).all() and (full.early_stopped == 0).all()
    assert (stopped.update_steps < 8).all() and (stopped.early_stopped == 1).all()
    loose = pd.read_csv(f"{cartpole(ppo, tmp_path, 'loose', target_kl=1e9)}/progress.csv")  # never KL > 1.5e9
    assert (loose.update_steps == 8).all() and (loose.early_stopped == 0).all()
    assert loose.drop(columns=CLOCK_COLUMNS).equals(full.drop(columns=CLOCK_COLUMNS))  # the check alone changes nothing


@pytest.mark.parametrize("env_id", ["CartPole-v1", "InvertedPendulum-v5"])
@pytest.mark.parametrize("objective", ["clip", "kl_adaptive", "kl_fixed", "none"])
def test_cli_end_to_end(tmp_path, env_id, objective):
    out = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "algorithms/ppo.py"), "--env-id", env_id, "--objective", objective,
           "--num-steps", "256", "--total-timesteps", "768", "--update-epochs", "2", "--out", str(out)]
    if objective == "clip":
        cmd += ["--target-kl", "0.01"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    progress, episodes = read_csv(out / "progress.csv"), read_csv(out / "episodes.csv")
    assert progress[0] == PROGRESS_COLUMNS and episodes[0] == EPISODE_COLUMNS
    assert len(progress) == 4 and len(episodes) > 1
    allowed_nan = {"line_search_steps", "step_accepted"} | ({"kl_beta"} if not objective.startswith("kl") else set())
    for row in progress[1:]:
        for col, value in zip(progress[0][3:], row[3:]):
            assert col in allowed_nan or math.isfinite(float(value)), (col, value)
    assert sorted(os.listdir(out)) == ["episodes.csv", "progress.csv", "run.json"]


BAD_INPUTS = [
    (["--clip-eps", "0"], "--clip-eps"), (["--beta", "-1"], "--beta"), (["--d-targ", "0"], "--d-targ"),
    (["--target-kl", "-0.01"], "--target-kl"), (["--learning-rate", "0"], "--learning-rate"),
    (["--total-timesteps", "0"], "--total-timesteps"), (["--num-steps", "-5"], "--num-steps"),
    (["--minibatch-size", "0"], "--minibatch-size"), (["--minibatch-size", "4096"], "--minibatch-size"),
    (["--objective", "trust_me"], "--objective"), (["--learning-rate", "nan"], "--learning-rate"),
    (["--max-grad-norm", "-1"], "--max-grad-norm"),
]


@pytest.mark.parametrize("argv,flag", BAD_INPUTS)
def test_bad_input_is_one_line_error_naming_the_flag(ppo, tmp_path, capsys, argv, flag):
    assert_usage_error(ppo, tmp_path, capsys, argv, flag)
