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
no entropy bonus). The code-level details of openai/baselines ppo2, the code behind the
paper's results (Engstrom et al. 2020 §3; Huang et al. 2022), are flags, all on by default:
observation normalisation and clipping, reward scaling and clipping, per-minibatch
advantage normalisation, value clipping, learning-rate annealing, gradient clipping,
orthogonal init. With separate networks we use separate Adam optimisers and clip each
network's gradient norm on its own, so the value-loss coefficient c1 is irrelevant (§6.1).

Run: python algorithms/ppo.py --env-id Hopper-v5 --seed 1 --out runs/ppo/Hopper-v5/seed1
Writes progress.csv, episodes.csv and run.json into --out (see README, "Reading a run").
"""
import argparse
import csv
import dataclasses
import datetime
import hashlib
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
    seed: int = arg(1, "root seed; every random stream is derived from it")
    total_timesteps: int = arg(1_000_000, "environment steps to train for (paper: 1M)")
    out: str = arg("", "run directory (default: runs/ppo/<env-id>/seed<seed>)")
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
    adam_eps: float = arg(1e-5, "Adam ε (baselines ppo2)")
    anneal_lr: bool = arg(True, "anneal the learning rate linearly to 0 (baselines ppo2)")
    norm_obs: bool = arg(True, "normalise observations by a running mean/std, then clip (baselines)")
    obs_clip: float = arg(10.0, "clip normalised observations to ±this")
    scale_rewards: bool = arg(True, "divide rewards by the running std of the discounted return")
    reward_clip: float = arg(10.0, "clip scaled rewards to ±this")
    norm_adv: bool = arg(True, "normalise advantages per minibatch")
    clip_vloss: bool = arg(True, "clip the value loss around the old values (ε = --clip-eps)")
    max_grad_norm: float = arg(0.5, "clip each network's gradient norm to this (0: no clipping)")
    ortho_init: bool = arg(True, "orthogonal init: gain √2 hidden, 0.01 policy head, 1 value head")
    bootstrap_truncation: bool = arg(True, "bootstrap V(final obs) at time-limit truncations (DESIGN §5)")


def parse_args(argv=None) -> Args:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(Args):
        flag = "--" + f.name.replace("_", "-")
        if f.type is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=f.metadata["help"])
        else:
            parser.add_argument(flag, type=f.type, default=f.default, help=f.metadata["help"])
    args = Args(**vars(parser.parse_args(argv)))
    validate(args)
    return args


class UsageError(ValueError):
    """Bad input, reported as one line naming the flag, before any training."""


def validate(a: Args):
    def need(ok, flag, why):
        if not ok:
            raise UsageError(f"--{flag}: {why}")
    need(a.env_id in gym.registry, "env-id", f"unknown environment {a.env_id!r}")
    need(a.objective in OBJECTIVES, "objective", f"must be one of {', '.join(OBJECTIVES)}, got {a.objective!r}")
    for name in ("gamma", "gae_lambda"):
        need(0.0 <= getattr(a, name) <= 1.0, name.replace("_", "-"), f"must be in [0, 1], got {getattr(a, name)}")
    for name in ("clip_eps", "beta", "d_targ", "learning_rate", "adam_eps", "obs_clip", "reward_clip",
                 "total_timesteps", "num_steps", "num_envs", "minibatch_size", "update_epochs", "threads"):
        value = getattr(a, name)
        need(math.isfinite(value) and value > 0, name.replace("_", "-"), f"must be positive, got {value}")
    need(a.target_kl is None or (math.isfinite(a.target_kl) and a.target_kl > 0), "target-kl",
         f"must be positive, got {a.target_kl}")
    need(math.isfinite(a.max_grad_norm) and a.max_grad_norm >= 0, "max-grad-norm", f"must be >= 0, got {a.max_grad_norm}")
    batch = a.num_steps * a.num_envs
    need(a.minibatch_size <= batch, "minibatch-size", f"{a.minibatch_size} exceeds the batch (num-steps × num-envs = {batch})")
    need(a.total_timesteps >= batch, "total-timesteps", f"{a.total_timesteps} is less than one batch ({batch} steps)")
    out = a.out or default_out(a)
    try:  # create the run directory and prove it writable now, not after an hour of training
        os.makedirs(out, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as e:
        raise UsageError(f"--out: cannot write to {out!r} ({e.strerror})") from None


def default_out(a: Args) -> str:
    return os.path.join("runs", ALGO, a.env_id, f"seed{a.seed}")


# ---------------------------------------------------------------- normalisation (baselines' VecNormalize)
class RunningMeanStd:
    """Running mean and population variance of a stream, Welford's update one sample at a time."""

    def __init__(self, shape=()):
        self.mean, self.var, self.count = np.zeros(shape) if shape else 0.0, np.ones(shape) if shape else 1.0, 1e-4

    def update(self, x):
        self.count += 1
        delta = x - self.mean
        self.mean = self.mean + delta / self.count
        self.var = self.var + (delta * (x - self.mean) - self.var) / self.count


# ---------------------------------------------------------------- advantage estimator
def gae(rewards, values, next_values, terminated, episode_end, gamma, lam):
    """GAE(λ) (Schulman et al. 2016, eq. 16) over a (T, N) batch, recursing backwards in time:

        δ_t = r_t + γ (1 − terminated_t) V(s_{t+1}) − V(s_t)
        A_t = δ_t + γ λ (1 − end_t) A_{t+1}

    next_values[t] is V of the real successor of step t (the final observation when the
    episode ended there; at a termination it is multiplied by 0). end_t = terminated or
    truncated cuts the recursion, so it never crosses an episode boundary (DESIGN §5).
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


def mlp(n_in, n_out, out_gain, ortho, hidden=64):
    layers = [nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, n_out)]
    if ortho:
        for layer, gain in zip(layers[::2], (math.sqrt(2), math.sqrt(2), out_gain)):
            nn.init.orthogonal_(layer.weight, gain)
            nn.init.zeros_(layer.bias)
    net = MLP(*layers)
    net.weights = tuple((layer.weight, layer.bias) for layer in layers[::2])  # the Parameter objects themselves
    return net


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

    def __init__(self, obs_dim, act_dim, ortho, hidden=64):
        super().__init__()
        self.mean = mlp(obs_dim, act_dim, 0.01, ortho, hidden)
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

    def __init__(self, obs_dim, n_actions, ortho, hidden=64):
        super().__init__()
        self.logits = mlp(obs_dim, n_actions, 0.01, ortho, hidden)

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
    """CSV files written under a '.partial' suffix and renamed only when the run succeeds."""

    def __init__(self, out):
        os.makedirs(out, exist_ok=True)
        self.out = out
        for name in ("progress.csv", "episodes.csv", "run.json"):  # a rerun never leaves stale results
            if os.path.exists(os.path.join(out, name)):
                os.remove(os.path.join(out, name))
        self.files = {n: open(os.path.join(out, n + ".csv.partial"), "w", newline="") for n in ("progress", "episodes")}
        self.writers = {n: csv.writer(f) for n, f in self.files.items()}
        self.writers["progress"].writerow(PROGRESS_COLUMNS)
        self.writers["episodes"].writerow(EPISODE_COLUMNS)

    def write(self, name, rows):
        self.writers[name].writerows(rows)
        self.files[name].flush()

    def publish(self, meta):
        for name, f in self.files.items():
            f.close()
            os.replace(f.name, os.path.join(self.out, name + ".csv"))
        tmp = os.path.join(self.out, "run.json.partial")
        with open(tmp, "w") as f:
            json.dump(meta, f, indent=2)
        os.replace(tmp, os.path.join(self.out, "run.json"))

    def abandon(self):
        for f in self.files.values():
            f.close()


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


def run_metadata(args, code, start, end):
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    try:
        import mujoco
        mujoco_version = mujoco.__version__
    except ImportError:
        mujoco_version = None
    return {"algo": ALGO, "args": dataclasses.asdict(args), "seed": args.seed,
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
    torch.set_num_threads(args.threads)
    start, code = time.time(), code_version()

    # One root seed → independent streams (DESIGN §4): envs, network init, action noise, minibatch shuffles.
    env_seeds, init_seed, act_seed, shuffle_seed = np.random.SeedSequence(args.seed).spawn(4)
    torch.manual_seed(int(init_seed.generate_state(1)[0]))
    act_rng, shuffle_rng = np.random.default_rng(act_seed), np.random.default_rng(shuffle_seed)
    envs = [gym.make(args.env_id) for _ in range(args.num_envs)]
    obs_space, act_space = envs[0].observation_space, envs[0].action_space
    obs_dim = int(np.prod(obs_space.shape))
    discrete = isinstance(act_space, gym.spaces.Discrete)
    if discrete:
        policy = CategoricalPolicy(obs_dim, int(act_space.n), args.ortho_init)
        act_shape = ()
    else:
        policy = GaussianPolicy(obs_dim, int(np.prod(act_space.shape)), args.ortho_init)
        act_shape = act_space.shape
    value_fn = mlp(obs_dim, 1, 1.0, args.ortho_init)
    pi_params, v_params = flat_parameters(policy), flat_parameters(value_fn)
    pi_opt, v_opt = Adam(pi_params, args.learning_rate, args.adam_eps), Adam(v_params, args.learning_rate, args.adam_eps)

    low, high = (None, None) if discrete else (act_space.low, act_space.high)
    obs_rms, ret_rms = RunningMeanStd(obs_dim), RunningMeanStd()
    discounted_return = [0.0] * args.num_envs

    def normalise_obs(raw):
        raw = np.asarray(raw, dtype=np.float64).reshape(obs_dim)
        if not args.norm_obs:
            return raw
        obs_rms.update(raw)
        z = (raw - obs_rms.mean) / np.sqrt(obs_rms.var + 1e-8)
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
    act_buf = np.zeros((T, N) + act_shape, np.float32)
    rew_buf, term_buf, end_buf = (np.zeros((T, N), np.float32) for _ in range(3))

    obs = np.stack([normalise_obs(env.reset(seed=int(s))[0]) for env, s in
                    zip(envs, env_seeds.generate_state(N))]).astype(np.float32)  # seeded once, at the first reset
    ep_return, ep_length = np.zeros(N), np.zeros(N, int)
    episode_returns, global_step, beta = [], 0, args.beta
    files = RunFiles(out)
    try:
        for iteration in range(1, num_iterations + 1):
            lr = args.learning_rate * (1 - (iteration - 1) / num_iterations) if args.anneal_lr else args.learning_rate
            pi_opt.lr = v_opt.lr = lr

            # ---- rollout: T steps in each of N environments with the current policy
            t0, new_episodes, act = time.time(), [], policy.actor()
            for t in range(T):
                obs_buf[t] = obs
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
                    next_obs_buf[t, i] = normalise_obs(raw_next)  # the real final observation if done
                    if done:
                        new_episodes.append((global_step, float(ep_return[i]), int(ep_length[i]), int(terminated)))
                        ep_return[i], ep_length[i] = 0.0, 0
                        obs[i] = normalise_obs(env.reset()[0])
                    else:
                        obs[i] = next_obs_buf[t, i]
            rollout_s = time.time() - t0

            # ---- old log-probabilities, values and advantages, batched over the whole rollout
            t0 = time.time()
            b_obs, b_act = torch.from_numpy(obs_buf.reshape(batch_size, obs_dim)), torch.from_numpy(act_buf.reshape((batch_size,) + act_shape))
            with torch.no_grad():
                old_dist = tuple(x.clone() for x in policy(b_obs))  # frozen π_old (clone: log σ is a view)
                old_logp = policy.log_prob(old_dist, b_act)
                values = value_fn(b_obs).squeeze(-1).numpy().reshape(T, N)
                next_values = value_fn(torch.from_numpy(next_obs_buf)).squeeze(-1).numpy()
            advantages, returns = gae(rew_buf, values, next_values, term_buf, end_buf, args.gamma, args.gae_lambda)
            if on_batch:
                on_batch(dict(obs=obs_buf, next_obs=next_obs_buf, actions=act_buf, rewards=rew_buf, terminated=term_buf,
                              ends=end_buf, values=values, next_values=next_values, advantages=advantages))
            b_adv, b_ret = torch.from_numpy(advantages.reshape(-1)), torch.from_numpy(returns.reshape(-1))
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
                if args.norm_adv:  # per minibatch, as in baselines ppo2
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
        files.publish(run_metadata(args, code, start, time.time()))
    except BaseException:
        files.abandon()
        raise
    finally:
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
        args = parse_args(argv)
        train(args)
    except (UsageError, NonFiniteError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
