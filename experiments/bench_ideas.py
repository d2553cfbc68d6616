"""What each speed idea in ppo.py gains, measured one at a time (HalfCheetah-sized networks:
17-d observations, 6-d actions, 64×64 tanh, minibatch 64, one thread).

  python experiments/bench_ideas.py          # writes results/bench/ideas.csv

Acting (per environment step, the rollout's overhead beside the simulator):
  torch_distributions  torch forward under no_grad + torch.distributions.Normal.sample + .numpy()
  lean_numpy           ppo.py's actor(): numpy over views of the weights, noise from numpy
Update (per minibatch, policy + value):
  baseline             default Adam, two backward passes, clip_grad_norm_ per network, .item() per step
  fused_adam           + Adam(fused=True)
  one_backward         + one backward through the summed (disjoint) losses
  stats_as_tensors     + statistics kept as tensors, read once per iteration (ppo.py today)
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


def per_call(fn, n):
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6  # µs


def acting():
    policy = ppo.GaussianPolicy(OBS, ACT, ortho=True)
    obs = np.random.default_rng(0).normal(size=(1, OBS)).astype(np.float32)
    rng = np.random.default_rng(1)

    def torch_path():
        with torch.no_grad():
            mean, log_std = policy(torch.from_numpy(obs))
            return torch.distributions.Normal(mean, log_std.exp()).sample().numpy()

    act = policy.actor()
    return {"torch_distributions": per_call(torch_path, 5000), "lean_numpy": per_call(lambda: act(obs, rng), 5000)}


def update(fused, one_backward, tensor_stats):
    torch.manual_seed(0)
    policy, value_fn = ppo.GaussianPolicy(OBS, ACT, ortho=True), ppo.mlp(OBS, 1, 1.0, ortho=True)
    pi_opt = torch.optim.Adam(policy.parameters(), lr=3e-4, eps=1e-5, fused=fused)
    v_opt = torch.optim.Adam(value_fn.parameters(), lr=3e-4, eps=1e-5, fused=fused)
    obs, act = torch.randn(BATCH, OBS), torch.randn(BATCH, ACT)
    adv, ret, val = torch.randn(BATCH), torch.randn(BATCH), torch.randn(BATCH)
    with torch.no_grad():
        old = tuple(x.clone() for x in policy(obs))
        old_logp = policy.log_prob(old, act)
    batches = iter(torch.randperm(BATCH).split(MB) * 10_000)
    stats = []

    def step():
        mb = next(batches)
        v = value_fn(obs[mb]).squeeze(-1)
        v_clipped = val[mb] + (v - val[mb]).clamp(-0.2, 0.2)
        v_loss = 0.5 * torch.max((v - ret[mb]) ** 2, (v_clipped - ret[mb]) ** 2).mean()
        dist = policy(obs[mb])
        ratio = (policy.log_prob(dist, act[mb]) - old_logp[mb]).exp()
        a = (adv[mb] - adv[mb].mean()) / (adv[mb].std() + 1e-8)
        pi_loss = ppo.policy_loss("clip", ratio, a, None, 0.2, 0.0)
        pi_opt.zero_grad()
        v_opt.zero_grad()
        if one_backward:
            (pi_loss + v_loss).backward()
        else:
            pi_loss.backward()
            v_loss.backward()
        nn.utils.clip_grad_norm_(value_fn.parameters(), 0.5)
        norm = nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
        pi_opt.step()
        v_opt.step()
        with torch.no_grad():
            entropy, clip_frac = policy.entropy(dist).mean(), ((ratio - 1).abs() > 0.2).float().mean()
        values = (pi_loss.detach(), v_loss.detach(), entropy, clip_frac, norm)
        stats.append(values if tensor_stats else tuple(x.item() for x in values))

    return per_call(step, 640)


def main():
    torch.set_num_threads(1)
    rows = [dict(part="acting, per env step", idea=k, microseconds=round(v, 1)) for k, v in acting().items()]
    for idea, kw in [("baseline", dict(fused=None, one_backward=False, tensor_stats=False)),
                     ("fused_adam", dict(fused=True, one_backward=False, tensor_stats=False)),
                     ("one_backward", dict(fused=True, one_backward=True, tensor_stats=False)),
                     ("stats_as_tensors", dict(fused=True, one_backward=True, tensor_stats=True))]:
        rows.append(dict(part="update, per minibatch", idea=idea, microseconds=round(update(**kw), 1)))
    table = pd.DataFrame(rows)
    out = ROOT / "results" / "bench" / "ideas.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
