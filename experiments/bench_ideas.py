"""What each speed idea in ppo.py gains, measured one at a time (HalfCheetah-sized networks:
17-d observations, 6-d actions, 64×64 tanh, minibatch 64, one thread).

  python experiments/bench_ideas.py          # writes results/bench/ideas.csv

Acting (per environment step, the rollout's overhead beside the simulator):
  torch_distributions  torch forward under no_grad + torch.distributions.Normal.sample + .numpy()
  lean_numpy           ppo.py's actor(): numpy over views of the weights, noise from numpy
Update (per minibatch, policy + value; cumulative, each row adds one idea to those above):
  baseline          torch.optim.Adam, two backward passes, clip_grad_norm_ per network, .item() per step
  fused_adam        + Adam(fused=True)
  one_backward      + one backward through the summed (disjoint) losses
  stats_as_tensors  + statistics kept as tensors, read once per iteration
  flat_buffers      + parameters and gradients as views of one flat tensor per network:
                      one zero_(), one gradient norm, Adam over one tensor
  hand_adam         + ppo.py's own Adam on the flat tensor (no torch.optim bookkeeping)
  epoch_views       + shuffle once per epoch, minibatches as views instead of indexing
  batched_adv_norm  + per-minibatch advantage normalisation for the whole epoch at once
  deferred_stats    + entropy and clip fraction from kept tensors, once per iteration
  functional_mlp    + the MLPs' forward as direct F.linear/tanh calls, not nn.Module calls (ppo.py today)
Advantages (per 2048-step rollout, GAE(λ) with episode ends):
  delta_in_loop     every δ_t computed inside the backward recursion
  vectorised_delta  ppo.gae(): all δ_t and γλ(1 − end_t) at once, only the recursion in the loop
Each number is the fastest of several interleaved measurements.
"""
import importlib.util
import pathlib
import time

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

ROOT = pathlib.Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("bench_ppo", ROOT / "algorithms" / "ppo.py")
ppo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ppo)

OBS, ACT, MB, BATCH = 17, 6, 64, 2048
REPEATS = 7


def per_call(fn, n):
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6  # µs


def acting():
    policy = ppo.GaussianPolicy(OBS, ACT, init="orthogonal")
    obs = np.random.default_rng(0).normal(size=(1, OBS)).astype(np.float32)
    rng = np.random.default_rng(1)

    def torch_path():
        with torch.no_grad():
            mean, log_std = policy(torch.from_numpy(obs))
            return torch.distributions.Normal(mean, log_std.exp()).sample().numpy()

    act = policy.actor()
    return {"torch_distributions": per_call(torch_path, 5000), "lean_numpy": per_call(lambda: act(obs, rng), 5000)}


# Cumulative: each idea is measured with every idea above it switched on.
UPDATE_IDEAS = ["baseline", "fused_adam", "one_backward", "stats_as_tensors", "flat_buffers", "hand_adam",
                "epoch_views", "batched_adv_norm", "deferred_stats", "functional_mlp"]


def advantages():
    """Microseconds per rollout of GAE(λ): δ_t inside the recursion, and ppo.gae (same numbers, bit for bit)."""
    rng = np.random.default_rng(0)
    r, v, v_next = (rng.normal(size=(BATCH, 1)).astype(np.float32) for _ in range(3))
    end = (rng.random((BATCH, 1)) < 0.01).astype(np.float32)
    term = end * (rng.random((BATCH, 1)) < 0.5)

    def delta_in_loop():
        adv, next_adv = np.zeros_like(r), np.zeros_like(r[0])
        for t in reversed(range(BATCH)):
            delta = r[t] + 0.99 * (1.0 - term[t]) * v_next[t] - v[t]
            next_adv = delta + 0.99 * 0.95 * (1.0 - end[t]) * next_adv
            adv[t] = next_adv
        return adv

    assert np.array_equal(delta_in_loop(), ppo.gae(r, v, v_next, term, end, 0.99, 0.95)[0])
    return {"delta_in_loop": lambda: per_call(delta_in_loop, 20),
            "vectorised_delta": lambda: per_call(lambda: ppo.gae(r, v, v_next, term, end, 0.99, 0.95), 20)}


def update(idea):
    """Microseconds per minibatch of the PPO-clip update with the ideas up to `idea` switched on."""
    on = set(UPDATE_IDEAS[:UPDATE_IDEAS.index(idea) + 1])
    torch.manual_seed(0)
    policy, value_fn = ppo.GaussianPolicy(OBS, ACT, init="orthogonal"), ppo.mlp(OBS, 1, 1.0, init="orthogonal")
    if "functional_mlp" not in on:  # the same layers, called through nn.Sequential's module machinery
        policy.mean.__class__ = value_fn.__class__ = nn.Sequential
    if "flat_buffers" in on:  # parameters and gradients as views of one flat tensor per network
        flats = ppo.flat_parameters(policy), ppo.flat_parameters(value_fn)
        if "hand_adam" in on:
            optimisers = [ppo.Adam(f, 3e-4, 1e-5) for f in flats]
        else:
            optimisers = [torch.optim.Adam([f], lr=3e-4, eps=1e-5, fused=True) for f in flats]
    else:
        optimisers = [torch.optim.Adam(net.parameters(), lr=3e-4, eps=1e-5, fused="fused_adam" in on or None)
                      for net in (policy, value_fn)]
    obs, act = torch.randn(BATCH, OBS), torch.randn(BATCH, ACT)
    adv, ret, val = torch.randn(BATCH), torch.randn(BATCH), torch.randn(BATCH)
    with torch.no_grad():
        old_logp = policy.log_prob(tuple(x.clone() for x in policy(obs)), act)
    stats, stepped = [], []

    def minibatches():  # endless epochs of shuffled minibatches: (adv, obs, act, old_logp, ret, val)
        while True:
            perm = torch.randperm(BATCH)
            if "epoch_views" in on:  # shuffle once per epoch, minibatches are views
                a = adv[perm]
                if "batched_adv_norm" in on:
                    a = ppo.normalise_minibatches(a, MB)
                yield from zip(*(x.split(MB) for x in (a, obs[perm], act[perm], old_logp[perm], ret[perm], val[perm])))
            else:
                for mb in perm.split(MB):
                    yield adv[mb], obs[mb], act[mb], old_logp[mb], ret[mb], val[mb]

    batches = minibatches()

    def step():
        a, o, ac, olp, r, vv = next(batches)
        v = value_fn(o).squeeze(-1)
        v_clipped = vv + (v - vv).clamp(-0.2, 0.2)
        v_loss = 0.5 * torch.max((v - r) ** 2, (v_clipped - r) ** 2).mean()
        dist = policy(o)
        ratio = (policy.log_prob(dist, ac) - olp).exp()
        if "batched_adv_norm" not in on:
            a = (a - a.mean()) / (a.std() + 1e-8)
        pi_loss = ppo.policy_loss("clip", ratio, a, None, 0.2, 0.0)
        if "flat_buffers" in on:
            for f in flats:
                f.grad.zero_()
        else:
            for opt in optimisers:
                opt.zero_grad()
        if "one_backward" in on:
            (pi_loss + v_loss).backward()
        else:
            pi_loss.backward()
            v_loss.backward()
        if "flat_buffers" in on:
            ppo.clip_grad_norm(flats[1], 0.5)
            norm = ppo.clip_grad_norm(flats[0], 0.5)
        else:
            nn.utils.clip_grad_norm_(value_fn.parameters(), 0.5)
            norm = nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
        for opt in optimisers:
            opt.step()
        if "deferred_stats" in on:  # entropy and clip fraction once per iteration, from kept tensors
            stats.append((pi_loss.detach(), v_loss.detach(), norm))
            stepped.append((ratio.detach(),) + tuple(x.detach() for x in dist))
            return
        with torch.no_grad():
            entropy, clip_frac = policy.entropy(dist).mean(), ((ratio - 1).abs() > 0.2).float().mean()
        values = (pi_loss.detach(), v_loss.detach(), entropy, clip_frac, norm)
        stats.append(values if "stats_as_tensors" in on else tuple(x.item() for x in values))

    return lambda: per_call(step, 320)  # one PPO iteration's worth of minibatches


def main():
    torch.set_num_threads(1)
    rows = [dict(part="acting, per env step", idea=k, microseconds=round(v, 1)) for k, v in acting().items()]
    for part, timers in (("update, per minibatch", {idea: update(idea) for idea in UPDATE_IDEAS}),
                         ("advantages, per rollout", advantages())):
        best = {idea: float("inf") for idea in timers}
        for _ in range(REPEATS):  # interleaved, fastest kept: a slow spell of the machine hits every idea
            for idea, timer in timers.items():
                best[idea] = min(best[idea], timer())
        rows += [dict(part=part, idea=idea, microseconds=round(us, 1)) for idea, us in best.items()]
    table = pd.DataFrame(rows)
    out = ROOT / "results" / "bench" / "ideas.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
