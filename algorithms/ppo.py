"""Proximal Policy Optimization, one readable file.

Schulman, Wolski, Dhariwal, Radford, Klimov (2017), "Proximal Policy Optimization
Algorithms", arXiv:1707.06347. Every surrogate objective of its Table 1 (--objective):

  none         L^CPI(θ)  = E_t[ r_t(θ) A_t ]                                  (§3, eq. 6)
  clip         L^CLIP(θ) = E_t[ min(r_t A_t, clip(r_t, 1-ε, 1+ε) A_t) ]      (§3, eq. 7)
  kl_fixed     L^KLPEN   = E_t[ r_t A_t - β KL[π_old(·|s_t), π_θ(·|s_t)] ]   (§4, eq. 8)
  kl_adaptive  the same with β adapted once per iteration (§4): after the update, with
               d = mean KL, β ← β/2 if d < d_targ/1.5 and β ← 2β if d > 1.5·d_targ;
               β starts at --beta (the paper uses 1).

where r_t(θ) = π_θ(a_t|s_t) / π_old(a_t|s_t) and A_t is GAE(λ) (Schulman et al. 2016, eq. 16).

KL early stopping (--target-kl, any objective; Spinning Up's rule, Achiam 2018): before each
policy minibatch step, if the mean KL[π_old ‖ π_θ] on that minibatch exceeds 1.5 × target-kl,
the policy takes no more steps this iteration; V keeps training. The KL is in closed form
(Spinning Up uses the sample estimate mean(log π_old − log π_θ), whose expectation this is).

Defaults are the paper's MuJoCo settings (Table 3: horizon 2048, Adam 3e-4, 10 epochs,
minibatch 64, γ 0.99, λ 0.95; §6.1: 64×64 tanh MLPs, separate policy and value networks,
no entropy bonus). The paper does not say which code-level details its runs used (Engstrom
et al. 2020 §3 show they matter as much as the objective), so they are flags, set together
by --regime (REGIMES below lists every line that differs; an explicit flag overrides it): ppo2,
baselines ppo2 as CleanRL runs it (today's practice, the default), or ppo1, baselines `pposgd`, the
code closest to the paper's (it had only L^CLIP; here every objective runs under it).

Separate networks get separate Adam optimisers and gradient clipping, so the value-loss coefficient
c1 is irrelevant (§6.1); ppo1's single Adam over both is the same elementwise update. The networks,
the per-step observation normaliser and GAE are written as in vpg.py and trpo.py (tests keep them so).

Run: python algorithms/ppo.py --env-id Hopper-v5 --seed 1 --out runs/ppo/Hopper-v5/seed1
Writes progress.csv, episodes.csv and run.json into --out (run_contract.py; README, "Reading a run").
"""
import run_contract as rc  # first: a Ctrl-C during the slow imports below then exits quietly
from run_contract import NonFiniteError, UsageError, arg  # noqa: F401 (callers catch the errors from here)

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ALGO = rc.algo_name(__file__)  # "ppo": a copy of this file under another name names its runs after itself
SEEDS_AT_ONCE = True  # train() takes several seeds' Args and trains them in one process (vpg.py, trpo.py: in turn)
OBJECTIVES = ("clip", "kl_adaptive", "kl_fixed", "none")

# ---------------------------------------------------------------- the two code-level regimes
# Every line that differs between them. An explicit flag always wins over its regime's value.
# ppo2: openai/baselines ppo2 (2dd7d30, 2017-11-16; LR annealing from 8c2aea2, 2018-08-13), as CleanRL runs it.
# ppo1: baselines `pposgd` at da99706 (2017-07-20), the code closest to the paper's (Huang et al. 2022), with the
#       value-loss clipping its author removed as a bug in d9f194f (2017-08-27: "severely degrading performance on
#       mujoco"). File:line are at da99706.
REGIME_NAMES = ("ppo2", "ppo1")
REGIMES = {                 # ppo2          ppo1            where ppo1 does it (shown in --help)
    "anneal_lr":            (True,          False,          "run_mujoco.py passes no schedule: constant 3e-4"),
    "adam_eps":             (1e-5,          1e-8,           "common/mpi_adam.py:7, MpiAdam's default"),
    "obs_stats":            ("per_step",    "per_batch",    "common/mpi_running_mean_std.py, pposgd_simple.py:176"),
    "obs_clip":             (10.0,          5.0,            "pposgd/mlp_policy.py:25"),
    "scale_rewards":        (True,          False,          "run_mujoco.py wraps the env in bench.Monitor only"),
    "adv_norm":             ("minibatch",   "batch",        "pposgd_simple.py:172"),
    "clip_vloss":           (True,          False,          "d9f194f: vf_loss = mean(square(vpred - ret))"),
    "max_grad_norm":        (0.5,           0.0,            "pposgd_simple.py:124, flatgrad without clip_norm"),
    "init":                 ("orthogonal",  "normc",        "pposgd/mlp_policy.py:28-35, common/tf_util.py:324"),
    "bootstrap_truncation": (True,          False,          "pposgd_simple.py:75, nonterminal = 1 - new[t+1]"),
}
CHOICES = {"objective": OBJECTIVES, "regime": REGIME_NAMES, "obs_stats": ("per_step", "per_batch"),
           "adv_norm": ("minibatch", "batch", "none"), "init": ("orthogonal", "normc")}


def regime_arg(name, help):  # a flag whose default is its --regime's column of REGIMES (None until resolve())
    ppo2, ppo1, where = REGIMES[name]
    return arg(None, f"{help} (default: ppo2 {ppo2}, ppo1 {ppo1}; ppo1: baselines @ da99706, {where})")


@dataclass
class Args(rc.RunArgs):
    objective: str = arg("clip", "surrogate objective: clip | kl_adaptive | kl_fixed | none")
    clip_eps: float = arg(0.2, "clipping parameter ε of L^CLIP (Table 1: 0.1, 0.2, 0.3)")
    beta: float = arg(1.0, "KL penalty coefficient β (kl_fixed) or its initial value (kl_adaptive)")
    d_targ: float = arg(0.01, "target KL d_targ of the adaptive penalty (Table 1: .003, .01, .03)")
    target_kl: float = arg(None, "KL early stopping: stop policy steps when KL > 1.5 × this (off by default)")
    num_steps: int = arg(2048, "horizon T: steps per environment per iteration (Table 3)")
    learning_rate: float = arg(3e-4, "Adam step size (Table 3)")
    update_epochs: int = arg(10, "epochs over each batch (Table 3)")
    minibatch_size: int = arg(64, "minibatch size (Table 3)")
    gamma: float = arg(0.99, "discount γ (Table 3)")
    gae_lambda: float = arg(0.95, "GAE parameter λ (Table 3)")
    norm_obs: bool = arg(True, "normalise observations by running statistics (--obs-stats), then clip")
    reward_clip: float = arg(10.0, "clip scaled rewards to ±this (with --scale-rewards)")
    regime: str = arg("ppo2", "code-level regime that sets the defaults of the flags below: ppo2 | ppo1 (REGIMES)")
    anneal_lr: bool = regime_arg("anneal_lr", "anneal the learning rate linearly to 0")
    adam_eps: float = regime_arg("adam_eps", "Adam ε")
    obs_stats: str = regime_arg("obs_stats", "observation statistics: per_step (every step) | per_batch (ppo1)")
    obs_clip: float = regime_arg("obs_clip", "clip normalised observations to ±this")
    scale_rewards: bool = regime_arg("scale_rewards", "divide rewards by the running std of the discounted return")
    adv_norm: str = regime_arg("adv_norm", "advantage normalisation: minibatch | batch (once per iteration) | none")
    clip_vloss: bool = regime_arg("clip_vloss", "clip the value loss around the old values (ε = --clip-eps); else plain MSE")
    max_grad_norm: float = regime_arg("max_grad_norm", "clip each network's gradient norm to this (0: no clipping)")
    init: str = regime_arg("init", "weight init: orthogonal | normc (the MLP class below)")
    bootstrap_truncation: bool = regime_arg("bootstrap_truncation", "bootstrap V(final obs) at time limits (§5)")


def resolve(a: Args) -> Args:
    """A copy of a with each regime flag left unset (None) taken from --regime's column of REGIMES."""
    rc.need(a.regime in REGIME_NAMES, "regime", f"must be one of {', '.join(REGIME_NAMES)}, got {a.regime!r}")
    column = REGIME_NAMES.index(a.regime)
    return dataclasses.replace(a, **{name: values[column] for name, values in REGIMES.items() if getattr(a, name) is None})


def validate(a: Args):
    """Every flag, before any compute: a UsageError naming the flag. Changes nothing."""
    a = resolve(a)
    rc.check_flags(a, positive=("clip_eps", "beta", "d_targ", "learning_rate", "adam_eps", "obs_clip", "reward_clip",
                                "num_steps", "minibatch_size", "update_epochs"),
                   unit_interval=("gamma", "gae_lambda"), choices=CHOICES)
    rc.need(a.target_kl is None or (math.isfinite(a.target_kl) and a.target_kl > 0), "target_kl",
            f"must be positive, got {a.target_kl}")
    rc.need(math.isfinite(a.max_grad_norm) and a.max_grad_norm >= 0, "max_grad_norm", f"must be >= 0, got {a.max_grad_norm}")
    batch = a.num_steps * a.num_envs
    rc.need(a.minibatch_size <= batch, "minibatch_size", f"{a.minibatch_size} exceeds the batch (num-steps × num-envs = {batch})")
    rc.check_run(a, ALGO, batch, "num_steps")


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


# ---------------------------------------------------------------- ppo's own normalisers: rewards, and ppo1's observation filter
class RewardScaler:
    """--scale-rewards: r_t divided by the running std of the discounted return R_t = γR_{t-1} + r_t (reset when
    an episode ends), then clipped to ±--reward-clip (baselines' VecNormalize; Engstrom et al. 2020 §3)."""

    def __init__(self, num_envs, gamma, clip, enabled):
        self.rms, self.returns, self.gamma, self.clip, self.enabled = RunningMeanStd(), [0.0] * num_envs, gamma, clip, enabled

    def __call__(self, r, i, done):  # reward r of environment i
        if not self.enabled:
            return r
        self.returns[i] = self.returns[i] * self.gamma + r
        self.rms.update(self.returns[i])
        if done:
            self.returns[i] = 0.0
        return min(max(r / math.sqrt(self.rms.var + 1e-8), -self.clip), self.clip)


class BatchObsNormaliser:
    """ppo1's observation filter (baselines common/mpi_running_mean_std.py @ da99706): sums over every
    observation so far, updated once per iteration with the whole batch. It starts at sum 0, sum of
    squares 1e-2 and count 1e-2 (mean 0, std 1), and floors the variance at 1e-2, so std ≥ 0.1."""

    def __init__(self, dim, clip):
        self.sum, self.sumsq, self.count, self.clip = np.zeros(dim), np.full(dim, 1e-2), 1e-2, clip

    def __call__(self, x):  # frozen during the rollout (ppo1 normalises inside the policy's graph)
        mean = self.sum / self.count
        std = np.sqrt(np.maximum(self.sumsq / self.count - np.square(mean), 1e-2))
        return np.minimum(np.maximum((x - mean) / std, -self.clip), self.clip)

    def rollout_start(self, raw_obs, obs):  # the policy sees the filter as last updated
        return self(raw_obs)

    def batch(self, raw_obs, obs):  # update with the whole batch, then the epochs train on it re-normalised
        batch = raw_obs.reshape(-1, raw_obs.shape[-1])
        self.sum, self.sumsq, self.count = self.sum + batch.sum(0), self.sumsq + np.square(batch).sum(0), self.count + len(batch)
        return self(raw_obs).astype(np.float32)


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


# ---------------------------------------------------------------- the objectives (the only part that differs)
def policy_loss(objective, ratio, advantages, kl, clip_eps, beta):
    """Negated surrogate of the chosen objective (we minimise), the mean over the minibatch (the last axis);
    see the module docstring."""
    if objective == "clip":
        return -torch.min(ratio * advantages, ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantages).mean(-1)
    if objective in ("kl_fixed", "kl_adaptive"):
        return -(ratio * advantages - beta * kl).mean(-1)
    return -(ratio * advantages).mean(-1)


def normalise_minibatches(advantages, size):
    """(A − mean) / (std + 1e-8) within each consecutive chunk of `size` advantages along the last axis (the
    minibatches of one epoch), the full chunks in one batched operation. A chunk of one is left as it is."""
    full = advantages.shape[-1] // size * size
    chunks = [advantages[..., :full].unflatten(-1, (-1, size)), advantages[..., full:].unsqueeze(-2)]
    return torch.cat([((c - c.mean(-1, keepdim=True)) / (c.std(-1, keepdim=True) + 1e-8)).flatten(-2)
                      if c.shape[-1] > 1 else c.flatten(-2) for c in chunks if c.numel()], -1)


def adapt_beta(beta, kl, d_targ):
    """PPO paper §4: halve β when d < d_targ/1.5, double it when d > 1.5·d_targ."""
    if kl < d_targ / 1.5:
        return beta / 2
    if kl > d_targ * 1.5:
        return beta * 2
    return beta


# ---------------------------------------------------------------- training
def train(args, quiet=False, on_batch=None):
    """Train PPO as configured; returns the run directory. args: one Args, or a list of Args that differ only
    in --seed and --out, trained at once (a list of run directories back): each seed has its own environments,
    random streams and run, and the numbers of one seed trained alone. Raises UsageError on bad input.
    on_batch(dict of the iteration's (T, N) arrays), if given, sees each seed's batch (tests use it)."""
    several, seeds = isinstance(args, list), [resolve(a) for a in (args if isinstance(args, list) else [args])]
    rc.check_seeds(seeds, validate)
    args, K = seeds[0], len(seeds)
    with contextlib.ExitStack() as stack:  # owns every --out from here on, before any compute
        runs = [stack.enter_context(rc.Run(ALGO, __file__, a, quiet or k > 0, [s.seed for s in seeds]))
                for k, a in enumerate(seeds)]
        obs_space, act_space = rc.env_spaces(args.env_id, ALGO)
        obs_dim, Policy = rc.flat_dim(obs_space), CategoricalPolicy if isinstance(act_space, gym.spaces.Discrete) else GaussianPolicy
        T, N, batch_size = args.num_steps, args.num_envs, args.num_steps * args.num_envs
        policies, value_fns, rollouts, act_rngs, shuffle_rngs = [], [], [], [], []
        for run, a in zip(runs, seeds):  # each seed: its streams (docs/DESIGN.md §4), networks and environments
            env_seeds, act_rng, shuffle_rng = rc.seed_streams(a.seed, a.threads)
            policies.append(Policy(obs_dim, rc.flat_dim(act_space), a.init))
            value_fns.append(MLP(obs_dim, 1, 1.0, a.init))
            normalise_obs = (BatchObsNormaliser(obs_dim, a.obs_clip) if a.norm_obs and a.obs_stats == "per_batch"
                             else ObsNormaliser(obs_dim, a.obs_clip, a.norm_obs))
            rollouts.append(rc.Rollout(run.make_envs(a.env_id, N), env_seeds, T, normalise_obs,
                                       RewardScaler(N, a.gamma, a.reward_clip, a.scale_rewards)))
            act_rngs.append(act_rng)
            shuffle_rngs.append(shuffle_rng)
        # the update computes every seed at once: tensors (K, ...), seed first; each seed's numbers its own
        (policy, pi_params), (value_fn, v_params) = rc.seeds_as_one(policies), rc.seeds_as_one(value_fns)
        pi_opt, v_opt = rc.Adam(pi_params, args.learning_rate, args.adam_eps), rc.Adam(v_params, args.learning_rate, args.adam_eps)
        betas, num_iterations = [args.beta] * K, [run.iterations(batch_size) for run in runs][0]
        seed_axis = torch.arange(K).unsqueeze(1)
        for iteration in range(1, num_iterations + 1):
            lr = args.learning_rate * (1 - (iteration - 1) / num_iterations) if args.anneal_lr else args.learning_rate
            pi_opt.lr = v_opt.lr = lr
            collected = [r.collect(p.actor(), rng) if not run.failed else ([], 0.0)  # (episodes, seconds)
                         for r, p, rng, run in zip(rollouts, policies, act_rngs, runs)]
            t0 = time.time()
            stacked = lambda name: np.stack([getattr(r, name) for r in rollouts])  # (K, T, N, ·)

            # ---- values and advantages, batched over the whole rollout (V as the rollout saw it)
            with torch.no_grad():
                values, next_values = (value_fn(torch.from_numpy(stacked(name).reshape(K, batch_size, obs_dim))).squeeze(-1)
                                       .numpy().reshape(K, T, N) for name in ("obs", "next_obs"))
            # V(s_{t+1}) counts 0 after a termination, and after a time limit with --no-bootstrap-truncation (§5)
            terminated, ends = stacked("terminated" if args.bootstrap_truncation else "ends"), stacked("ends")
            time_major = (np.moveaxis(x, 0, 1) for x in (stacked("rewards"), values, next_values, terminated, ends))
            advantages, returns = (np.ascontiguousarray(np.moveaxis(x, 1, 0)) for x in
                                   gae(*time_major, args.gamma, args.gae_lambda))  # GAE over (T, K, N): all seeds at once
            b_obs, b_act = torch.from_numpy(stacked("train_obs")).flatten(1, 2), torch.from_numpy(stacked("actions")).flatten(1, 2)
            with torch.no_grad():  # frozen π_old, on the observations the epochs use (ppo1: ratio 1 at the start)
                old_dist = tuple(x.clone() for x in policy(b_obs))  # clone: log σ is a view
                old_logp = policy.log_prob(old_dist, b_act)
            b_adv, b_ret = torch.from_numpy(advantages.reshape(K, -1)), torch.from_numpy(returns.reshape(K, -1))
            if args.adv_norm == "batch":  # ppo1: once per iteration over the whole batch (population std)
                b_adv = (b_adv - b_adv.mean(-1, keepdim=True)) / (b_adv.std(-1, correction=0, keepdim=True) + 1e-8)
            for k, r in enumerate(rollouts if on_batch else []):
                on_batch(dict(obs=r.obs, next_obs=r.next_obs, actions=r.actions, rewards=r.rewards, terminated=terminated[k],
                              ends=r.ends, values=values[k], next_values=next_values[k], advantages=advantages[k],
                              raw_obs=r.raw_obs, update_obs=r.train_obs, policy_advantages=b_adv[k].numpy().reshape(T, N)))
            b_val = torch.from_numpy(values.reshape(K, -1))
            explained_var = [1 - np.var(ret - val) / np.var(ret) if np.var(ret) > 0 else float("nan")
                             for ret, val in zip(returns, values)]

            # ---- update: epochs of shuffled minibatches
            stats = {"policy_loss": [], "value_loss": [], "grad_norm": []}  # per minibatch, (K,) each
            stepped = []  # (seeds that stepped, ratio, π_θ before the step) of every policy minibatch
            active, max_norm = [True] * K, args.max_grad_norm or float("inf")  # active: the seeds still taking policy steps
            needs_kl = args.objective.startswith("kl_") or args.target_kl is not None  # per-state KL[π_old ‖ π_θ]
            beta = torch.tensor(betas, dtype=torch.float32).unsqueeze(-1)  # each seed's β
            per_state = (b_obs, b_act, old_logp, b_ret, b_val) + old_dist
            for epoch in range(args.update_epochs):
                # shuffle once per epoch, each seed its own order; the minibatches are then views of the shuffled tensors
                perm = torch.from_numpy(np.stack([rng.permutation(batch_size) for rng in shuffle_rngs]))
                adv_epoch = b_adv[seed_axis, perm]
                if args.adv_norm == "minibatch":  # per minibatch, as in baselines ppo2
                    adv_epoch = normalise_minibatches(adv_epoch, args.minibatch_size)
                shuffled = [x.split(args.minibatch_size, 1) for x in (adv_epoch,) + tuple(x[seed_axis, perm] for x in per_state)]
                for adv, obs_mb, act_mb, old_logp_mb, ret, old_v, *old_dist_mb in zip(*shuffled):
                    # value regression, clipped around the old values as in baselines ppo2 (--clip-vloss)
                    v = value_fn(obs_mb).squeeze(-1)
                    v_loss = (v - ret) ** 2
                    if args.clip_vloss:
                        v_clipped = old_v + (v - old_v).clamp(-args.clip_eps, args.clip_eps)
                        v_loss = torch.max(v_loss, (v_clipped - ret) ** 2)
                    loss = v_loss = 0.5 * v_loss.mean(-1)
                    if any(active):
                        dist = policy(obs_mb)
                        kl = policy.kl(tuple(old_dist_mb), dist) if needs_kl else None
                        if args.target_kl is not None:  # Spinning Up's early stopping: KL > 1.5 × target, before each step
                            active = [a and d <= 1.5 * args.target_kl for a, d in zip(active, kl.mean(-1).tolist())]
                    if any(active):
                        ratio = (policy.log_prob(dist, act_mb) - old_logp_mb).exp()
                        pi_loss = policy_loss(args.objective, ratio, adv, kl, args.clip_eps, beta)
                        loss = pi_loss + v_loss  # disjoint networks: one backward gives both gradients
                    pi_params.grad.zero_()
                    v_params.grad.zero_()
                    loss.sum().backward()  # the sum over seeds: each seed's gradient is its own loss's
                    rc.clip_grad_norm(v_params, max_norm)
                    v_opt.step()
                    stats["value_loss"].append(v_loss.detach())
                    if any(active):
                        stats["grad_norm"].append(rc.clip_grad_norm(pi_params, max_norm))
                        pi_opt.step(active)  # a seed that has stopped takes no step, not even a zero one
                        stats["policy_loss"].append(pi_loss.detach())
                        stepped.append((active, ratio.detach()) + tuple(x.detach() for x in dist))

            with torch.no_grad():
                approx_kl = policy.kl(old_dist, policy(b_obs)).mean(-1).tolist()
            betas_used = betas
            betas = [adapt_beta(b, d, args.d_targ) for b, d in zip(betas, approx_kl)] if args.objective == "kl_adaptive" else betas
            update_s = (time.time() - t0) / K  # each seed's share of the update

            # ---- log, seed by seed
            masks = torch.tensor([s[0] for s in stepped]).view(-1, K)  # (policy minibatches, K): which seeds stepped
            per_step = [torch.stack(parts) for parts in zip(*(s[1:] for s in stepped))]  # (policy minibatches, K, ...)
            for k, run in [(k, run) for k, run in enumerate(runs) if not run.failed]:
                took = masks[:, k]  # the seed's own minibatches, in order
                mean = {name: torch.stack(v, 1)[k][took if name != "value_loss" else slice(None)].mean().item()
                        if v and (name == "value_loss" or took.any()) else float("nan") for name, v in stats.items()}
                mean["entropy"] = mean["clip_frac"] = float("nan")
                if took.any():  # over all states of the seed's policy minibatches (equal sizes: the mean of their means)
                    ratio, *dist = (x[took, k].flatten(0, 1) for x in per_step)
                    mean["entropy"] = policy.entropy(tuple(dist)).mean().item()
                    mean["clip_frac"] = ((ratio - 1).abs() > args.clip_eps).float().mean().item()
                try:  # a seed with a NaN stops, unpublished; the others go on (their numbers are theirs alone)
                    rc.check_finite(iteration, policy_loss=mean["policy_loss"] if took.any() else 0.0, value_loss=mean["value_loss"],
                                    approx_kl=approx_kl[k], policy=policies[k], value_function=value_fns[k])
                except NonFiniteError as error:
                    run.fail(error)
                    continue
                (episodes, rollout_s), r = collected[k], rollouts[k]
                run.log(iteration, r.global_step, episodes, rollout_s, update_s, **mean, approx_kl=approx_kl[k],
                        kl_beta=betas_used[k] if args.objective.startswith("kl_") else float("nan"),
                        update_steps=int(took.sum()), early_stopped=int(not active[k]),
                        explained_variance=float(explained_var[k]), learning_rate=lr)
            if all(run.failed for run in runs):
                break
        rc.publish_all(runs)
    return [run.out for run in runs] if several else runs[0].out


def main(argv=None):
    rc.main(train, validate, Args, argv, __doc__.split("\n\n")[0], seeds_at_once=SEEDS_AT_ONCE)


if __name__ == "__main__":
    main()
