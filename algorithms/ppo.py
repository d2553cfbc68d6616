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
the policy takes no more steps this iteration; the value function keeps training. The KL is
computed in closed form for the diagonal Gaussian / categorical policy (Spinning Up uses
the sample estimate mean(log π_old − log π_θ), whose expectation this is). progress.csv
logs the number of policy steps taken (update_steps) and whether it stopped (early_stopped).

Defaults are the paper's MuJoCo settings (Table 3: horizon 2048, Adam 3e-4, 10 epochs,
minibatch 64, γ 0.99, λ 0.95; §6.1: 64×64 tanh MLPs, separate policy and value networks,
no entropy bonus). The paper does not say which code-level details its runs used (Engstrom
et al. 2020 §3 show they matter as much as the objective), so they are flags, set together
by --regime (REGIMES below lists every line that differs; an explicit flag overrides it):

  ppo2  openai/baselines ppo2 as CleanRL runs it, today's practice (default): observation
        normalisation per step (clip ±10), reward scaling, per-minibatch advantage
        normalisation, value clipping, gradient clipping 0.5, LR annealed to 0, Adam ε 1e-5,
        orthogonal init, time limits bootstrapped.
  ppo1  the first public PPO, baselines `pposgd` (da99706, 2017-07-20), the code closest to
        the paper's: observation statistics updated once per iteration (std ≥ 0.1, clip ±5),
        raw rewards, advantages normalised over the whole batch, plain MSE value loss, no
        gradient clipping, constant LR, Adam ε 1e-8, normc init, time limits terminal.
        pposgd had only L^CLIP; here every objective runs under it.

With separate networks we use separate Adam optimisers and clip each network's gradient norm
on its own, so the value-loss coefficient c1 is irrelevant (§6.1); ppo1's single Adam over
both networks is the same elementwise update.

Run: python algorithms/ppo.py --env-id Hopper-v5 --seed 1 --out runs/ppo/Hopper-v5/seed1
Writes progress.csv, episodes.csv and run.json into --out (see README, "Reading a run").
"""
import argparse
import csv
import dataclasses
import datetime
import fcntl
import functools
import gzip
import hashlib
import io
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ALGO = "ppo"
OBJECTIVES = ("clip", "kl_adaptive", "kl_fixed", "none")


def arg(default, help):
    return field(default=default, metadata={"help": help})


@dataclass
class Args:
    env_id: str = arg("HalfCheetah-v5", "gymnasium environment id (MuJoCo -v5 or classic control)")
    seed: int = arg(1, "root seed (>= 0); every random stream is derived from it")
    total_timesteps: int = arg(1_000_000, "environment steps to train for, rounded down to whole batches "
                                          "(run.json: steps_trained) (paper: 1M)")
    out: str = arg("", "run directory (default: runs/ppo/<env-id>/seed<seed>)")
    overwrite: bool = arg(False, "replace a finished run in --out; its files go only once the new run is complete")
    compress: bool = arg(False, "write progress.csv.gz and episodes.csv.gz (gzip; pandas reads them as they are)")
    num_envs: int = arg(1, "environments stepped in lockstep (paper: 1)")
    threads: int = arg(1, "torch intra-op threads (part of the determinism contract)")
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
    # The code-level regime: each flag below defaults to its --regime column of REGIMES.
    regime: str = arg("ppo2", "code-level regime that sets the defaults of the flags below: ppo2 | ppo1 (REGIMES)")
    anneal_lr: bool = arg(None, "anneal the learning rate linearly to 0")
    adam_eps: float = arg(None, "Adam ε")
    obs_stats: str = arg(None, "observation statistics: per_step (VecNormalize: Welford, every step, "
                               "std + 1e-8) | per_batch (ppo1: once per iteration before the epochs, std ≥ 0.1)")
    obs_clip: float = arg(None, "clip normalised observations to ±this")
    scale_rewards: bool = arg(None, "divide rewards by the running std of the discounted return")
    adv_norm: str = arg(None, "advantage normalisation: minibatch (ppo2) | batch (ppo1, once per iteration) | none")
    clip_vloss: bool = arg(None, "clip the value loss around the old values (ε = --clip-eps); else plain MSE")
    max_grad_norm: float = arg(None, "clip each network's gradient norm to this (0: no clipping)")
    init: str = arg(None, "weight init: orthogonal (gain √2 hidden, 0.01 policy head, 1 value head) | "
                          "normc (rows of unit L2 norm, 0.01 policy head, zero biases)")
    bootstrap_truncation: bool = arg(None, "bootstrap V(final obs) at time-limit truncations "
                                           "(docs/DESIGN.md §5); off: a time limit is terminal")


# ---------------------------------------------------------------- the two code-level regimes
# Every line that differs between them. An explicit flag always wins over its regime's value.
# ppo2: openai/baselines ppo2 (2dd7d30, 2017-11-16; LR annealing from 8c2aea2, 2018-08-13), as CleanRL runs it.
# ppo1: the first public PPO, baselines `pposgd` at da99706 (2017-07-20), the code closest to the paper's
#       (Huang et al. 2022; our research notes), with the value-loss clipping its author removed as a bug in
#       d9f194f (2017-08-27: "severely degrading performance on mujoco"). File:line are at da99706.
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


def parse_args(argv=None) -> Args:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(Args):
        flag, help = "--" + f.name.replace("_", "-"), f.metadata["help"]
        default = f.default
        if f.name in REGIMES:  # unset unless given: resolve() fills it from the regime
            ppo2, ppo1, where = REGIMES[f.name]
            help += f" (default: ppo2 {ppo2}, ppo1 {ppo1}; ppo1: baselines @ da99706, {where})"
            default = argparse.SUPPRESS
        if f.type is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help)
        else:
            parser.add_argument(flag, type=f.type, default=default, help=help)
    args = Args(**vars(parser.parse_args(argv)))
    validate(args)
    return args


class UsageError(ValueError):
    """Bad input, reported as one line naming the flag, before any training."""


def resolve(a: Args) -> Args:
    """Fill each regime flag left unset (None) from --regime's column of REGIMES; explicit flags win."""
    if a.regime not in REGIME_NAMES:
        raise UsageError(f"--regime: must be one of {', '.join(REGIME_NAMES)}, got {a.regime!r}")
    for name, values in REGIMES.items():
        if getattr(a, name) is None:
            setattr(a, name, values[REGIME_NAMES.index(a.regime)])  # (ppo2, ppo1, where)[column]
    return a


def validate(a: Args):
    def need(ok, flag, why):
        if not ok:
            raise UsageError(f"--{flag}: {why}")
    resolve(a)
    need(a.env_id in gym.registry, "env-id", f"unknown environment {a.env_id!r}")
    for name, choices in CHOICES.items():
        need(getattr(a, name) in choices, name.replace("_", "-"),
             f"must be one of {', '.join(choices)}, got {getattr(a, name)!r}")
    for name in ("gamma", "gae_lambda"):
        need(0.0 <= getattr(a, name) <= 1.0, name.replace("_", "-"), f"must be in [0, 1], got {getattr(a, name)}")
    for name in ("clip_eps", "beta", "d_targ", "learning_rate", "adam_eps", "obs_clip", "reward_clip",
                 "total_timesteps", "num_steps", "num_envs", "minibatch_size", "update_epochs", "threads"):
        value = getattr(a, name)
        need(math.isfinite(value) and value > 0, name.replace("_", "-"), f"must be positive, got {value}")
    need(a.seed >= 0, "seed", f"must be >= 0, got {a.seed}")
    need(a.target_kl is None or (math.isfinite(a.target_kl) and a.target_kl > 0), "target-kl",
         f"must be positive, got {a.target_kl}")
    need(math.isfinite(a.max_grad_norm) and a.max_grad_norm >= 0, "max-grad-norm", f"must be >= 0, got {a.max_grad_norm}")
    batch = a.num_steps * a.num_envs
    need(a.minibatch_size <= batch, "minibatch-size", f"{a.minibatch_size} exceeds the batch (num-steps × num-envs = {batch})")
    need(a.total_timesteps >= batch, "total-timesteps", f"{a.total_timesteps} is less than one batch ({batch} steps)")
    obs_space, act_space = env_spaces(a.env_id)
    check_machine(need, a, batch, "num-steps", flat_dim(obs_space), flat_dim(act_space))
    check_out(need, a)


def default_out(a: Args) -> str:
    return os.path.join("runs", ALGO, a.env_id, f"seed{a.seed}")


# ---------------------------------------------------------------- checks before any compute (every algorithm)
MAX_ENVS = 1024  # environments in one process, each with its own simulator


@functools.cache
def env_spaces(env_id):
    """(observation space, action space) of env_id, or a UsageError naming the env and the space."""
    try:
        env = quietly(lambda: gym.make(env_id))  # HalfCheetah's model makes MuJoCo warn
    except gym.error.DependencyNotInstalled as e:
        raise UsageError(f"--env-id: {env_id} needs an optional dependency: {str(e).splitlines()[0]}") from None
    obs_space, act_space = env.observation_space, env.action_space
    env.close()
    if not isinstance(obs_space, (gym.spaces.Box, gym.spaces.Discrete)):
        raise UsageError(f"--env-id: {env_id} has the observation space {obs_space}; "
                         f"{ALGO}.py supports Box and Discrete (one-hot encoded) observations")
    if not isinstance(act_space, (gym.spaces.Box, gym.spaces.Discrete)) or getattr(act_space, "start", 0) != 0:
        raise UsageError(f"--env-id: {env_id} has the action space {act_space}; "
                         f"{ALGO}.py supports Box and Discrete (starting at 0) actions")
    return obs_space, act_space


def quietly(fn):
    """fn() with file descriptor 2 sent to /dev/null and a scratch working directory, so a library's
    C-level warnings (MuJoCo's, with its MUJOCO_LOG.TXT) neither break a one-line error nor litter."""
    sys.stderr.flush()
    saved_fd, saved_cwd = os.dup(2), os.getcwd()
    try:
        with open(os.devnull, "w") as null, tempfile.TemporaryDirectory() as scratch:
            os.dup2(null.fileno(), 2)
            os.chdir(scratch)
            try:
                return fn()
            finally:
                os.chdir(saved_cwd)
    finally:
        os.dup2(saved_fd, 2)
        os.close(saved_fd)


def flat_dim(space):
    return int(space.n) if isinstance(space, gym.spaces.Discrete) else int(np.prod(space.shape))


def observation_encoder(space):
    """raw observation → float64 vector: a Box flattened, a Discrete state one-hot (FrozenLake, Taxi)."""
    dim = flat_dim(space)
    if isinstance(space, gym.spaces.Discrete):
        def one_hot(raw):
            x = np.zeros(dim)
            x[int(raw) - int(space.start)] = 1.0
            return x
        return one_hot
    return lambda raw: np.asarray(raw, dtype=np.float64).reshape(dim)


def check_machine(need, a, batch, batch_flag, obs_dim, act_dim):
    """Threads, environments and batch memory within what this machine has."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    need(a.threads <= cpus, "threads", f"must be at most the {cpus} CPUs this process may use, got {a.threads}")
    need(a.num_envs <= MAX_ENVS, "num-envs", f"must be at most {MAX_ENVS}, got {a.num_envs}")
    per_step = 4 * (3 * obs_dim + 2 * act_dim) + 16384  # float32 buffers, plus a full-batch backward's activations
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    need(batch * per_step <= ram / 2, batch_flag, f"a batch of {batch} steps needs about {batch * per_step / 2**30:.1f} "
         f"GiB, more than half of this machine's {ram / 2**30:.1f} GiB")


def check_out(need, a):
    """The run directory exists, is writable now (not after an hour of training) and holds no finished run."""
    out = a.out or default_out(a)
    try:
        os.makedirs(out, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as e:
        raise UsageError(f"--out: cannot write to {out!r} ({e.strerror})") from None
    need(a.overwrite or not os.path.exists(os.path.join(out, "run.json")), "out",
         f"{out} holds a finished run (run.json); pass --overwrite to replace it")


# ---------------------------------------------------------------- normalisation (baselines' VecNormalize; ppo1's filter)
class RunningMeanStd:
    """Running mean and population variance of a stream, Welford's update one sample at a time."""

    def __init__(self, shape=()):
        self.mean, self.var, self.count = np.zeros(shape) if shape else 0.0, np.ones(shape) if shape else 1.0, 1e-4

    def update(self, x):
        self.count += 1
        delta = x - self.mean
        self.mean = self.mean + delta / self.count
        self.var = self.var + (delta * (x - self.mean) - self.var) / self.count


class BatchObsFilter:
    """ppo1's observation filter (baselines common/mpi_running_mean_std.py @ da99706): sums over every
    observation so far, updated once per iteration with the whole batch. It starts at sum 0, sum of
    squares 1e-2 and count 1e-2 (mean 0, std 1), and floors the variance at 1e-2, so std ≥ 0.1."""

    def __init__(self, dim):
        self.sum, self.sumsq, self.count = np.zeros(dim), np.full(dim, 1e-2), 1e-2

    def update(self, batch):  # (n, dim) raw observations
        self.sum, self.sumsq, self.count = self.sum + batch.sum(0), self.sumsq + np.square(batch).sum(0), self.count + len(batch)

    def normalise(self, x, clip):
        mean = self.sum / self.count
        std = np.sqrt(np.maximum(self.sumsq / self.count - np.square(mean), 1e-2))
        return np.minimum(np.maximum((x - mean) / std, -clip), clip)


# ---------------------------------------------------------------- advantage estimator
def gae(rewards, values, next_values, terminated, episode_end, gamma, lam):
    """GAE(λ) (Schulman et al. 2016, eq. 16) over a (T, N) batch, recursing backwards in time:

        δ_t = r_t + γ (1 − terminated_t) V(s_{t+1}) − V(s_t)
        A_t = δ_t + γ λ (1 − end_t) A_{t+1}

    next_values[t] is V of the real successor of step t (the final observation when the
    episode ended there; at a termination it is multiplied by 0). end_t = terminated or
    truncated cuts the recursion, so it never crosses an episode boundary (docs/DESIGN.md §5).
    Returns (advantages, value targets = advantages + values)."""
    deltas = rewards + gamma * (1.0 - terminated) * next_values - values   # all t at once
    decay = gamma * lam * (1.0 - episode_end)                                # γλ(1 − end_t)
    advantages = np.zeros_like(rewards)
    next_advantage = np.zeros_like(rewards[0])
    for t in reversed(range(len(rewards))):  # only the recursion is sequential
        next_advantage = advantages[t] = deltas[t] + decay[t] * next_advantage
    return advantages, advantages + values


# ---------------------------------------------------------------- networks
class MLP(nn.Sequential):
    """Linear → tanh → Linear → tanh → Linear. forward() calls the functions directly: for a 64×64
    network nn.Module's per-layer call machinery costs more than the tanh (results/bench/ideas.csv)."""

    def forward(self, x):
        (w1, b1), (w2, b2), (w3, b3) = self.weights
        return F.linear(torch.tanh(F.linear(torch.tanh(F.linear(x, w1, b1)), w2, b2)), w3, b3)


def mlp(n_in, n_out, out_gain, init, hidden=64):
    """64×64 tanh MLP. init (--init): orthogonal with gains (√2, √2, out_gain) (baselines ppo2), or normc with
    row norms (1, 1, out_gain) (ppo1); out_gain is 0.01 for the policy head and 1 for the value head in both."""
    layers = [nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, n_out)]
    for layer, gain in zip(layers[::2], (math.sqrt(2), math.sqrt(2), out_gain)):
        if init == "orthogonal":
            nn.init.orthogonal_(layer.weight, gain)
        else:
            normc_(layer.weight, 1.0 if layer is not layers[-1] else out_gain)
        nn.init.zeros_(layer.bias)
    net = MLP(*layers)
    net.weights = tuple((layer.weight, layer.bias) for layer in layers[::2])  # the Parameter objects themselves
    return net


@torch.no_grad()
def normc_(weight, norm):
    """baselines' normc_initializer (common/tf_util.py @ da99706): standard-normal weights, then each output
    unit's incoming weights (a column of TF's (in, out) matrix, a row of torch's (out, in)) scaled to L2 norm `norm`."""
    weight.normal_()
    weight.mul_(norm / weight.norm(dim=1, keepdim=True))


def numpy_mlp(net):
    """The MLP as a numpy function over views of its current weights (valid while they are updated in place)."""
    layers = [(m.weight.detach().numpy().T, m.bias.detach().numpy()) for m in net if isinstance(m, nn.Linear)]

    def forward(x):
        for w, b in layers[:-1]:
            x = np.tanh(x @ w + b)
        return x @ layers[-1][0] + layers[-1][1]
    return forward


def flat_parameters(module):
    """Re-home all of module's parameters (and their gradients) as views of one flat tensor.
    The optimiser step, the gradient norm and the zeroing then cost one operation each instead
    of one per weight matrix; the mathematics is unchanged (Adam is elementwise). backward()
    accumulates into the existing .grad views in place, so the flat gradient is always current."""
    params = list(module.parameters())
    flat = nn.Parameter(torch.cat([p.detach().reshape(-1) for p in params]))
    flat.grad = torch.zeros_like(flat)
    offset = 0
    for p in params:
        p.data = flat.data[offset:offset + p.numel()].view_as(p)
        p.grad = flat.grad[offset:offset + p.numel()].view_as(p)
        offset += p.numel()
    return flat


class Adam:
    """Adam (Kingma & Ba 2015, Algorithm 1) on one flat parameter tensor, in the form torch.optim.Adam
    computes it; a few tensor operations per step instead of torch.optim's per-call bookkeeping,
    which costs more than the arithmetic for a 64×64 network (results/bench/ideas.csv)."""

    def __init__(self, flat, lr, eps, betas=(0.9, 0.999)):
        self.flat, self.lr, self.eps, (self.beta1, self.beta2) = flat, lr, eps, betas
        self.m, self.v, self.t = torch.zeros_like(flat), torch.zeros_like(flat), 0  # 1st and 2nd moments

    @torch.no_grad()
    def step(self):
        self.t += 1
        g = self.flat.grad
        self.m.lerp_(g, 1 - self.beta1)                                  # m ← β1 m + (1 − β1) g
        self.v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)     # v ← β2 v + (1 − β2) g²
        denom = (self.v.sqrt() / math.sqrt(1 - self.beta2 ** self.t)).add_(self.eps)  # √v̂ + ε
        self.flat.addcdiv_(self.m, denom, value=-self.lr / (1 - self.beta1 ** self.t))  # θ ← θ − α m̂ / (√v̂ + ε)


def clip_grad_norm(flat, max_norm):
    """Scale the flat gradient to L2 norm ≤ max_norm (as nn.utils.clip_grad_norm_); returns the norm before."""
    norm = flat.grad.norm()
    flat.grad.mul_((max_norm / (norm + 1e-6)).clamp(max=1.0))
    return norm


class GaussianPolicy(nn.Module):
    """π(a|s) = N(μ_θ(s), diag(σ²)), log σ a state-independent parameter initialised to 0."""

    def __init__(self, obs_dim, act_dim, init, hidden=64):
        super().__init__()
        self.mean = mlp(obs_dim, act_dim, 0.01, init, hidden)
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
        mean, std = numpy_mlp(self.mean), self.log_std.detach().exp().numpy()
        return lambda obs, rng: (mean(obs) + std * rng.standard_normal((len(obs), len(std)))).astype(np.float32)


class CategoricalPolicy(nn.Module):
    """π(a|s) = softmax(logits_θ(s))."""

    def __init__(self, obs_dim, n_actions, init, hidden=64):
        super().__init__()
        self.logits = mlp(obs_dim, n_actions, 0.01, init, hidden)

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
        logits = numpy_mlp(self.logits)

        def act(obs, rng):
            cdf = np.cumsum(np.exp(logits(obs) - logits(obs).max(-1, keepdims=True)), -1)
            u = rng.random((len(obs), 1)) * cdf[:, -1:]
            return np.minimum((cdf < u).sum(-1), cdf.shape[1] - 1).astype(np.float32)
        return act


# ---------------------------------------------------------------- the objectives (the only part that differs)
def policy_loss(objective, ratio, advantages, kl, clip_eps, beta):
    """Negated surrogate of the chosen objective (we minimise); see the module docstring."""
    if objective == "clip":
        return -torch.min(ratio * advantages, ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantages).mean()
    if objective in ("kl_fixed", "kl_adaptive"):
        return -(ratio * advantages - beta * kl).mean()
    return -(ratio * advantages).mean()


def normalise_minibatches(advantages, size):
    """(A − mean) / (std + 1e-8) within each consecutive chunk of `size` advantages (the minibatches
    of one epoch), the full chunks in one batched operation. A chunk of one is left as it is."""
    full = len(advantages) // size * size
    chunks = [advantages[:full].view(-1, size), advantages[full:].view(1, -1)]
    return torch.cat([((c - c.mean(1, keepdim=True)) / (c.std(1, keepdim=True) + 1e-8)).view(-1)
                      if c.shape[1] > 1 else c.view(-1) for c in chunks if c.numel()])


def adapt_beta(beta, kl, d_targ):
    """PPO paper §4: halve β when d < d_targ/1.5, double it when d > 1.5·d_targ."""
    if kl < d_targ / 1.5:
        return beta / 2
    if kl > d_targ * 1.5:
        return beta * 2
    return beta


def should_stop_early(kl, target_kl):
    """Spinning Up's KL early-stopping rule: stop when KL > 1.5 × target."""
    return target_kl is not None and kl > 1.5 * target_kl


# ---------------------------------------------------------------- run contract: files and metadata
PROGRESS_COLUMNS = ["algo", "env_id", "seed", "iteration", "global_step", "walltime_s", "sps", "rollout_s",
                    "update_s", "ep_count", "ep_return_mean", "ep_return_std", "ep_length_mean", "return_last100",
                    "policy_loss", "value_loss", "entropy", "approx_kl", "clip_frac", "kl_beta", "update_steps",
                    "early_stopped", "line_search_steps", "step_accepted", "explained_variance", "learning_rate",
                    "grad_norm"]
EPISODE_COLUMNS = ["global_step", "ep_return", "ep_length", "terminated"]


class RunFiles:
    """The run directory and its three files, owned by this run from start to end.

    One writer: an exclusive lock on <out>/.lock, held for the run's life and released by the OS
    however the process ends; a second run on the same directory stops with the owner's pid.
    Nothing looks complete until it is: the CSVs (floats to 8 significant digits, gzipped with
    --compress) are written as '.partial' files, and publish()
    renames them and writes run.json last, so a directory holds a finished run exactly when it holds
    run.json. A finished run already there is refused unless --overwrite; its files are then
    replaced only in publish(), once the new ones are complete, and kept if the new run fails."""

    def __init__(self, out, overwrite, compress):
        self.out, self.lock_path = out, os.path.join(out, ".lock")
        while True:  # lock the file that is at lock_path now: an owner that finishes removes it
            self.lock = open(self.lock_path, "a+")
            try:
                fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.lock.seek(0)
                owner = self.lock.read().strip() or "unknown"
                self.lock.close()
                raise UsageError(f"--out: {out} is in use by another run (pid {owner})") from None
            if os.path.exists(self.lock_path) and os.stat(self.lock_path).st_ino == os.fstat(self.lock.fileno()).st_ino:
                break
            self.lock.close()  # we locked a file its owner had just removed: try again
        self.lock.seek(0)
        self.lock.truncate()
        self.lock.write(f"{os.getpid()}\n")
        self.lock.flush()
        if not overwrite and os.path.exists(os.path.join(out, "run.json")):  # appeared since validate()
            self.close()
            raise UsageError(f"--out: {out} holds a finished run (run.json); pass --overwrite to replace it")
        self.names = {n: n + (".csv.gz" if compress else ".csv") for n in ("progress", "episodes")}
        self.files = {n: io.TextIOWrapper(gzip.GzipFile(os.path.join(out, f + ".partial"), "wb", mtime=0), newline="")
                      if compress else open(os.path.join(out, f + ".partial"), "w", newline="") for n, f in self.names.items()}
        self.writers = {n: csv.writer(f) for n, f in self.files.items()}
        self.writers["progress"].writerow(PROGRESS_COLUMNS)
        self.writers["episodes"].writerow(EPISODE_COLUMNS)

    def write(self, name, rows):
        self.writers[name].writerows([[f"{v:.8g}" if isinstance(v, float) else v for v in row] for row in rows])
        self.files[name].flush()

    def publish(self, meta):
        tmp, done = os.path.join(self.out, "run.json.partial"), os.path.join(self.out, "run.json")
        for f in self.files.values():
            f.close()
        with open(tmp, "w") as f:
            json.dump(meta, f, indent=2)
        if os.path.exists(done):  # an older run (--overwrite): it stops being finished only now
            os.remove(done)
        for name, file_name in self.names.items():
            other = os.path.join(self.out, name + (".csv" if file_name.endswith(".gz") else ".csv.gz"))
            if os.path.exists(other):  # the older run's file in the other format
                os.remove(other)
            os.replace(os.path.join(self.out, file_name + ".partial"), os.path.join(self.out, file_name))
        os.replace(tmp, done)  # last: from here on the directory holds the new, finished run

    def abandon(self):
        for f in self.files.values():
            f.close()

    def close(self):
        os.remove(self.lock_path)  # still holding the lock, so no one can be waiting on this file
        self.lock.close()  # releases the lock


def code_version():
    """The git commit, whether this file differs from it, and this file's hash (taken at start)."""
    here = os.path.abspath(__file__)

    def git(*cmd):
        try:
            return subprocess.run(["git", *cmd], cwd=os.path.dirname(here), capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except OSError:
            return ""
    with open(here, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return {"git_commit": git("rev-parse", "HEAD"), "git_dirty": bool(git("status", "--porcelain", "--", here)),
            "script_sha256": digest}


def run_metadata(args, code, start, end, steps_trained):
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    try:
        import mujoco
        mujoco_version = mujoco.__version__
    except ImportError:
        mujoco_version = None
    return {"algo": ALGO, "args": dataclasses.asdict(args), "seed": args.seed, "steps_trained": steps_trained,
            "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                         "gymnasium": gym.__version__, "mujoco": mujoco_version},
            **code, "threads": torch.get_num_threads(), "cpu": cpu, "hostname": platform.node(),
            "start_time": datetime.datetime.fromtimestamp(start, datetime.timezone.utc).isoformat(),
            "end_time": datetime.datetime.fromtimestamp(end, datetime.timezone.utc).isoformat(),
            "walltime_s": end - start, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "exit_status": "success"}


class NonFiniteError(RuntimeError):
    pass


def check_finite(iteration, **quantities):
    for name, value in quantities.items():
        if isinstance(value, torch.nn.Module):
            for pname, p in value.named_parameters():
                if not torch.isfinite(p).all():
                    raise NonFiniteError(f"iteration {iteration}: parameter {name}.{pname} is not finite")
        elif not math.isfinite(value):
            raise NonFiniteError(f"iteration {iteration}: {name} is {value}")


# ---------------------------------------------------------------- training
def train(args: Args, quiet=False, on_batch=None):
    """Train PPO as configured; returns the run directory. Raises UsageError on bad input.
    on_batch(dict of the iteration's (T, N) arrays), if given, sees each batch (tests use it)."""
    validate(args)
    out = args.out or default_out(args)
    files, envs = RunFiles(out, args.overwrite, args.compress), []  # this run owns --out from here on, before any compute
    try:
        torch.set_num_threads(args.threads)
        start, code = time.time(), code_version()

        # One root seed → independent streams (docs/DESIGN.md §4): envs, network init, action noise, shuffles.
        env_seeds, init_seed, act_seed, shuffle_seed = np.random.SeedSequence(args.seed).spawn(4)
        torch.manual_seed(int(init_seed.generate_state(1)[0]))
        act_rng, shuffle_rng = np.random.default_rng(act_seed), np.random.default_rng(shuffle_seed)
        envs = [gym.make(args.env_id) for _ in range(args.num_envs)]
        obs_space, act_space = env_spaces(args.env_id)
        obs_dim, encode = flat_dim(obs_space), observation_encoder(obs_space)
        discrete = isinstance(act_space, gym.spaces.Discrete)
        if discrete:
            policy = CategoricalPolicy(obs_dim, int(act_space.n), args.init)
            act_shape = ()
        else:
            policy = GaussianPolicy(obs_dim, int(np.prod(act_space.shape)), args.init)
            act_shape = act_space.shape
        value_fn = mlp(obs_dim, 1, 1.0, args.init)
        pi_params, v_params = flat_parameters(policy), flat_parameters(value_fn)
        pi_opt, v_opt = Adam(pi_params, args.learning_rate, args.adam_eps), Adam(v_params, args.learning_rate, args.adam_eps)

        low, high = (None, None) if discrete else (act_space.low, act_space.high)
        obs_rms, ret_rms, obs_filter = RunningMeanStd(obs_dim), RunningMeanStd(), BatchObsFilter(obs_dim)
        per_batch_stats = args.norm_obs and args.obs_stats == "per_batch"  # ppo1: frozen during the rollout
        discounted_return = [0.0] * args.num_envs

        def normalise_obs(x):  # x: an encoded observation
            if not args.norm_obs:
                return x
            if per_batch_stats:
                return obs_filter.normalise(x, args.obs_clip)
            obs_rms.update(x)
            z = (x - obs_rms.mean) / np.sqrt(obs_rms.var + 1e-8)
            return np.minimum(np.maximum(z, -args.obs_clip), args.obs_clip)  # np.clip, without its wrapper's cost

        def scale_reward(r, i, done):
            # divide by the running std of the discounted return γR_{t-1} + r_t (Engstrom et al. 2020 §3)
            if not args.scale_rewards:
                return r
            discounted_return[i] = discounted_return[i] * args.gamma + r
            ret_rms.update(discounted_return[i])
            if done:
                discounted_return[i] = 0.0
            return min(max(r / math.sqrt(ret_rms.var + 1e-8), -args.reward_clip), args.reward_clip)

        T, N = args.num_steps, args.num_envs
        batch_size, num_iterations = T * N, args.total_timesteps // (T * N)
        obs_buf = np.zeros((T, N, obs_dim), np.float32)
        next_obs_buf = np.zeros((T, N, obs_dim), np.float32)
        raw_obs_buf = np.zeros((T, N, obs_dim)) if per_batch_stats else None  # what the filter learns from
        act_buf = np.zeros((T, N) + act_shape, np.float32)
        rew_buf, term_buf, end_buf = (np.zeros((T, N), np.float32) for _ in range(3))

        raw_obs = np.stack([encode(env.reset(seed=int(s))[0]) for env, s in
                            zip(envs, env_seeds.generate_state(N))])  # seeded once, at the first reset
        obs = np.stack([normalise_obs(x) for x in raw_obs]).astype(np.float32)
        ep_return, ep_length = np.zeros(N), np.zeros(N, int)
        episode_returns, global_step, beta = [], 0, args.beta
        for iteration in range(1, num_iterations + 1):
            lr = args.learning_rate * (1 - (iteration - 1) / num_iterations) if args.anneal_lr else args.learning_rate
            pi_opt.lr = v_opt.lr = lr

            # ---- rollout: T steps in each of N environments with the current policy
            t0, new_episodes, act = time.time(), [], policy.actor()
            if per_batch_stats:  # the policy sees the filter as last updated (ppo1 normalises inside the graph)
                obs[:] = obs_filter.normalise(raw_obs, args.obs_clip)
            for t in range(T):
                obs_buf[t] = obs
                if per_batch_stats:
                    raw_obs_buf[t] = raw_obs
                act_buf[t] = action = act(obs, act_rng)
                for i, env in enumerate(envs):
                    # the env gets the clipped action; the buffer keeps the sampled one (Huang et al. 2022)
                    env_action = int(action[i]) if discrete else np.minimum(np.maximum(action[i], low), high)
                    raw_next, reward, terminated, truncated, _ = env.step(env_action)
                    global_step += 1
                    ep_return[i] += reward
                    ep_length[i] += 1
                    done = terminated or truncated
                    rew_buf[t, i] = scale_reward(reward, i, done)
                    term_buf[t, i] = terminated or (truncated and not args.bootstrap_truncation)
                    end_buf[t, i] = done
                    x_next = encode(raw_next)
                    next_obs_buf[t, i] = normalise_obs(x_next)  # the real final observation if done
                    if done:
                        new_episodes.append((global_step, float(ep_return[i]), int(ep_length[i]), int(terminated)))
                        ep_return[i], ep_length[i] = 0.0, 0
                        x_next = encode(env.reset()[0])
                        obs[i] = normalise_obs(x_next)
                    else:
                        obs[i] = next_obs_buf[t, i]
                    if per_batch_stats:
                        raw_obs[i] = x_next
            rollout_s = time.time() - t0

            # ---- values and advantages, batched over the whole rollout (V as the rollout saw it)
            t0 = time.time()
            with torch.no_grad():
                values = value_fn(torch.from_numpy(obs_buf.reshape(batch_size, obs_dim))).squeeze(-1).numpy().reshape(T, N)
                next_values = value_fn(torch.from_numpy(next_obs_buf)).squeeze(-1).numpy()
            advantages, returns = gae(rew_buf, values, next_values, term_buf, end_buf, args.gamma, args.gae_lambda)
            update_obs = obs_buf  # the observations the epochs train on
            if per_batch_stats:  # ppo1: update the filter with the batch, then optimise on it re-normalised
                obs_filter.update(raw_obs_buf.reshape(batch_size, obs_dim))
                update_obs = obs_filter.normalise(raw_obs_buf, args.obs_clip).astype(np.float32)
            b_obs, b_act = torch.from_numpy(update_obs.reshape(batch_size, obs_dim)), torch.from_numpy(act_buf.reshape((batch_size,) + act_shape))
            with torch.no_grad():  # frozen π_old, on the observations the epochs use (ppo1: ratio 1 at the start)
                old_dist = tuple(x.clone() for x in policy(b_obs))  # clone: log σ is a view
                old_logp = policy.log_prob(old_dist, b_act)
            b_adv, b_ret = torch.from_numpy(advantages.reshape(-1)), torch.from_numpy(returns.reshape(-1))
            if args.adv_norm == "batch":  # ppo1: once per iteration over the whole batch (population std)
                b_adv = (b_adv - b_adv.mean()) / (b_adv.std(correction=0) + 1e-8)
            if on_batch:
                on_batch(dict(obs=obs_buf, next_obs=next_obs_buf, actions=act_buf, rewards=rew_buf, terminated=term_buf,
                              ends=end_buf, values=values, next_values=next_values, advantages=advantages,
                              raw_obs=raw_obs_buf, update_obs=update_obs, policy_advantages=b_adv.numpy().reshape(T, N)))
            b_val = torch.from_numpy(values.reshape(-1))
            explained_var = 1 - np.var(returns - values) / np.var(returns) if np.var(returns) > 0 else float("nan")

            # ---- update: epochs of shuffled minibatches
            stats = {"policy_loss": [], "value_loss": [], "grad_norm": []}
            stepped = []  # (ratio, π_θ before the step) of every policy minibatch, for entropy and clip fraction
            policy_active, max_norm = True, args.max_grad_norm or float("inf")
            needs_kl = args.objective.startswith("kl_") or args.target_kl is not None  # per-state KL[π_old ‖ π_θ]
            per_state = (b_obs, b_act, old_logp, b_ret, b_val) + old_dist
            for epoch in range(args.update_epochs):
                # shuffle once per epoch; the minibatches are then views of the shuffled tensors
                perm = torch.from_numpy(shuffle_rng.permutation(batch_size))
                adv_epoch = b_adv[perm]
                if args.adv_norm == "minibatch":  # per minibatch, as in baselines ppo2
                    adv_epoch = normalise_minibatches(adv_epoch, args.minibatch_size)
                shuffled = [x.split(args.minibatch_size) for x in (adv_epoch,) + tuple(x[perm] for x in per_state)]
                for adv, obs_mb, act_mb, old_logp_mb, ret, old_v, *old_dist_mb in zip(*shuffled):
                    # value regression, clipped around the old values as in baselines ppo2 (--clip-vloss)
                    v = value_fn(obs_mb).squeeze(-1)
                    v_loss = (v - ret) ** 2
                    if args.clip_vloss:
                        v_clipped = old_v + (v - old_v).clamp(-args.clip_eps, args.clip_eps)
                        v_loss = torch.max(v_loss, (v_clipped - ret) ** 2)
                    loss = v_loss = 0.5 * v_loss.mean()
                    if policy_active:
                        dist = policy(obs_mb)
                        kl = policy.kl(tuple(old_dist_mb), dist) if needs_kl else None
                        if args.target_kl is not None:  # Spinning Up's early stopping, checked before each step
                            policy_active = not should_stop_early(kl.mean().item(), args.target_kl)
                    if policy_active:
                        ratio = (policy.log_prob(dist, act_mb) - old_logp_mb).exp()
                        pi_loss = policy_loss(args.objective, ratio, adv, kl, args.clip_eps, beta)
                        loss = pi_loss + v_loss  # disjoint networks: one backward gives both gradients
                    pi_params.grad.zero_()
                    v_params.grad.zero_()
                    loss.backward()
                    clip_grad_norm(v_params, max_norm)
                    v_opt.step()
                    stats["value_loss"].append(v_loss.detach())
                    if policy_active:
                        stats["grad_norm"].append(clip_grad_norm(pi_params, max_norm))
                        pi_opt.step()
                        stats["policy_loss"].append(pi_loss.detach())
                        stepped.append((ratio.detach(),) + tuple(x.detach() for x in dist))

            with torch.no_grad():
                approx_kl = policy.kl(old_dist, policy(b_obs)).mean().item()
            beta_used = beta
            if args.objective == "kl_adaptive":
                beta = adapt_beta(beta, approx_kl, args.d_targ)
            update_s = time.time() - t0

            # ---- log
            mean = {k: torch.stack(v).mean().item() if v else float("nan") for k, v in stats.items()}
            mean["entropy"] = mean["clip_frac"] = float("nan")
            if stepped:  # over all states of the policy minibatches (equal sizes: the mean of their means)
                ratio, *dist = (torch.cat(parts) for parts in zip(*stepped))
                mean["entropy"] = policy.entropy(tuple(dist)).mean().item()
                mean["clip_frac"] = ((ratio - 1).abs() > args.clip_eps).float().mean().item()
            check_finite(iteration, policy_loss=mean["policy_loss"] if stats["policy_loss"] else 0.0,
                         value_loss=mean["value_loss"], approx_kl=approx_kl, policy=policy, value_function=value_fn)
            episode_returns += [e[1] for e in new_episodes]
            returns_now = np.array([e[1] for e in new_episodes])
            walltime = time.time() - start
            row = [ALGO, args.env_id, args.seed, iteration, global_step, walltime, batch_size / (rollout_s + update_s),
                   rollout_s, update_s, len(new_episodes),
                   float(returns_now.mean()) if len(returns_now) else float("nan"),
                   float(returns_now.std()) if len(returns_now) else float("nan"),
                   float(np.mean([e[2] for e in new_episodes])) if new_episodes else float("nan"),
                   float(np.mean(episode_returns[-100:])) if episode_returns else float("nan"),
                   mean["policy_loss"], mean["value_loss"], mean["entropy"], approx_kl, mean["clip_frac"],
                   beta_used if args.objective.startswith("kl_") else float("nan"), len(stats["policy_loss"]),
                   int(not policy_active), float("nan"), float("nan"), float(explained_var), lr, mean["grad_norm"]]
            files.write("progress", [row])
            files.write("episodes", new_episodes)
            if not quiet:
                report_progress(iteration, num_iterations, global_step, row[6], row[13])
        files.publish(run_metadata(args, code, start, time.time(), num_iterations * batch_size))
    except BaseException:
        files.abandon()
        raise
    finally:
        files.close()
        for env in envs:
            env.close()
    return out


def report_progress(iteration, num_iterations, step, sps, last100):
    line = f"iter {iteration}/{num_iterations}  step {step}  sps {sps:,.0f}  return(last100) {last100:.1f}"
    if sys.stdout.isatty():
        print("\r" + line, end="\n" if iteration == num_iterations else "", flush=True)
    elif iteration % max(1, num_iterations // 20) == 0 or iteration == num_iterations:
        print(line, flush=True)


def main(argv=None):
    try:
        train(parse_args(argv))
    except (UsageError, NonFiniteError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: nothing published (the .partial files show how far it got)", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
