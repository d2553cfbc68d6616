"""The run contract every algorithm file keeps (docs/DESIGN.md §3-4), and nothing of RL.

vpg.py, trpo.py and ppo.py each hold their whole algorithm; this module holds the plumbing they
share: the command line built from an `Args` dataclass, the checks before any compute, the run
directory (lock, .partial files, --overwrite, publishing), run.json's metadata, the finiteness
checks, the progress log and its columns, and the code fingerprint that decides whether a
committed run is still current (experiments/code_versions.yaml).

It imports neither torch nor gymnasium at module level: analysis reads the columns from here
without them.
"""
import os
import signal
import sys

if os.path.dirname(os.path.abspath(sys.argv[0])) == os.path.dirname(os.path.abspath(__file__)):
    # an algorithm file run as a script imports this first: Ctrl-C during the slow imports that follow
    # (torch, gymnasium) ends the process quietly; main() hands Ctrl-C back to Python before any work
    def _interrupted_while_importing(*_):
        print("interrupted before it started: nothing written", file=sys.stderr)
        raise SystemExit(130)
    signal.signal(signal.SIGINT, _interrupted_while_importing)

import argparse
import contextlib
import copy
import csv
import dataclasses
import datetime
import difflib
import fcntl
import functools
import gzip
import hashlib
import io
import json
import math
import platform
import re
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field

import numpy as np

# ---------------------------------------------------------------- the files a run writes (docs/DESIGN.md §3)
PROGRESS_COLUMNS = ["algo", "env_id", "seed", "iteration", "global_step", "walltime_s", "sps", "rollout_s",
                    "update_s", "ep_count", "ep_return_mean", "ep_return_std", "ep_length_mean", "return_last100",
                    "policy_loss", "value_loss", "entropy", "approx_kl", "clip_frac", "kl_beta", "update_steps",
                    "early_stopped", "line_search_steps", "step_accepted", "explained_variance", "learning_rate",
                    "grad_norm"]
EPISODE_COLUMNS = ["global_step", "ep_return", "ep_length", "terminated"]
CLOCK_COLUMNS = ["walltime_s", "sps", "rollout_s", "update_s"]  # the only columns that differ between reruns
MAX_ENVS = 1024  # environments in one process, each with its own simulator


class UsageError(ValueError):
    """Bad input, reported as one line naming the flag, before any training."""


class NonFiniteError(RuntimeError):
    """A NaN or inf in training, reported with the iteration and the quantity."""


# ---------------------------------------------------------------- the command line, built from Args
def arg(default, help):
    """A dataclass field whose text is its --help."""
    return field(default=default, metadata={"help": help})


@dataclass
class RunArgs:
    """The flags every algorithm has; an algorithm's Args adds its own after these."""
    env_id: str = arg("HalfCheetah-v5", "gymnasium environment id (MuJoCo -v5 or classic control)")
    seed: int = arg(1, "root seed (>= 0); every random stream is derived from it. Several (--seed 1 2 3) train "
                       "one run each in this process, --out holding {seed}, e.g. runs/Hopper-v5/seed{seed}")
    total_timesteps: int = arg(1_000_000, "environment steps to train for, rounded down to whole batches "
                                          "(run.json: steps_trained) (paper: 1M)")
    out: str = arg("", "run directory (default: runs/<algo>/<env-id>/seed<seed>)")
    overwrite: bool = arg(False, "replace a finished run in --out; its files go only once the new run is complete")
    compress: bool = arg(False, "write progress.csv.gz and episodes.csv.gz (gzip; pandas reads them as they are)")
    num_envs: int = arg(1, "environments stepped in lockstep (paper: 1)")
    threads: int = arg(1, "torch intra-op threads (part of the determinism contract)")


def algo_name(script):
    """An algorithm's name is its file's: algorithms/ppo.py is ppo."""
    return os.path.splitext(os.path.basename(script))[0]


def flag(name):
    return "--" + name.replace("_", "-")


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line naming the flag (with a close match for a mistyped one)."""

    def error(self, message):
        unknown = re.match(r"unrecognized arguments: (\S+)", message)
        if unknown:
            given = unknown.group(1).split("=")[0]
            close = difflib.get_close_matches(given, [o for a in self._actions for o in a.option_strings], n=1)
            raise UsageError(f"{given}: no such flag" + (f" (did you mean {close[0]}?)" if close else ""))
        raise UsageError(re.sub(r"^argument ([^:]+): ", lambda m: m.group(1).split("/")[0] + ": ", message))


def parse_args(Args, argv=None, description=""):
    """Args from the command line: one flag per field, its text the help; booleans get --no-<flag>.
    A field whose default is None stays None unless given (an algorithm resolves it, e.g. ppo.py's regime)."""
    parser = _Parser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(Args):
        default = argparse.SUPPRESS if f.default is None else f.default
        if f.type is bool:
            parser.add_argument(flag(f.name), action=argparse.BooleanOptionalAction, default=default,
                                help=f.metadata["help"])
        else:
            parser.add_argument(flag(f.name), type=f.type, default=default, help=f.metadata["help"],
                                nargs="+" if f.name == "seed" else None)
    a = Args(**vars(parser.parse_args(argv)))
    return dataclasses.replace(a, seed=a.seed[0]) if isinstance(a.seed, list) and len(a.seed) == 1 else a


def seed_runs(a):
    """One Args per seed of --seed s1 s2 …, identical but for the seed and --out, whose {seed} becomes it."""
    seeds = a.seed if isinstance(a.seed, list) else [a.seed]
    need(len(set(seeds)) == len(seeds), "seed", f"names a seed twice: {' '.join(map(str, seeds))}")
    need(len(seeds) == 1 or not a.out or "{seed}" in a.out, "out",
         f"must contain {{seed}} when several seeds train (each seed is a run of its own), got {a.out!r}")
    return [dataclasses.replace(a, seed=s, out=a.out.replace("{seed}", str(s))) for s in seeds]


def main(train, validate, Args, argv=None, description="", seeds_at_once=False):
    """An algorithm file's entry point: bad input and NaN are one line and exit 2, a file system error
    (a full disk) one line and exit 1, Ctrl-C exit 130; none of them publishes anything. Several seeds
    are all validated first, then trained together (train(list of Args), seeds_at_once) or in turn."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        runs = seed_runs(parse_args(Args, argv, description))
        for a in runs:
            validate(a)
        for batch in [runs] if seeds_at_once else runs:
            train(batch)
    except (UsageError, NonFiniteError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:
        print(f"error: {e.filename or 'a file'}: {e.strerror or e} (nothing published)", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # leaving: a second Ctrl-C must not interrupt the exit
        print("interrupted: nothing published (the .partial files show how far it got)", file=sys.stderr)
        sys.exit(130)
    finally:
        while HELD_LOCKS:  # a run stopped between taking its lock and entering its `with` (asking git, say)
            HELD_LOCKS[-1].release()


# ---------------------------------------------------------------- checks before any compute
def need(ok, name, why):
    if not ok:
        raise UsageError(f"{flag(name)}: {why}")


def check_flags(a, positive=(), unit_interval=(), choices=None):
    """The cheap checks every run passes first, each a UsageError naming its flag: the environment id,
    choices, ranges, the seed."""
    need(a.env_id in _gym().registry, "env_id", f"unknown environment {a.env_id!r}")
    for name, allowed in (choices or {}).items():
        need(getattr(a, name) in allowed, name, f"must be one of {', '.join(allowed)}, got {getattr(a, name)!r}")
    for name in unit_interval:
        need(0.0 <= getattr(a, name) <= 1.0, name, f"must be in [0, 1], got {getattr(a, name)}")
    for name in tuple(positive) + ("total_timesteps", "num_envs", "threads"):
        value = getattr(a, name)
        need(math.isfinite(value) and value > 0, name, f"must be positive, got {value}")
    need(a.seed >= 0, "seed", f"must be >= 0, got {a.seed}")


def check_seeds(seeds, validate):
    """Several seeds' Args for one process: each passes validate, and all are alike but for --seed and --out."""
    for a in seeds:
        validate(a)
    need(all(dataclasses.replace(a, seed=0, out="") == dataclasses.replace(seeds[0], seed=0, out="") for a in seeds),
         "seed", "seeds trained at once must share every other flag")


def check_run(a, algo, batch, batch_name):
    """The checks every run passes last, before any compute: whole batches, the environment's spaces,
    this machine's limits, and --out. Touches nothing."""
    need(batch % a.num_envs == 0, batch_name, f"{batch} is not a multiple of --num-envs {a.num_envs}")
    need(a.total_timesteps >= batch, "total_timesteps", f"{a.total_timesteps} is less than one batch ({batch} steps)")
    obs_space, act_space = env_spaces(a.env_id, algo)
    check_machine(a, batch, batch_name, flat_dim(obs_space), flat_dim(act_space))
    check_out(a, algo)


@functools.cache
def env_spaces(env_id, algo="this algorithm"):
    """(observation space, action space) of env_id, or a UsageError naming the env and the space."""
    gym = _gym()
    try:
        env = quietly(lambda: gym.make(env_id))  # HalfCheetah's model makes MuJoCo warn
    except gym.error.DependencyNotInstalled as e:
        raise UsageError(f"--env-id: {env_id} needs an optional dependency: {str(e).splitlines()[0]}") from None
    obs_space, act_space = env.observation_space, env.action_space
    env.close()
    if not isinstance(obs_space, (gym.spaces.Box, gym.spaces.Discrete)):
        raise UsageError(f"--env-id: {env_id} has the observation space {obs_space}; "
                         f"{algo}.py supports Box and Discrete (one-hot encoded) observations")
    if not isinstance(act_space, (gym.spaces.Box, gym.spaces.Discrete)) or getattr(act_space, "start", 0) != 0:
        raise UsageError(f"--env-id: {env_id} has the action space {act_space}; "
                         f"{algo}.py supports Box and Discrete (starting at 0) actions")
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
    return int(space.n) if isinstance(space, _gym().spaces.Discrete) else int(np.prod(space.shape))


def observation_encoder(space):
    """raw observation → float64 vector: a Box flattened, a Discrete state one-hot (FrozenLake, Taxi)."""
    dim = flat_dim(space)
    if isinstance(space, _gym().spaces.Discrete):
        def one_hot(raw):
            x = np.zeros(dim)
            x[int(raw) - int(space.start)] = 1.0
            return x
        return one_hot
    return lambda raw: np.asarray(raw, dtype=np.float64).reshape(dim)


def check_machine(a, batch, batch_name, obs_dim, act_dim):
    """Threads, environments and batch memory within what this machine has."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    need(a.threads <= cpus, "threads", f"must be at most the {cpus} CPUs this process may use, got {a.threads}")
    need(a.num_envs <= MAX_ENVS, "num_envs", f"must be at most {MAX_ENVS}, got {a.num_envs}")
    per_step = 4 * (3 * obs_dim + 2 * act_dim) + 16384  # float32 buffers, plus a full-batch backward's activations
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    need(batch * per_step <= ram / 2, batch_name, f"a batch of {batch} steps needs about "
         f"{batch * per_step / 2**30:.1f} GiB, more than half of this machine's {ram / 2**30:.1f} GiB")


def run_dir(a, algo):
    return a.out or os.path.join("runs", algo, a.env_id, f"seed{a.seed}")


def check_out(a, algo):
    """--out can be made and written now (not after an hour of training) and holds no finished run.
    Leaves the file system as it found it: the probe is a scratch directory, removed at once."""
    out = run_dir(a, algo)
    existing = os.path.abspath(out)
    while not os.path.exists(existing):  # the nearest directory that exists: the run creates the rest
        existing = os.path.dirname(existing)
    try:
        if not os.path.isdir(existing):
            raise NotADirectoryError(20, "Not a directory")
        shutil.rmtree(tempfile.mkdtemp(dir=existing))
    except OSError as e:
        raise UsageError(f"--out: cannot write to {out!r} ({e.strerror})") from None
    need(a.overwrite or not os.path.exists(os.path.join(out, "run.json")), "out",
         f"{out} holds a finished run (run.json); pass --overwrite to replace it")


def check_finite(iteration, **quantities):
    """NonFiniteError naming the first quantity (a number, or a torch module's parameter) that is NaN or inf."""
    for name, value in quantities.items():
        if hasattr(value, "named_parameters"):
            for pname, p in value.named_parameters():
                if not p.isfinite().all():
                    raise NonFiniteError(f"iteration {iteration}: parameter {name}.{pname} is not finite")
        elif not math.isfinite(value):
            raise NonFiniteError(f"iteration {iteration}: {name} is {value}")


# ---------------------------------------------------------------- seeding (docs/DESIGN.md §4)
def seed_streams(seed, threads):
    """One root seed → independent streams: the environments' first resets, network initialisation
    (torch's global generator), action noise and minibatch shuffles. torch runs on `threads` threads."""
    import torch
    torch.set_num_threads(threads)
    env_seeds, init_seed, act_seed, shuffle_seed = np.random.SeedSequence(seed).spawn(4)
    torch.manual_seed(int(init_seed.generate_state(1)[0]))
    return env_seeds, np.random.default_rng(act_seed), np.random.default_rng(shuffle_seed)


# ---------------------------------------------------------------- the environments (docs/DESIGN.md §5)
class Rollout:
    """N environments stepped in lockstep, and the (T, N) batch the current policy collects in them each
    iteration, much as gymnasium's SyncVectorEnv would, but keeping what an algorithm needs to treat episode
    ends right: terminated (the MDP ended) apart from ends (it ended, by termination or time limit), and
    next_obs_t the real successor, the final observation when the episode ended there.

    The algorithm brings its own observation normaliser, called on each encoded observation before it is
    used, and, if it scales rewards, its reward scaler, called as scale_reward(r, env index, done). A
    normaliser whose statistics move once per batch (ppo.py's ppo1 filter) also has rollout_start(raw, obs),
    the observations to act on at a rollout's start, and batch(raw, obs), those the update trains on
    (`train_obs`; otherwise the observations as the rollout saw them). Episodes are reported in raw
    reward, as (global_step, return, length, terminated)."""

    def __init__(self, envs, env_seeds, T, normalise_obs, scale_reward=None):
        obs_space, act_space = envs[0].observation_space, envs[0].action_space
        self.envs, self.normalise_obs, self.scale_reward = envs, normalise_obs, scale_reward
        self.encode, self.discrete = observation_encoder(obs_space), isinstance(act_space, _gym().spaces.Discrete)
        self.low, self.high = (None, None) if self.discrete else (act_space.low, act_space.high)
        N, dim, act_shape = len(envs), flat_dim(obs_space), () if self.discrete else act_space.shape
        self.obs, self.next_obs = np.zeros((T, N, dim), np.float32), np.zeros((T, N, dim), np.float32)
        self.per_batch = hasattr(normalise_obs, "batch")  # statistics that move once per batch (ppo1's filter)
        self.raw_obs = np.zeros((T, N, dim)) if self.per_batch else None  # encoded, not normalised: what it learns from
        self.actions = np.zeros((T, N) + act_shape, np.float32)
        self.rewards, self.terminated, self.ends = (np.zeros((T, N), np.float32) for _ in range(3))
        self.raw_now = np.stack([self.encode(env.reset(seed=int(s))[0]) for env, s in
                                 zip(envs, env_seeds.generate_state(N))])  # seeded once, at the first reset
        self.obs_now = np.stack([normalise_obs(x) for x in self.raw_now]).astype(np.float32)
        self.ep_return, self.ep_length, self.global_step = np.zeros(N), np.zeros(N, int), 0

    def collect(self, act, rng):
        """Fill the batch, acting with act(obs, rng) → actions; returns the episodes that ended in it, and
        the seconds it took."""
        start, obs, raw, episodes, per_batch = time.time(), self.obs_now, self.raw_now, [], self.per_batch
        if per_batch:
            obs[:] = self.normalise_obs.rollout_start(raw, obs)
        for t in range(len(self.obs)):
            self.obs[t] = obs
            if per_batch:
                self.raw_obs[t] = raw
            self.actions[t] = action = act(obs, rng)
            for i, env in enumerate(self.envs):
                # the env gets the clipped action; the buffer keeps the sampled one (Huang et al. 2022)
                env_action = int(action[i]) if self.discrete else np.minimum(np.maximum(action[i], self.low), self.high)
                raw_next, reward, terminated, truncated, _ = env.step(env_action)
                self.global_step += 1
                self.ep_return[i] += reward
                self.ep_length[i] += 1
                done = terminated or truncated
                self.rewards[t, i] = self.scale_reward(reward, i, done) if self.scale_reward else reward
                self.terminated[t, i], self.ends[t, i] = terminated, done
                x = self.encode(raw_next)
                self.next_obs[t, i] = self.normalise_obs(x)  # the real final observation if done
                if done:
                    episodes.append((self.global_step, float(self.ep_return[i]), int(self.ep_length[i]), int(terminated)))
                    self.ep_return[i], self.ep_length[i] = 0.0, 0
                    x = self.encode(env.reset()[0])
                    obs[i] = self.normalise_obs(x)
                else:
                    obs[i] = self.next_obs[t, i]
                if per_batch:
                    raw[i] = x
        self.train_obs = self.normalise_obs.batch(self.raw_obs, self.obs) if per_batch else self.obs
        return episodes, time.time() - start


# ---------------------------------------------------------------- speed: the same numbers in fewer operations
# For 64×64 networks torch's per-call overhead costs more than the arithmetic. These do what torch.optim.Adam,
# nn.utils.clip_grad_norm_ and the torch forward do (tests/test_speed_equivalence.py), in fewer operations.
def flat_parameters(module):
    """Re-home all of module's parameters (and their gradients) as views of one flat tensor.
    The optimiser step, the gradient norm and the zeroing then cost one operation each instead
    of one per weight matrix; the mathematics is unchanged (Adam is elementwise). backward()
    accumulates into the existing .grad views in place, so the flat gradient is always current."""
    import torch
    import torch.nn as nn
    params = list(module.parameters())
    flat = nn.Parameter(torch.cat([p.detach().reshape(-1) for p in params]))
    flat.grad = torch.zeros_like(flat)
    offset = 0
    for p in params:
        p.data = flat.data[offset:offset + p.numel()].view_as(p)
        p.grad = flat.grad[offset:offset + p.numel()].view_as(p)
        offset += p.numel()
    return flat


def seed_parameters(modules, batch_axis=()):
    """K seeds' copies of one network re-homed in one (K, P) tensor, row k holding copy k's parameters in
    flat_parameters' order (each copy keeps working on views of its row). Returns the tensor and, for every
    parameter, a leaf view across the seeds of shape (K, *shape), or (K, 1, *shape) for those named in
    batch_axis (log σ, broadcast over a batch), whose gradients are views of the tensor's gradient: a
    computation over all seeds at once fills every row's gradient, and each row is its seed's alone."""
    import torch
    import torch.nn as nn
    import warnings
    # the views are strided across seeds, so backward() warns that it cannot use its fastest layout; it still
    # accumulates into them in place, which is what counts here
    warnings.filterwarnings("ignore", "grad and param do not obey the gradient layout contract")
    K, named = len(modules), list(modules[0].named_parameters())
    flat = nn.Parameter(torch.stack([torch.cat([p.detach().reshape(-1) for p in m.parameters()]) for m in modules]))
    flat.grad, stacked, offset = torch.zeros_like(flat), {}, 0
    for i, (name, p) in enumerate(named):
        columns, shape = slice(offset, offset + p.numel()), (K,) + ((1,) if name in batch_axis else ()) + p.shape
        for k, m in enumerate(modules):
            list(m.parameters())[i].data = flat.data[k, columns].view_as(p)
        stacked[name] = nn.Parameter(flat.data[:, columns].view(shape))
        stacked[name].grad = flat.grad[:, columns].view(shape)
        offset += p.numel()
    return flat, stacked


class Adam:
    """Adam (Kingma & Ba 2015, Algorithm 1) on one flat parameter tensor, in the form torch.optim.Adam
    computes it; a few tensor operations per step instead of torch.optim's per-call bookkeeping,
    which costs more than the arithmetic for a 64×64 network (tested equal to torch.optim.Adam).
    A (K, P) tensor holds K seeds' parameters: each row is its own Adam, with its own step count."""

    def __init__(self, flat, lr, eps, betas=(0.9, 0.999)):
        self.flat, self.lr, self.eps, (self.beta1, self.beta2) = flat, lr, eps, betas
        self.m, self.v = flat.new_zeros(flat.shape), flat.new_zeros(flat.shape)  # 1st and 2nd moments
        self.t = [0] * (len(flat) if flat.dim() == 2 else 1)  # steps taken, per row

    def step(self, rows=None):
        """One step of every row, or only of the rows where `rows` is true: the others keep θ, m, v and t."""
        import torch
        stepping = [True] * len(self.t) if rows is None else [bool(r) for r in rows]
        self.t = [t + s for t, s in zip(self.t, stepping)]
        t, every = [t for t, s in zip(self.t, stepping) if s], all(stepping)
        pick = slice(None) if every else torch.tensor(stepping)
        column = (lambda x: torch.tensor(x).unsqueeze(-1)) if self.flat.dim() == 2 else (lambda x: torch.tensor(x))
        theta, g, m, v = (x[pick] for x in (self.flat.data, self.flat.grad, self.m, self.v))  # views when every
        m.lerp_(g, 1 - self.beta1)                                                   # m ← β1 m + (1 − β1) g
        v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)                      # v ← β2 v + (1 − β2) g²
        denom = (v.sqrt() / column([math.sqrt(1 - self.beta2 ** n) for n in t])).add_(self.eps)  # √v̂ + ε
        theta.add_(column([-self.lr / (1 - self.beta1 ** n) for n in t]) * m / denom)  # θ ← θ − α m̂ / (√v̂ + ε)
        if not every:  # copies: put the stepped rows back
            self.flat.data[pick], self.m[pick], self.v[pick] = theta, m, v


def clip_grad_norm(flat, max_norm):
    """Scale the flat gradient to L2 norm ≤ max_norm (as nn.utils.clip_grad_norm_), each row of a (K, P) tensor
    on its own; returns the norms before."""
    norm = flat.grad.norm(dim=-1, keepdim=True)
    flat.grad.mul_((max_norm / (norm + 1e-6)).clamp(max=1.0))
    return norm.squeeze(-1)


def numpy_mlp(weights):
    """A tanh MLP's forward pass in numpy, over views of its ((weight, bias), ...) parameters (valid while
    they are updated in place): the acting path, without autograd or torch's per-call cost (tested equal)."""
    layers = [(w.detach().numpy().T, b.detach().numpy()) for w, b in weights]

    def forward(x):
        for w, b in layers[:-1]:
            x = np.tanh(x @ w + b)
        return x @ layers[-1][0] + layers[-1][1]
    return forward


# ---------------------------------------------------------------- several seeds at once (docs/DESIGN.md §4)
@functools.cache
def _seed_axis_modules():
    """SeedsMLP, made on first use (this module imports torch only inside functions)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class SeedsLinear(torch.autograd.Function):
        """y_k = x_k W_kᵀ + b_k for K seeds at once (x (K, batch, in), W (K, out, in)), its backward written out
        with g = ∂L/∂y: ∂x_k = g_k W_k, ∂W_k = g_kᵀ x_k, ∂b_k = Σ_batch g_k, in nn.Linear's own operand order.
        Autograd's batched ∂W_k = (x_kᵀ g_k)ᵀ rounds differently on some CPUs (docs/NOTEBOOK.md); a seed's bits
        must be its own."""

        @staticmethod
        def forward(ctx, x, w, b):
            ctx.save_for_backward(x, w)
            return torch.baddbmm(b.unsqueeze(1), x, w.mT)

        @staticmethod
        def backward(ctx, g):
            x, w = ctx.saved_tensors
            return g.bmm(w) if ctx.needs_input_grad[0] else None, g.mT.bmm(x), g.sum(1)

    class SeedsMLP(nn.Module):
        """K seeds' copies of one tanh MLP as one: weights (K, out, in), x (K, batch, in) → (K, batch, out). Each
        seed's numbers are exactly its own MLP's (tests/test_ppo_seeds.py): a SeedsLinear per layer, but seed by
        seed for a layer of width 1 (V's head, a 1-D action's mean), which torch computes for one network as a
        matrix-vector product, whose bits a batched matmul does not reproduce."""

        def __init__(self, weights):
            super().__init__()
            self.weights = weights

        def forward(self, x):
            for i, (w, b) in enumerate(self.weights):
                x = (SeedsLinear.apply(x, w, b) if w.shape[1] > 1
                     else torch.stack([F.linear(x_k, w_k, b_k) for x_k, w_k, b_k in zip(x, w, b)]))
                x = torch.tanh(x) if i < len(self.weights) - 1 else x
            return x
    return SeedsMLP


def seeds_as_one(nets):
    """(module, (K, P) parameters) computing K seeds' copies of a network at once, the seed axis first. nets:
    K copies of a tanh MLP (an nn.Sequential of Linear and Tanh layers), or of a policy whose children are such
    MLPs and whose own parameters (log σ) broadcast over the batch; for a policy, a copy of nets[0] whose MLPs
    are SeedsMLPs and whose log σ is (K, 1, ·). Each copy keeps acting on its own row of the parameters."""
    import torch.nn as nn
    SeedsMLP = _seed_axis_modules()
    flat, stacked = seed_parameters(nets, batch_axis=[name for name, _ in nets[0].named_parameters(recurse=False)])

    def mlp(module, prefix):
        return SeedsMLP(tuple((stacked[f"{prefix}{i}.weight"], stacked[f"{prefix}{i}.bias"])
                              for i, layer in enumerate(module) if isinstance(layer, nn.Linear)))
    if isinstance(nets[0], nn.Sequential):
        return mlp(nets[0], ""), flat
    one = copy.deepcopy(nets[0])
    for name, child in nets[0].named_children():
        setattr(one, name, mlp(child, name + "."))
    for name, _ in nets[0].named_parameters(recurse=False):
        setattr(one, name, stacked[name])
    return one, flat

# ---------------------------------------------------------------- the run directory
class Busy(Exception):
    """The directory's lock is held by another process, whose pid is `owner`."""

    def __init__(self, owner):
        super().__init__(owner)
        self.owner = owner


class DirLock:
    """An exclusive lock on <directory>/.lock, held until release() and released by the OS however the
    process ends; the file holds the owner's pid. A symlink at .lock is refused, never followed (a pull
    request can plant one: it would make us write into its target). Raises Busy when another process
    holds it, and OSError (ELOOP for a symlink) when it cannot be opened."""

    def __init__(self, directory):
        self.path = os.path.join(directory, ".lock")
        with ctrl_c_deferred():  # made and held, or neither: a Ctrl-C here waits until HELD_LOCKS lists it
            while True:  # lock the file that is at path now: an owner that finishes removes it
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
                self.file = os.fdopen(fd, "r+")
                try:
                    fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    owner = self.file.read().strip() or "unknown"
                    self.file.close()
                    raise Busy(owner) from None
                if self.holds_path():
                    break
                self.file.close()  # we locked a file its owner had just removed: try again
            HELD_LOCKS.append(self)
        self.file.truncate()
        self.file.write(f"{os.getpid()}\n")
        self.file.flush()

    def holds_path(self):
        try:
            return os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(self.file.fileno()).st_ino
        except FileNotFoundError:
            return False

    def release(self):
        if self not in HELD_LOCKS:
            return
        if self.holds_path():  # still holding the lock, so no one can be waiting on this file
            os.remove(self.path)
        self.file.close()  # releases the lock
        HELD_LOCKS.remove(self)


HELD_LOCKS = []  # this process's DirLocks: main() releases those of runs that Ctrl-C stopped before their `with`


@contextlib.contextmanager
def ctrl_c_deferred():
    """Ctrl-C inside the block takes effect when it ends (Python runs signal handlers in the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            signal.raise_signal(signal.SIGINT)  # now, to the handler it would have reached


def exchange(a, b):
    """Swap two directories in one step: Linux renameat2(RENAME_EXCHANGE). A reader, or a kill at any
    moment, sees either both as they were or both swapped."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(-100, os.fsencode(a), -100, os.fsencode(b), 2) != 0:  # AT_FDCWD, RENAME_EXCHANGE
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), b)


class RunFiles:
    """The run directory and its files, owned by this run from start to end.

    One writer: DirLock on <out>/.lock for the run's life; a second run on the same directory stops with
    the owner's pid. Nothing looks complete until it is: the CSVs (floats to 8 significant digits, gzipped
    with --compress) are written as '.partial' files, so a directory holds a finished run exactly when it
    holds run.json. A finished run already there is refused unless --overwrite, and is never touched
    while the new one runs. publish() builds the new run whole in a scratch directory beside --out and
    swaps the two directories in one step (exchange): a kill at any moment leaves --out holding either the
    old finished run or the new one, never a mixture and never neither."""

    def __init__(self, out, overwrite, compress):
        self.out = out
        try:
            if os.path.islink(out):
                raise OSError(40, "a symbolic link; give the directory itself", out)
            os.makedirs(out, exist_ok=True)
            self.lock = DirLock(out)
        except Busy as busy:
            raise UsageError(f"--out: {out} is in use by another run (pid {busy.owner})") from None
        except OSError as e:
            why = "its .lock is a symbolic link, which is never followed" if e.errno == 40 and os.path.islink(
                os.path.join(out, ".lock")) else e.strerror
            raise UsageError(f"--out: cannot use {out!r} ({why})") from None
        if not overwrite and os.path.exists(os.path.join(out, "run.json")):  # appeared since the checks
            self.close()
            raise UsageError(f"--out: {out} holds a finished run (run.json); pass --overwrite to replace it")
        parent, name = os.path.split(os.path.abspath(out))
        for leftover in (f for f in os.listdir(parent) if f.startswith(f".{name}.publish-")):
            shutil.rmtree(os.path.join(parent, leftover), ignore_errors=True)  # a killed publish's: we own `out`
        self.staging = os.path.join(parent, f".{name}.publish-{os.getpid()}")
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
        for f in self.files.values():
            f.close()
        os.mkdir(self.staging)  # the new run, whole, beside --out
        for name, file_name in self.names.items():
            os.replace(os.path.join(self.out, file_name + ".partial"), os.path.join(self.staging, file_name))
        with open(os.path.join(self.staging, "run.json"), "w") as f:
            json.dump(meta, f, indent=2)
        exchange(self.staging, self.out)  # one step: --out now holds the new run; staging the old one
        shutil.rmtree(self.staging)  # the old run, and the .lock this process still holds

    def abandon(self):
        for f in self.files.values():
            f.close()

    def close(self):
        self.lock.release()


class Run:
    """One training run, as a context manager: it owns --out from the start (RunFiles), logs each
    iteration (progress.csv, episodes.csv, a progress line) and publishes run.json at the end.
    Leaving it by an exception publishes nothing; environments made through it are closed either way."""

    def __init__(self, algo, script, args, quiet=False, seeds_in_process=None):
        self.algo, self.args, self.quiet, self.out = algo, args, quiet, run_dir(args, algo)
        self.seeds_in_process = seeds_in_process or [args.seed]  # trained at once: they share the wall time
        self.files = RunFiles(self.out, args.overwrite, args.compress)  # before any compute
        self.start, self.code = time.time(), code_version(script)
        self.episode_returns, self.envs, self.failed, self.ended = [], [], None, False

    def __enter__(self):
        return self

    def fail(self, error):
        """End this run now, unpublished, as leaving it by `error` would (one of several seeds in a process)."""
        self.failed = error
        self.__exit__(type(error), error, None)

    def __exit__(self, kind, error, traceback):
        # a second Ctrl-C (a terminal signals the whole process group, and experiments/job.py passes it on
        # too) must not cut the clean-up short and leave the lock file behind
        if self.ended:
            return
        self.ended = True
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            if kind is not None:
                self.files.abandon()
            self.files.close()
            for env in self.envs:
                env.close()
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)

    def make_envs(self, env_id, n):
        self.envs = [quietly(lambda: _gym().make(env_id)) for _ in range(n)]  # MuJoCo's C-level warnings
        return self.envs

    def iterations(self, batch_size):
        """Whole batches in --total-timesteps; a rounded step count is said once, here."""
        self.num_iterations, self.batch_size = self.args.total_timesteps // batch_size, batch_size
        steps = self.num_iterations * batch_size
        if steps != self.args.total_timesteps and not self.quiet:
            print(f"{self.algo}: training {steps:,} steps, --total-timesteps {self.args.total_timesteps:,} rounded "
                  f"down to whole batches of {batch_size}", flush=True)
        return self.num_iterations

    def log(self, iteration, global_step, new_episodes, rollout_s, update_s, **stats):
        """One progress row (stats by column name, NaN where a column does not apply) and the episodes
        finished in this iteration (global_step, return, length, terminated), in raw reward."""
        self.episode_returns += [e[1] for e in new_episodes]
        returns_now, nan = np.array([e[1] for e in new_episodes]), float("nan")
        row = dict(algo=self.algo, env_id=self.args.env_id, seed=self.args.seed, iteration=iteration,
                   global_step=global_step, walltime_s=time.time() - self.start,
                   sps=self.batch_size / (rollout_s + update_s), rollout_s=rollout_s, update_s=update_s,
                   ep_count=len(new_episodes),
                   ep_return_mean=float(returns_now.mean()) if len(returns_now) else nan,
                   ep_return_std=float(returns_now.std()) if len(returns_now) else nan,
                   ep_length_mean=float(np.mean([e[2] for e in new_episodes])) if new_episodes else nan,
                   return_last100=float(np.mean(self.episode_returns[-100:])) if self.episode_returns else nan,
                   **stats)
        if unknown := row.keys() - set(PROGRESS_COLUMNS):
            raise KeyError(f"not progress columns: {sorted(unknown)}")
        self.files.write("progress", [[row.get(c, nan) for c in PROGRESS_COLUMNS]])
        self.files.write("episodes", new_episodes)
        if not self.quiet:
            self.report(iteration, global_step, row)

    def report(self, iteration, step, row):
        total = self.num_iterations
        eta = row["walltime_s"] / iteration * (total - iteration)
        line = (f"iter {iteration}/{total}  step {step}  sps {row['sps']:,.0f}  return(last100) "
                f"{row['return_last100']:.1f}  eta {eta / 60:.0f} min")
        if sys.stdout.isatty():
            print("\r" + line, end="\n" if iteration == total else "", flush=True)
        elif iteration % max(1, total // 20) == 0 or iteration == total:
            print(line, flush=True)

    def publish(self):
        meta = run_metadata(self.algo, self.args, self.code, self.start, time.time(), self.num_iterations * self.batch_size)
        self.files.publish(dict(meta, seeds_in_process=self.seeds_in_process))


# ---------------------------------------------------------------- run.json and the code fingerprint
def publish_all(runs):
    """Publish every run of a process that did not fail; then, if one failed, raise its error, naming the seed."""
    for run in runs:
        if not run.failed:
            run.publish()
    if failed := [run for run in runs if run.failed]:
        raise NonFiniteError("; ".join(f"seed {run.args.seed}: {run.failed} (nothing published for it)" for run in failed))


def file_sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def code_fingerprint(script):
    """What a run's numbers depend on in this repository: the algorithm file and this module. The sha256
    of their two sha256s; experiments/code_versions.yaml lists which fingerprints compute the same numbers."""
    parts = [file_sha256(script), file_sha256(__file__)]
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def code_version(script):
    """The git commit, whether the code differs from it, and the code's hashes (taken at start)."""
    script = os.path.abspath(script)

    def git(*cmd):
        try:
            return subprocess.run(["git", *cmd], cwd=os.path.dirname(script), capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except OSError:
            return ""
    return {"git_commit": git("rev-parse", "HEAD"),
            "git_dirty": bool(git("status", "--porcelain", "--", script, os.path.abspath(__file__))),
            "script_sha256": file_sha256(script), "contract_sha256": file_sha256(__file__),
            "code_sha256": code_fingerprint(script)}


def versions():
    import gymnasium
    import torch
    try:
        import mujoco
        mujoco_version = mujoco.__version__
    except ImportError:
        mujoco_version = None
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "gymnasium": gymnasium.__version__, "mujoco": mujoco_version}


def cpu_model():
    """This machine's CPU model (run.json's `cpu`): /proc/cpuinfo's model name, else platform.processor()."""
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
        if model:
            return model
    return platform.processor()


def run_metadata(algo, args, code, start, end, steps_trained):
    import torch
    return {"algo": algo, "args": dataclasses.asdict(args), "seed": args.seed, "steps_trained": steps_trained,
            "versions": versions(), **code, "threads": torch.get_num_threads(), "cpu": cpu_model(),
            "hostname": platform.node(),
            "start_time": datetime.datetime.fromtimestamp(start, datetime.timezone.utc).isoformat(),
            "end_time": datetime.datetime.fromtimestamp(end, datetime.timezone.utc).isoformat(),
            "walltime_s": end - start, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "exit_status": "success"}


def _gym():
    import gymnasium
    return gymnasium
