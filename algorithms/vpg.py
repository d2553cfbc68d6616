"""Vanilla policy gradient (REINFORCE), one readable file, with the four policy-gradient weights.

The policy-gradient theorem (Williams 1992; Sutton et al. 2000) in the form of Schulman et al.
(2016), "High-Dimensional Continuous Control Using Generalized Advantage Estimation", §2, eq. 1:

    g = E[ Σ_t Φ_t ∇_θ log π_θ(a_t|s_t) ]

with one of four weights Φ_t (--weight), each a small change from the last:

  total_return    Φ_t = R(τ) = Σ_{t'} γ^{t'} r_{t'}         the whole episode's return (REINFORCE)
  reward_to_go    Φ_t = Σ_{t'≥t} γ^{t'-t} r_{t'}             "don't let the past distract you":
                                                            rewards before t do not depend on a_t
  value_baseline  Φ_t = Σ_{t'≥t} γ^{t'-t} r_{t'} − V(s_t)   a learned baseline lowers the variance
  gae             Φ_t = Â_t^{GAE(γ,λ)} = Σ_l (γλ)^l δ_{t+l}, δ_t = r_t + γV(s_{t+1}) − V(s_t)  (GAE eq. 16)

Without a value function (the first two weights) a time-limit truncation or the end of the
batch simply ends the sum; with one, the sum is bootstrapped with V(final observation) there
(docs/DESIGN.md §5). Terminations are never bootstrapped.

Each iteration collects --batch-size steps (Spinning Up: 4000), takes ONE Adam step on
−mean(Φ_t log π_θ(a_t|s_t)), and (for the two weights that use V) fits V by --train-v-iters
full-batch Adam steps of mean-squared error on the bootstrapped rewards-to-go (Spinning Up's
VPG). The networks and GAE are written as in trpo.py and ppo.py (tests keep them so).

Run: python algorithms/vpg.py --env-id CartPole-v1 --weight reward_to_go --out runs/vpg/CartPole-v1/seed1
Writes progress.csv, episodes.csv and run.json into --out (run_contract.py; README, "Reading a run").
"""
import run_contract as rc  # first: a Ctrl-C during the slow imports below then exits quietly
from run_contract import NonFiniteError, UsageError, arg  # noqa: F401 (callers catch the errors from here)

import math
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ALGO = rc.algo_name(__file__)  # "vpg": a copy of this file under another name names its runs after itself
WEIGHTS = ("total_return", "reward_to_go", "value_baseline", "gae")


@dataclass
class Args(rc.RunArgs):
    weight: str = arg("gae", "policy-gradient weight Φ_t: total_return | reward_to_go | value_baseline | gae")
    batch_size: int = arg(4000, "environment steps per policy update, over all envs (Spinning Up: 4000)")
    pi_lr: float = arg(3e-4, "Adam step size of the policy (Spinning Up)")
    vf_lr: float = arg(1e-3, "Adam step size of the value function (Spinning Up)")
    train_v_iters: int = arg(80, "full-batch value regression steps per iteration (Spinning Up)")
    gamma: float = arg(0.99, "discount γ")
    gae_lambda: float = arg(0.97, "GAE parameter λ (Spinning Up: 0.97)")
    norm_obs: bool = arg(False, "normalise observations by a running mean/std, then clip (off in Spinning Up)")
    obs_clip: float = arg(10.0, "clip normalised observations to ±this")
    norm_adv: bool = arg(False, "standardise Φ over the batch (off: it would act as a baseline for total_return)")
    init: str = arg("orthogonal", "weight init: orthogonal (gain √2 hidden, 0.01 policy head, 1 value head) | "
                                  "normc (rows of unit L2 norm, 0.01 policy head, zero biases)")
    bootstrap_truncation: bool = arg(True, "bootstrap V(final obs) at time-limit truncations (docs/DESIGN.md §5)")


def validate(a: Args):
    """Every flag, before any compute: a UsageError naming the flag. Changes nothing."""
    rc.check_flags(a, positive=("pi_lr", "vf_lr", "obs_clip", "batch_size", "train_v_iters"),
                   unit_interval=("gamma", "gae_lambda"), choices={"weight": WEIGHTS, "init": ("orthogonal", "normc")})
    rc.check_run(a, ALGO, a.batch_size, "batch_size")


# ---------------------------------------------------------------- observation normalisation (baselines' VecNormalize)
class RunningMeanStd:
    """Running mean and population variance of a stream, Welford's update one sample at a time."""

    def __init__(self, shape=()):
        self.mean, self.var, self.count = np.zeros(shape) if shape else 0.0, np.ones(shape) if shape else 1.0, 1e-4

    def update(self, x):
        self.count += 1
        delta = x - self.mean
        self.mean = self.mean + delta / self.count
        self.var = self.var + (delta * (x - self.mean) - self.var) / self.count


class ObsNormaliser:
    """--norm-obs, per step: (x − μ) / sqrt(σ² + 1e-8) clipped to ±--obs-clip, μ and σ² running statistics
    that take in every observation the rollout sees before it is used (baselines' VecNormalize)."""

    def __init__(self, dim, clip, enabled):
        self.rms, self.clip, self.enabled = RunningMeanStd(dim), clip, enabled

    def __call__(self, x):  # one encoded observation, as the rollout sees it
        if not self.enabled:
            return x
        self.rms.update(x)
        z = (x - self.rms.mean) / np.sqrt(self.rms.var + 1e-8)
        return np.minimum(np.maximum(z, -self.clip), self.clip)  # np.clip, without its wrapper's cost


# ---------------------------------------------------------------- networks
class MLP(nn.Sequential):
    """64×64 tanh MLP. --init orthogonal: orthogonal weights with gains (√2, √2, out_gain) (baselines ppo2);
    normc: standard-normal rows (a unit's incoming weights) scaled to L2 norms (1, 1, out_gain) (ppo1,
    baselines common/tf_util.py @ da99706). out_gain: 0.01 for a policy head, 1 for V. Biases start at 0."""

    def __init__(self, n_in, n_out, out_gain, init, hidden=64):
        super().__init__(nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, n_out))
        self.weights = tuple((self[i].weight, self[i].bias) for i in (0, 2, 4))  # the Parameter objects themselves
        gains = (math.sqrt(2), math.sqrt(2), out_gain) if init == "orthogonal" else (1.0, 1.0, out_gain)
        with torch.no_grad():
            for (weight, bias), gain in zip(self.weights, gains):
                if init == "orthogonal":
                    nn.init.orthogonal_(weight, gain)
                else:
                    weight.normal_().mul_(gain / weight.norm(dim=1, keepdim=True))
                bias.zero_()

    def forward(self, x):  # the functions called directly: nn.Module's per-layer call costs more than a 64×64 tanh
        (w1, b1), (w2, b2), (w3, b3) = self.weights
        return F.linear(torch.tanh(F.linear(torch.tanh(F.linear(x, w1, b1)), w2, b2)), w3, b3)


class GaussianPolicy(nn.Module):
    """π(a|s) = N(μ_θ(s), diag(σ²)), log σ a state-independent parameter initialised to 0."""

    def __init__(self, obs_dim, act_dim, init, hidden=64):
        super().__init__()
        self.mean = MLP(obs_dim, act_dim, 0.01, init, hidden)
        self.log_std = nn.Parameter(torch.zeros(act_dim))

    def forward(self, obs):
        mean = self.mean(obs)
        return mean, self.log_std.expand_as(mean)

    @staticmethod
    def log_prob(dist, action):
        mean, log_std = dist
        return (-0.5 * ((action - mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)

    @staticmethod
    def entropy(dist):
        return (dist[1] + 0.5 * math.log(2 * math.pi * math.e)).sum(-1)

    @staticmethod
    def kl(old, new):
        """KL[N(μ0, σ0²) ‖ N(μ1, σ1²)] per state, summed over independent action dimensions."""
        (mu0, ls0), (mu1, ls1) = old, new
        return (ls1 - ls0 + ((ls0.exp() ** 2 + (mu0 - mu1) ** 2) / (2 * (ls1.exp() ** 2))) - 0.5).sum(-1)

    def actor(self):
        """Lean acting path (no autograd, no tensors): a ~ N(μ(s), σ²) with numpy views of the weights."""
        mean, std = rc.numpy_mlp(self.mean.weights), self.log_std.detach().exp().numpy()
        return lambda obs, rng: (mean(obs) + std * rng.standard_normal((len(obs), len(std)))).astype(np.float32)


class CategoricalPolicy(nn.Module):
    """π(a|s) = softmax(logits_θ(s))."""

    def __init__(self, obs_dim, n_actions, init, hidden=64):
        super().__init__()
        self.logits = MLP(obs_dim, n_actions, 0.01, init, hidden)

    def forward(self, obs):
        return (torch.log_softmax(self.logits(obs), -1),)

    @staticmethod
    def log_prob(dist, action):
        return dist[0].gather(-1, action.long().unsqueeze(-1)).squeeze(-1)

    @staticmethod
    def entropy(dist):
        return -(dist[0].exp() * dist[0]).sum(-1)

    @staticmethod
    def kl(old, new):
        return (old[0].exp() * (old[0] - new[0])).sum(-1)

    def actor(self):
        """Lean acting path: inverse-CDF sampling of softmax(logits) with one uniform draw per state."""
        logits = rc.numpy_mlp(self.logits.weights)

        def act(obs, rng):
            z = logits(obs)
            cdf = np.cumsum(np.exp(z - z.max(-1, keepdims=True)), -1)
            u = rng.random((len(obs), 1)) * cdf[:, -1:]
            return np.minimum((cdf < u).sum(-1), cdf.shape[1] - 1).astype(np.float32)
        return act


# ---------------------------------------------------------------- advantage estimator
def gae(rewards, values, next_values, terminated, episode_end, gamma, lam):
    """GAE(λ) (Schulman et al. 2016, eq. 16) over a (T, N) batch, recursing backwards in time:

        δ_t = r_t + γ (1 − terminated_t) V(s_{t+1}) − V(s_t)
        A_t = δ_t + γ λ (1 − end_t) A_{t+1}

    next_values[t] is V of the real successor of step t (the final observation if the episode ended
    there). end_t cuts the recursion at every episode boundary (docs/DESIGN.md §5).
    Returns (advantages, value targets = advantages + values)."""
    deltas = rewards + gamma * (1.0 - terminated) * next_values - values   # all t at once
    decay = gamma * lam * (1.0 - episode_end)                                # γλ(1 − end_t)
    advantages = np.zeros_like(rewards)
    next_advantage = np.zeros_like(rewards[0])
    for t in reversed(range(len(rewards))):  # only the recursion is sequential
        next_advantage = advantages[t] = deltas[t] + decay[t] * next_advantage
    return advantages, advantages + values


# ---------------------------------------------------------------- the four weights (the only part that differs)
def pg_weights(weight, rewards, values, next_values, terminated, episode_end, gamma, lam):
    """Φ_t over a (T, N) batch (module docstring). Reuses gae(): with V ≡ 0 and λ = 1 it is the
    discounted reward-to-go; with V and λ = 1 it is the bootstrapped reward-to-go minus V(s_t)."""
    if weight in ("total_return", "reward_to_go"):
        zeros = np.zeros_like(rewards)
        to_go, _ = gae(rewards, zeros, zeros, terminated, episode_end, gamma, 1.0)
        if weight == "reward_to_go":
            return to_go
        # R(τ): every step of an episode gets the return from the episode's first step in the batch
        total = to_go.copy()
        for t in range(1, len(rewards)):
            continues = episode_end[t - 1] == 0
            total[t][continues] = total[t - 1][continues]
        return total
    return gae(rewards, values, next_values, terminated, episode_end, gamma, 1.0 if weight == "value_baseline" else lam)[0]


# ---------------------------------------------------------------- training
def train(args: Args, quiet=False, on_batch=None):
    """Train VPG as configured; returns the run directory. Raises UsageError on bad input.
    on_batch(dict of the iteration's (T, N) arrays), if given, sees each batch (tests use it)."""
    validate(args)
    with rc.Run(ALGO, __file__, args, quiet) as run:  # owns --out from here on, before any compute
        env_seeds, act_rng, _ = rc.seed_streams(args.seed, args.threads)  # docs/DESIGN.md §4
        obs_space, act_space = rc.env_spaces(args.env_id, ALGO)
        obs_dim, Policy = rc.flat_dim(obs_space), CategoricalPolicy if isinstance(act_space, gym.spaces.Discrete) else GaussianPolicy
        policy, value_fn = Policy(obs_dim, rc.flat_dim(act_space), args.init), MLP(obs_dim, 1, 1.0, args.init)
        uses_value = args.weight in ("value_baseline", "gae")
        pi_opt = torch.optim.Adam(policy.parameters(), lr=args.pi_lr, fused=True)
        v_opt = torch.optim.Adam(value_fn.parameters(), lr=args.vf_lr, fused=True)
        T, N = args.batch_size // args.num_envs, args.num_envs
        r = rc.Rollout(run.make_envs(args.env_id, N), env_seeds, T, ObsNormaliser(obs_dim, args.obs_clip, args.norm_obs))
        for iteration in range(1, run.iterations(T * N) + 1):
            episodes, rollout_s = r.collect(policy.actor(), act_rng)
            t0 = time.time()

            # ---- weights Φ_t, with V evaluated in one batch over the rollout
            b_obs, b_act = torch.from_numpy(r.train_obs).flatten(0, 1), torch.from_numpy(r.actions).flatten(0, 1)  # (T·N, ·)
            with torch.no_grad():
                values = value_fn(b_obs).squeeze(-1).numpy().reshape(T, N)
                next_values = value_fn(torch.from_numpy(r.next_obs)).squeeze(-1).numpy()
            # V(s_{t+1}) counts 0 after a termination, and after a time limit with --no-bootstrap-truncation (§5)
            terminated = r.terminated if args.bootstrap_truncation else r.ends
            weights = pg_weights(args.weight, r.rewards, values, next_values, terminated, r.ends, args.gamma, args.gae_lambda)
            # value targets: rewards-to-go bootstrapped with V at truncations and at the batch end
            returns = gae(r.rewards, values, next_values, terminated, r.ends, args.gamma, 1.0)[1]
            if on_batch:
                on_batch(dict(obs=r.obs, next_obs=r.next_obs, actions=r.actions, rewards=r.rewards, terminated=terminated,
                              ends=r.ends, values=values, next_values=next_values, weights=weights, returns=returns))
            b_phi, b_ret = torch.from_numpy(weights.reshape(-1)), torch.from_numpy(returns.reshape(-1))
            if args.norm_adv:
                b_phi = (b_phi - b_phi.mean()) / (b_phi.std() + 1e-8)
            explained_var = 1 - np.var(returns - values) / np.var(returns) if uses_value and np.var(returns) > 0 else float("nan")

            # ---- one policy-gradient step: ĝ = mean_t Φ_t ∇ log π_θ(a_t|s_t)
            dist = policy(b_obs)
            old_dist = tuple(x.detach().clone() for x in dist)
            pi_loss = -(policy.log_prob(dist, b_act) * b_phi).mean()
            pi_opt.zero_grad()
            pi_loss.backward()
            grad_norm = torch.cat([p.grad.flatten() for p in policy.parameters()]).norm().item()
            pi_opt.step()

            # ---- value regression on the rewards-to-go (only the weights that use V)
            v_losses = []
            for _ in range(args.train_v_iters if uses_value else 0):
                v_loss = ((value_fn(b_obs).squeeze(-1) - b_ret) ** 2).mean()
                v_opt.zero_grad()
                v_loss.backward()
                v_opt.step()
                v_losses.append(v_loss.detach())
            with torch.no_grad():
                approx_kl = policy.kl(old_dist, policy(b_obs)).mean().item()
                entropy = policy.entropy(old_dist).mean().item()
            value_loss = torch.stack(v_losses).mean().item() if v_losses else float("nan")
            update_s = time.time() - t0

            rc.check_finite(iteration, policy_loss=pi_loss.item(), value_loss=value_loss if uses_value else 0.0,
                            approx_kl=approx_kl, policy=policy, value_function=value_fn)
            run.log(iteration, r.global_step, episodes, rollout_s, update_s, policy_loss=pi_loss.item(),
                    value_loss=value_loss, entropy=entropy, approx_kl=approx_kl, update_steps=1,
                    explained_variance=float(explained_var), learning_rate=args.pi_lr, grad_norm=grad_norm)
        run.publish()
    return run.out


def main(argv=None):
    rc.main(train, validate, Args, argv, __doc__.split("\n\n")[0])


if __name__ == "__main__":
    main()
