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
VPG). Networks are those of ppo.py: 64×64 tanh, state-independent log σ.

Run: python algorithms/vpg.py --env-id CartPole-v1 --weight reward_to_go --out runs/vpg/CartPole-v1/seed1
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

ALGO = "vpg"
WEIGHTS = ("total_return", "reward_to_go", "value_baseline", "gae")


def arg(default, help):
    return field(default=default, metadata={"help": help})


@dataclass
class Args:
    env_id: str = arg("HalfCheetah-v5", "gymnasium environment id (MuJoCo -v5 or classic control)")
    seed: int = arg(1, "root seed (>= 0); every random stream is derived from it")
    total_timesteps: int = arg(1_000_000, "environment steps to train for, rounded down to whole batches "
                                          "(run.json: steps_trained) (paper: 1M)")
    out: str = arg("", "run directory (default: runs/vpg/<env-id>/seed<seed>)")
    overwrite: bool = arg(False, "replace a finished run in --out; its files go only once the new run is complete")
    compress: bool = arg(False, "write progress.csv.gz and episodes.csv.gz (gzip; pandas reads them as they are)")
    num_envs: int = arg(1, "environments stepped in lockstep (paper: 1)")
    threads: int = arg(1, "torch intra-op threads (part of the determinism contract)")
    weight: str = arg("gae", "policy-gradient weight Φ_t: total_return | reward_to_go | value_baseline | gae")
    batch_size: int = arg(4000, "environment steps per policy update, over all envs (Spinning Up: 4000)")
    pi_lr: float = arg(3e-4, "Adam step size of the policy (Spinning Up)")
    vf_lr: float = arg(1e-3, "Adam step size of the value function (Spinning Up)")
    train_v_iters: int = arg(80, "full-batch value regression steps per iteration (Spinning Up)")
    gamma: float = arg(0.99, "discount γ")
    gae_lambda: float = arg(0.97, "GAE parameter λ (Spinning Up: 0.97)")
    norm_obs: bool = arg(False, "normalise observations by a running mean/std, then clip (off in Spinning Up)")
    obs_clip: float = arg(10.0, "clip normalised observations to ±this")
    scale_rewards: bool = arg(False, "divide rewards by the running std of the discounted return")
    reward_clip: float = arg(10.0, "clip scaled rewards to ±this")
    norm_adv: bool = arg(False, "standardise Φ over the batch (off: it would act as a baseline for total_return)")
    ortho_init: bool = arg(True, "orthogonal init: gain √2 hidden, 0.01 policy head, 1 value head")
    bootstrap_truncation: bool = arg(True, "bootstrap V(final obs) at time-limit truncations (docs/DESIGN.md §5)")


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
    need(a.weight in WEIGHTS, "weight", f"must be one of {', '.join(WEIGHTS)}, got {a.weight!r}")
    for name in ("gamma", "gae_lambda"):
        need(0.0 <= getattr(a, name) <= 1.0, name.replace("_", "-"), f"must be in [0, 1], got {getattr(a, name)}")
    for name in ("pi_lr", "vf_lr", "obs_clip", "reward_clip", "total_timesteps", "batch_size", "num_envs",
                 "train_v_iters", "threads"):
        value = getattr(a, name)
        need(math.isfinite(value) and value > 0, name.replace("_", "-"), f"must be positive, got {value}")
    need(a.batch_size % a.num_envs == 0, "batch-size", f"{a.batch_size} is not a multiple of --num-envs {a.num_envs}")
    need(a.total_timesteps >= a.batch_size, "total-timesteps", f"{a.total_timesteps} is less than one batch ({a.batch_size} steps)")
    need(a.seed >= 0, "seed", f"must be >= 0, got {a.seed}")
    obs_space, act_space = env_spaces(a.env_id)
    check_machine(need, a, a.batch_size, "batch-size", flat_dim(obs_space), flat_dim(act_space))
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
    truncated cuts the recursion, so it never crosses an episode boundary (docs/DESIGN.md §5).
    Returns (advantages, value targets = advantages + values)."""
    advantages = np.zeros_like(rewards)
    next_advantage = np.zeros_like(rewards[0])
    for t in reversed(range(len(rewards))):
        delta = rewards[t] + gamma * (1.0 - terminated[t]) * next_values[t] - values[t]
        next_advantage = delta + gamma * lam * (1.0 - episode_end[t]) * next_advantage
        advantages[t] = next_advantage
    return advantages, advantages + values


# ---------------------------------------------------------------- networks
def mlp(n_in, n_out, out_gain, ortho, hidden=64):
    layers = [nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, n_out)]
    if ortho:
        for layer, gain in zip(layers[::2], (math.sqrt(2), math.sqrt(2), out_gain)):
            nn.init.orthogonal_(layer.weight, gain)
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


def numpy_mlp(net):
    """The MLP as a numpy function over views of its current weights (valid while they are updated in place)."""
    layers = [(m.weight.detach().numpy().T, m.bias.detach().numpy()) for m in net if isinstance(m, nn.Linear)]

    def forward(x):
        for w, b in layers[:-1]:
            x = np.tanh(x @ w + b)
        return x @ layers[-1][0] + layers[-1][1]
    return forward


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
        return lambda obs, rng: (mean(obs) + std * rng.standard_normal(std.shape[0] * len(obs)).reshape(len(obs), -1)).astype(np.float32)


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
    """Train VPG as configured; returns the run directory. Raises UsageError on bad input.
    on_batch(dict of the iteration's (T, N) arrays), if given, sees each batch (tests use it)."""
    validate(args)
    out = args.out or default_out(args)
    files, envs = RunFiles(out, args.overwrite, args.compress), []  # this run owns --out from here on, before any compute
    try:
        torch.set_num_threads(args.threads)
        start, code = time.time(), code_version()

        # One root seed → independent streams (docs/DESIGN.md §4): envs, network init, action noise, minibatch shuffles.
        env_seeds, init_seed, act_seed, shuffle_seed = np.random.SeedSequence(args.seed).spawn(4)
        torch.manual_seed(int(init_seed.generate_state(1)[0]))
        act_rng, shuffle_rng = np.random.default_rng(act_seed), np.random.default_rng(shuffle_seed)
        envs = [gym.make(args.env_id) for _ in range(args.num_envs)]
        obs_space, act_space = env_spaces(args.env_id)
        obs_dim, encode = flat_dim(obs_space), observation_encoder(obs_space)
        discrete = isinstance(act_space, gym.spaces.Discrete)
        if discrete:
            policy = CategoricalPolicy(obs_dim, int(act_space.n), args.ortho_init)
            act_shape = ()
        else:
            policy = GaussianPolicy(obs_dim, int(np.prod(act_space.shape)), args.ortho_init)
            act_shape = act_space.shape
        value_fn = mlp(obs_dim, 1, 1.0, args.ortho_init)
        uses_value = args.weight in ("value_baseline", "gae")
        pi_opt = torch.optim.Adam(policy.parameters(), lr=args.pi_lr, fused=True)
        v_opt = torch.optim.Adam(value_fn.parameters(), lr=args.vf_lr, fused=True)

        low, high = (None, None) if discrete else (act_space.low, act_space.high)
        obs_rms, ret_rms = RunningMeanStd(obs_dim), RunningMeanStd()
        discounted_return = [0.0] * args.num_envs

        def normalise_obs(raw):  # raw: an encoded observation
            if not args.norm_obs:
                return raw
            obs_rms.update(raw)
            return np.clip((raw - obs_rms.mean) / np.sqrt(obs_rms.var + 1e-8), -args.obs_clip, args.obs_clip)

        def scale_reward(r, i, done):
            # divide by the running std of the discounted return γR_{t-1} + r_t (Engstrom et al. 2020 §3)
            if not args.scale_rewards:
                return r
            discounted_return[i] = discounted_return[i] * args.gamma + r
            ret_rms.update(discounted_return[i])
            if done:
                discounted_return[i] = 0.0
            return min(max(r / math.sqrt(ret_rms.var + 1e-8), -args.reward_clip), args.reward_clip)

        T, N = args.batch_size // args.num_envs, args.num_envs
        batch_size, num_iterations = T * N, args.total_timesteps // (T * N)
        obs_buf = np.zeros((T, N, obs_dim), np.float32)
        next_obs_buf = np.zeros((T, N, obs_dim), np.float32)
        act_buf = np.zeros((T, N) + act_shape, np.float32)
        rew_buf, term_buf, end_buf = (np.zeros((T, N), np.float32) for _ in range(3))

        obs = np.stack([normalise_obs(encode(env.reset(seed=int(s))[0])) for env, s in
                        zip(envs, env_seeds.generate_state(N))]).astype(np.float32)  # seeded once, at the first reset
        ep_return, ep_length = np.zeros(N), np.zeros(N, int)
        episode_returns, global_step = [], 0
        for iteration in range(1, num_iterations + 1):
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
                    next_obs_buf[t, i] = normalise_obs(encode(raw_next))  # the real final observation if done
                    if done:
                        new_episodes.append((global_step, float(ep_return[i]), int(ep_length[i]), int(terminated)))
                        ep_return[i], ep_length[i] = 0.0, 0
                        obs[i] = normalise_obs(encode(env.reset()[0]))
                    else:
                        obs[i] = next_obs_buf[t, i]
            rollout_s = time.time() - t0

            # ---- weights Φ_t, with V evaluated in one batch over the rollout
            t0 = time.time()
            b_obs, b_act = torch.from_numpy(obs_buf.reshape(batch_size, obs_dim)), torch.from_numpy(act_buf.reshape((batch_size,) + act_shape))
            with torch.no_grad():
                values = value_fn(b_obs).squeeze(-1).numpy().reshape(T, N)
                next_values = value_fn(torch.from_numpy(next_obs_buf)).squeeze(-1).numpy()
            weights = pg_weights(args.weight, rew_buf, values, next_values, term_buf, end_buf, args.gamma, args.gae_lambda)
            # value targets: rewards-to-go bootstrapped with V at truncations and at the batch end
            returns = gae(rew_buf, values, next_values, term_buf, end_buf, args.gamma, 1.0)[1]
            if on_batch:
                on_batch(dict(obs=obs_buf, next_obs=next_obs_buf, actions=act_buf, rewards=rew_buf, terminated=term_buf,
                              ends=end_buf, values=values, next_values=next_values, weights=weights, returns=returns))
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

            # ---- log
            check_finite(iteration, policy_loss=pi_loss.item(), value_loss=value_loss if uses_value else 0.0,
                         approx_kl=approx_kl, policy=policy, value_function=value_fn)
            episode_returns += [e[1] for e in new_episodes]
            returns_now = np.array([e[1] for e in new_episodes])
            walltime = time.time() - start
            row = [ALGO, args.env_id, args.seed, iteration, global_step, walltime, batch_size / (rollout_s + update_s),
                   rollout_s, update_s, len(new_episodes),
                   float(returns_now.mean()) if len(returns_now) else float("nan"),
                   float(returns_now.std()) if len(returns_now) else float("nan"),
                   float(np.mean([e[2] for e in new_episodes])) if new_episodes else float("nan"),
                   float(np.mean(episode_returns[-100:])) if episode_returns else float("nan"),
                   pi_loss.item(), value_loss, entropy, approx_kl, float("nan"), float("nan"), 1,
                   float("nan"), float("nan"), float("nan"), float(explained_var), args.pi_lr, grad_norm]
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
