"""The speed work must not change what is computed: ppo.py's lean acting path (numpy over views
of the weights) against the straightforward torch.distributions path, step by step and over a
short training run."""
import numpy as np
import pandas as pd
import run_contract
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
    policy = ppo.GaussianPolicy(11, 3, init="orthogonal")
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


def test_flat_parameter_update_matches_the_straightforward_update(ppo):
    """ppo.py's update through run_contract's speed helpers (parameters as views of one flat tensor, one
    gradient norm, an Adam on the flat tensor) against nn.utils.clip_grad_norm_ + torch.optim.Adam over the module's parameters."""
    def make():
        torch.manual_seed(3)
        return ppo.GaussianPolicy(5, 2, init="orthogonal")

    flat_policy, reference = make(), make()
    flat = run_contract.flat_parameters(flat_policy)
    flat_opt = run_contract.Adam(flat, lr=1e-2, eps=1e-5)
    ref_opt = torch.optim.Adam(reference.parameters(), lr=1e-2, eps=1e-5)
    data = torch.Generator().manual_seed(0)
    for step in range(30):
        obs, act = torch.randn(16, 5, generator=data), torch.randn(16, 2, generator=data)
        max_norm = 0.5 if step % 2 else 100.0  # clipping active and inactive
        flat.grad.zero_()
        (-flat_policy.log_prob(flat_policy(obs), act).mean()).backward()
        norm = run_contract.clip_grad_norm(flat, max_norm)
        flat_opt.step()
        ref_opt.zero_grad()
        (-reference.log_prob(reference(obs), act).mean()).backward()
        ref_norm = torch.nn.utils.clip_grad_norm_(reference.parameters(), max_norm)
        ref_opt.step()
        torch.testing.assert_close(norm, ref_norm, rtol=1e-5, atol=1e-6)
        for (name, p), q in zip(flat_policy.named_parameters(), reference.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=f"{name} after step {step}")
    # the module's parameters, their gradients and the numpy acting path all see the flat storage
    offset = 0
    for p in flat_policy.parameters():
        assert torch.equal(p.detach().reshape(-1), flat.detach()[offset:offset + p.numel()])
        assert torch.equal(p.grad.reshape(-1), flat.grad[offset:offset + p.numel()])
        offset += p.numel()
    assert offset == flat.numel()
    obs = np.ones((1, 5), np.float32)
    with torch.no_grad():
        mean = flat_policy(torch.from_numpy(obs))[0].numpy()
    np.testing.assert_allclose(run_contract.numpy_mlp(flat_policy.mean.weights)(obs), mean, rtol=1e-5, atol=1e-6)


def test_batched_advantage_normalisation_matches_a_loop_over_minibatches(ppo):
    advantages = torch.randn(2048, generator=torch.Generator().manual_seed(1))
    for size in (64, 100, 2047, 2048, 3000, 1):  # even split, a short last minibatch, one of one, one only
        loop = torch.cat([(mb - mb.mean()) / (mb.std() + 1e-8) if len(mb) > 1 else mb for mb in advantages.split(size)])
        torch.testing.assert_close(ppo.normalise_minibatches(advantages, size), loop, rtol=0, atol=1e-6)


def test_direct_mlp_forward_is_bit_identical_to_module_calls(ppo):
    """ppo.MLP calls F.linear and tanh itself; the result and the gradients equal nn.Sequential's bit for bit."""
    torch.manual_seed(0)
    net = ppo.MLP(7, 3, 0.01, init="orthogonal")
    obs = torch.randn(64, 7)
    fast = net(obs)
    fast.square().sum().backward()
    fast_grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    slow = torch.nn.Sequential.forward(net, obs)  # the same layers through their own module calls
    slow.square().sum().backward()
    assert torch.equal(fast, slow)
    assert all(torch.equal(g, p.grad) for g, p in zip(fast_grads, net.parameters()))
    assert [p.data_ptr() for p, _ in net.weights] == [m.weight.data_ptr() for m in net if isinstance(m, torch.nn.Linear)]


def test_gae_in_float32_equals_delta_inside_the_recursion_bit_for_bit(ppo):
    """ppo.gae computes every δ_t up front; the rollout's float32 arithmetic must round exactly as the
    one-step-at-a-time recursion does, so the committed runs stay reproducible bit for bit."""
    rng = np.random.default_rng(2)
    T, N = 300, 2
    r, v, v_next = (rng.normal(size=(T, N)).astype(np.float32) for _ in range(3))
    end = (rng.random((T, N)) < 0.05).astype(np.float32)
    term = end * (rng.random((T, N)) < 0.5).astype(np.float32)
    step_by_step, next_adv = np.zeros_like(r), np.zeros_like(r[0])
    for t in reversed(range(T)):
        delta = r[t] + 0.99 * (1.0 - term[t]) * v_next[t] - v[t]
        next_adv = delta + 0.99 * 0.95 * (1.0 - end[t]) * next_adv
        step_by_step[t] = next_adv
    adv, ret = ppo.gae(r, v, v_next, term, end, 0.99, 0.95)
    assert adv.dtype == np.float32 and np.array_equal(adv, step_by_step)


def test_seed_rows_step_as_separate_optimisers_and_a_stopped_row_does_not_move(ppo):
    """Adam and the gradient clip on a (K, P) tensor of seed rows (ppo.py several seeds at once) are, row by row,
    bit for bit the one-seed Adam and clip; a row left out of a step keeps its parameters, moments and step count."""
    K, P = 4, 300
    data = torch.Generator().manual_seed(1)
    rows = torch.nn.Parameter(torch.randn(K, P, generator=data))
    rows.grad = torch.zeros_like(rows)
    alone = [torch.nn.Parameter(rows.detach()[k].clone()) for k in range(K)]
    opt = run_contract.Adam(rows, lr=3e-4, eps=1e-5)
    opts = [run_contract.Adam(p, lr=3e-4, eps=1e-5) for p in alone]
    for step in range(25):
        stepping = [step < 5 or (step + k) % 3 != 0 for k in range(K)]  # rows drop out and come back
        g = torch.randn(K, P, generator=data) * 10
        rows.grad.copy_(g)
        norms = run_contract.clip_grad_norm(rows, 0.5)
        before = rows.detach().clone(), opt.m.clone(), opt.v.clone()
        opt.step(stepping)
        for k, p in enumerate(alone):
            p.grad = g[k].clone()
            assert torch.equal(norms[k], run_contract.clip_grad_norm(p, 0.5)), (step, k)
            if stepping[k]:
                opts[k].step()
                assert torch.equal(rows.detach()[k], p.detach()) and torch.equal(opt.m[k], opts[k].m), (step, k)
            else:
                assert all(torch.equal(x[k], y[k]) for x, y in zip((rows.detach(), opt.m, opt.v), before)), (step, k)
    assert opt.t == [o.t[0] for o in opts] and len(set(opt.t)) > 1
