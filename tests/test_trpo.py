"""trpo.py: conjugate gradient, the Fisher-vector product against an explicit Hessian, the line search."""
import numpy as np
import pytest
import torch
from torch.func import hessian

from conftest import assert_usage_error


def test_conjugate_gradient_solves_spd_system(trpo):
    rng = np.random.default_rng(0)
    m = rng.normal(size=(20, 20))
    a = torch.tensor(m @ m.T + 0.5 * np.eye(20))
    b = torch.tensor(rng.normal(size=20))
    x = trpo.conjugate_gradient(lambda v: a @ v, b, iters=60, tolerance=1e-20)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a.numpy(), b.numpy()), rtol=1e-8, atol=1e-8)


def test_conjugate_gradient_ten_iterations_reduce_the_residual(trpo):
    rng = np.random.default_rng(1)
    m = rng.normal(size=(50, 50))
    a = torch.tensor(m @ m.T / 50 + np.eye(50))
    b = torch.tensor(rng.normal(size=50))
    x = trpo.conjugate_gradient(lambda v: a @ v, b, iters=10)
    assert (a @ x - b).norm() < 0.05 * b.norm()


def tiny_policy(trpo, discrete):
    torch.manual_seed(0)
    policy = trpo.CategoricalPolicy(3, 4, init="normc", hidden=5) if discrete else \
        trpo.GaussianPolicy(3, 2, init="normc", hidden=5)
    if not discrete:
        with torch.no_grad():
            policy.log_std.copy_(torch.tensor([-0.3, 0.2]))
    return policy.double()


@pytest.mark.parametrize("discrete", [False, True])
def test_fisher_vector_product_equals_explicit_kl_hessian(trpo, discrete):
    policy = tiny_policy(trpo, discrete)
    obs = torch.randn(16, 3, dtype=torch.float64)
    with torch.no_grad():
        old_dist = tuple(x.clone() for x in policy(obs))
    names = [n for n, _ in policy.named_parameters()]
    shapes = [p.shape for p in policy.parameters()]
    theta = torch.cat([p.detach().reshape(-1) for p in policy.parameters()])

    def mean_kl(flat):  # the policy written out from its parameters (its MLP reads its own weights directly)
        chunks = torch.split(flat, [s.numel() for s in shapes])
        p = {n: c.reshape(s) for n, c, s in zip(names, chunks, shapes)}
        net = "logits" if discrete else "mean"
        x = torch.tanh(obs @ p[f"{net}.0.weight"].T + p[f"{net}.0.bias"])
        x = torch.tanh(x @ p[f"{net}.2.weight"].T + p[f"{net}.2.bias"])
        out = x @ p[f"{net}.4.weight"].T + p[f"{net}.4.bias"]
        dist = (torch.log_softmax(out, -1),) if discrete else (out, p["log_std"].expand_as(out))
        return policy.kl(old_dist, dist).mean()

    explicit = hessian(mean_kl)(theta)  # (P, P), the Fisher matrix at θ_old
    assert explicit.shape[0] == theta.numel() < 200
    v = torch.randn(theta.numel(), dtype=torch.float64)
    np.testing.assert_allclose(trpo.fisher_vector_product(policy, obs, old_dist, v).numpy(),
                               (explicit @ v).numpy(), rtol=1e-8, atol=1e-10)


def test_line_search_restores_parameters_when_no_step_improves(trpo):
    policy = tiny_policy(trpo, discrete=False)
    before = [p.detach().clone() for p in policy.parameters()]
    step = torch.ones(sum(p.numel() for p in policy.parameters()), dtype=torch.float64)
    tried = []

    def evaluate():  # every candidate lowers the surrogate
        tried.append(torch.nn.utils.parameters_to_vector(policy.parameters()).detach().clone())
        return -1.0, 0.0

    steps, accepted = trpo.line_search(policy, step, evaluate, surrogate_old=0.0, max_kl=0.01, coef=0.8, iters=10)
    assert (steps, accepted) == (10, False)
    for p, q in zip(policy.parameters(), before):
        assert torch.equal(p.detach(), q)
    base = torch.cat([q.reshape(-1) for q in before])
    for j, theta in enumerate(tried):  # the candidates were θ_old + 0.8^j · step
        np.testing.assert_allclose((theta - base).numpy(), (0.8 ** j * step).numpy(), rtol=1e-12)


def test_line_search_rejects_steps_outside_the_trust_region(trpo):
    policy = tiny_policy(trpo, discrete=False)
    step = torch.ones(sum(p.numel() for p in policy.parameters()), dtype=torch.float64)
    kls = iter([0.05, 0.02, 0.009])  # improves every time; only the third is inside δ = 0.01
    steps, accepted = trpo.line_search(policy, step, lambda: (1.0, next(kls)), 0.0, 0.01, 0.5, 10)
    assert (steps, accepted) == (3, True)


@pytest.mark.parametrize("discrete", [False, True])
def test_accepted_step_stays_in_the_trust_region_and_improves(trpo, discrete):
    policy = tiny_policy(trpo, discrete).float()
    torch.manual_seed(1)
    obs = torch.randn(256, 3)
    with torch.no_grad():
        old_dist = tuple(x.clone() for x in policy(obs))
        actions = torch.randint(0, 4, (256,)).float() if discrete else old_dist[0] + torch.randn(256, 2)
    advantages = torch.randn(256)
    args = trpo.Args(max_kl=0.01)
    result = trpo.trpo_step(policy, obs, actions, advantages, old_dist, args)
    with torch.no_grad():
        kl = policy.kl(old_dist, policy(obs)).mean().item()
    assert result["accepted"] and 0 < kl <= 0.01 and result["surrogate"] > (advantages.mean().item())
    assert kl > 0.3 * 0.01 * 0.8 ** (result["steps"] - 1)  # the step used the trust region, not a sliver of it


@pytest.mark.parametrize("argv,flag", [
    (["--max-kl", "0"], "--max-kl"), (["--cg-iters", "0"], "--cg-iters"), (["--cg-damping", "-1"], "--cg-damping"),
    (["--backtrack-coef", "1.0"], "--backtrack-coef"), (["--backtrack-iters", "0"], "--backtrack-iters"),
    (["--vf-lr", "0"], "--vf-lr"), (["--vf-minibatch-size", "5000"], "--vf-minibatch-size"),
])
def test_bad_input(trpo, tmp_path, capsys, argv, flag):
    assert_usage_error(trpo, tmp_path, capsys, argv, flag)
