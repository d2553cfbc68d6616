"""Trust Region Policy Optimization, one readable file.

Schulman, Levine, Moritz, Jordan, Abbeel (2015), "Trust Region Policy Optimization", ICML,
arXiv:1502.05477, with GAE(λ) advantages (Schulman et al. 2016, eq. 16). Each iteration solves

    maximise_θ  L(θ) = E_t[ π_θ(a_t|s_t) / π_old(a_t|s_t) · Â_t ]
    subject to  KL̄(θ) = E_t[ KL[π_old(·|s_t) ‖ π_θ(·|s_t)] ] ≤ δ                  (§4, eq. 12)

approximately (§6, App. C):
  1. g = ∇_θ L at θ_old; F = ∇²_θ KL̄ at θ_old, the Fisher information matrix (App. C.1),
     never formed: F v is a Hessian-vector product of the mean KL by double backprop;
  2. the natural-gradient direction x ≈ F⁻¹ g by --cg-iters steps of conjugate gradient on
     (F + --cg-damping · I) x = g;
  3. the step scaled to the trust region's edge: Δθ = sqrt(2δ / xᵀFx) · x;
  4. backtracking line search: θ_old + c^j Δθ for j = 0, 1, …, --backtrack-iters − 1 with
     c = --backtrack-coef, accepting the first step whose KL̄ ≤ δ and whose surrogate improves on
     L(θ_old); if none does, the old parameters are restored (logged: line_search_steps,
     step_accepted).
The value function is fitted by regression on the GAE(λ) returns (Adam, --vf-epochs epochs of
--vf-minibatch-size minibatches). Defaults follow openai/baselines trpo_mpi on MuJoCo (batch
1024, δ = 0.01, 10 CG iterations, damping 0.1, γ 0.99, λ 0.98, Adam 1e-3 × 5 epochs for V,
observation normalisation) with Spinning Up's line search (c = 0.8, 10 steps).
The networks, the rollout and GAE are written as in vpg.py and ppo.py (tests keep them so).

Run: python algorithms/trpo.py --env-id Hopper-v5 --seed 1 --out runs/trpo/Hopper-v5/seed1
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

ALGO = rc.algo_name(__file__)  # "trpo": a copy of this file under another name names its runs after itself


@dataclass
class Args(rc.RunArgs):
    batch_size: int = arg(1024, "environment steps per policy update, over all envs (baselines: 1024)")
    max_kl: float = arg(0.01, "trust-region size δ: the bound on the mean KL of a step")
    cg_iters: int = arg(10, "conjugate-gradient iterations")
    cg_damping: float = arg(0.1, "damping added to the Fisher matrix: (F + damping·I) x = g")
    backtrack_coef: float = arg(0.8, "line-search shrink factor c in (0, 1)")
    backtrack_iters: int = arg(10, "line-search steps before the update is rejected")
    vf_lr: float = arg(1e-3, "Adam step size of the value function")
    vf_epochs: int = arg(5, "value-regression epochs per iteration")
    vf_minibatch_size: int = arg(64, "value-regression minibatch size")
    gamma: float = arg(0.99, "discount γ")
    gae_lambda: float = arg(0.98, "GAE parameter λ (baselines trpo_mpi: 0.98)")
    norm_obs: bool = arg(True, "normalise observations by a running mean/std, then clip (baselines)")
    obs_clip: float = arg(10.0, "clip normalised observations to ±this")
    norm_adv: bool = arg(True, "standardise advantages over the batch (baselines)")
    init: str = arg("orthogonal", "weight init: orthogonal (gain √2 hidden, 0.01 policy head, 1 value head) | "
                                  "normc (rows of unit L2 norm, 0.01 policy head, zero biases)")
    bootstrap_truncation: bool = arg(True, "bootstrap V(final obs) at time-limit truncations (docs/DESIGN.md §5)")


def validate(a: Args):
    """Every flag, before any compute: a UsageError naming the flag. Changes nothing."""
    rc.check_flags(a, positive=("max_kl", "cg_iters", "vf_lr", "vf_epochs", "vf_minibatch_size", "obs_clip",
                                "batch_size", "backtrack_iters"),
                   unit_interval=("gamma", "gae_lambda"), choices={"init": ("orthogonal", "normc")})
    rc.need(math.isfinite(a.cg_damping) and a.cg_damping >= 0, "cg_damping", f"must be >= 0, got {a.cg_damping}")
    rc.need(0 < a.backtrack_coef < 1, "backtrack_coef", f"must be in (0, 1), got {a.backtrack_coef}")
    rc.need(a.vf_minibatch_size <= a.batch_size, "vf_minibatch_size", f"{a.vf_minibatch_size} exceeds --batch-size {a.batch_size}")
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


# ---------------------------------------------------------------- the trust-region step (the only part that differs)
def flat_grad(y, params, **kwargs):
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(y, params, **kwargs)])


def conjugate_gradient(matrix_vector_product, b, iters, tolerance=1e-10):
    """Solve A x = b for symmetric positive-definite A, given only products A v
    (Nocedal & Wright 2006, Algorithm 5.2; TRPO App. C)."""
    x, residual = torch.zeros_like(b), b.clone()
    direction, rr = b.clone(), b @ b
    for _ in range(iters):
        a_dir = matrix_vector_product(direction)
        alpha = rr / (direction @ a_dir)
        x += alpha * direction
        residual -= alpha * a_dir
        rr_new = residual @ residual
        if rr_new < tolerance:
            break
        direction = residual + (rr_new / rr) * direction
        rr = rr_new
    return x


def fisher_vector_product(policy, obs, old_dist, v):
    """F v with F = ∇²_θ KL̄(θ_old, θ) at θ = θ_old (App. C.1): the gradient of (∇KL̄ · v)."""
    params = list(policy.parameters())
    kl = policy.kl(old_dist, policy(obs)).mean()
    return flat_grad(flat_grad(kl, params, create_graph=True) @ v, params)


def line_search(policy, full_step, evaluate, surrogate_old, max_kl, coef, iters):
    """Try θ_old + coef^j · full_step, j = 0 … iters−1; keep the first with KL̄ ≤ δ and a surrogate
    above surrogate_old. evaluate() → (surrogate, mean KL) at the current parameters.
    Returns (steps tried, accepted); on rejection the old parameters are restored exactly."""
    old_params = nn.utils.parameters_to_vector(policy.parameters()).clone()
    for j in range(iters):
        nn.utils.vector_to_parameters(old_params + coef ** j * full_step, policy.parameters())
        surrogate, kl = evaluate()
        if kl <= max_kl and surrogate > surrogate_old:
            return j + 1, True
    nn.utils.vector_to_parameters(old_params, policy.parameters())
    return iters, False


def trpo_step(policy, obs, actions, advantages, old_dist, args):
    """One TRPO policy update on a batch (steps 1-4 of the module docstring)."""
    params = list(policy.parameters())
    old_logp = policy.log_prob(old_dist, actions)

    def evaluate():
        with torch.no_grad():
            dist = policy(obs)
            ratio = (policy.log_prob(dist, actions) - old_logp).exp()
            return (ratio * advantages).mean().item(), policy.kl(old_dist, dist).mean().item()

    dist = policy(obs)
    surrogate = ((policy.log_prob(dist, actions) - old_logp).exp() * advantages).mean()
    g = flat_grad(surrogate, params)
    fvp = lambda v: fisher_vector_product(policy, obs, old_dist, v) + args.cg_damping * v  # noqa: E731
    x = conjugate_gradient(fvp, g, args.cg_iters)
    xFx = (x @ fvp(x)).item()
    if not (xFx > 0 and math.isfinite(xFx)):  # zero gradient: no direction to step in
        return dict(surrogate=surrogate.item(), grad_norm=g.norm().item(), steps=0, accepted=False)
    full_step = math.sqrt(2 * args.max_kl / xFx) * x
    steps, accepted = line_search(policy, full_step, evaluate, surrogate.item(), args.max_kl,
                                  args.backtrack_coef, args.backtrack_iters)
    return dict(surrogate=evaluate()[0], grad_norm=g.norm().item(), steps=steps, accepted=accepted)


# ---------------------------------------------------------------- training
def train(args: Args, quiet=False, on_batch=None):
    """Train TRPO as configured; returns the run directory. Raises UsageError on bad input.
    on_batch(dict of the iteration's (T, N) arrays), if given, sees each batch (tests use it)."""
    validate(args)
    with rc.Run(ALGO, __file__, args, quiet) as run:  # owns --out from here on, before any compute
        env_seeds, act_rng, shuffle_rng = rc.seed_streams(args.seed, args.threads)  # docs/DESIGN.md §4
        obs_space, act_space = rc.env_spaces(args.env_id, ALGO)
        obs_dim, Policy = rc.flat_dim(obs_space), CategoricalPolicy if isinstance(act_space, gym.spaces.Discrete) else GaussianPolicy
        policy, value_fn = Policy(obs_dim, rc.flat_dim(act_space), args.init), MLP(obs_dim, 1, 1.0, args.init)
        v_opt = torch.optim.Adam(value_fn.parameters(), lr=args.vf_lr, fused=True)
        T, N = args.batch_size // args.num_envs, args.num_envs
        r = rc.Rollout(run.make_envs(args.env_id, N), env_seeds, T, ObsNormaliser(obs_dim, args.obs_clip, args.norm_obs))
        for iteration in range(1, run.iterations(T * N) + 1):
            episodes, rollout_s = r.collect(policy.actor(), act_rng)
            t0 = time.time()

            # ---- values and GAE(λ) advantages, batched over the whole rollout
            b_obs, b_act = torch.from_numpy(r.train_obs).flatten(0, 1), torch.from_numpy(r.actions).flatten(0, 1)  # (T·N, ·)
            with torch.no_grad():
                old_dist = tuple(x.clone() for x in policy(b_obs))  # frozen π_old (clone: log σ is a view)
                values = value_fn(b_obs).squeeze(-1).numpy().reshape(T, N)
                next_values = value_fn(torch.from_numpy(r.next_obs)).squeeze(-1).numpy()
            # V(s_{t+1}) counts 0 after a termination, and after a time limit with --no-bootstrap-truncation (§5)
            terminated = r.terminated if args.bootstrap_truncation else r.ends
            advantages, returns = gae(r.rewards, values, next_values, terminated, r.ends, args.gamma, args.gae_lambda)
            if on_batch:
                on_batch(dict(obs=r.obs, next_obs=r.next_obs, actions=r.actions, rewards=r.rewards, terminated=terminated,
                              ends=r.ends, values=values, next_values=next_values, advantages=advantages))
            b_adv, b_ret = torch.from_numpy(advantages.reshape(-1)), torch.from_numpy(returns.reshape(-1))
            if args.norm_adv:
                b_adv = (b_adv - b_adv.mean()) / (b_adv.std() + 1e-8)
            explained_var = 1 - np.var(returns - values) / np.var(returns) if np.var(returns) > 0 else float("nan")

            # ---- the trust-region policy step
            step = trpo_step(policy, b_obs, b_act, b_adv, old_dist, args)

            # ---- value regression on the GAE(λ) returns
            v_losses = []
            for _ in range(args.vf_epochs):
                for mb in torch.from_numpy(shuffle_rng.permutation(T * N)).split(args.vf_minibatch_size):
                    v_loss = ((value_fn(b_obs[mb]).squeeze(-1) - b_ret[mb]) ** 2).mean()
                    v_opt.zero_grad()
                    v_loss.backward()
                    v_opt.step()
                    v_losses.append(v_loss.detach())
            with torch.no_grad():
                approx_kl = policy.kl(old_dist, policy(b_obs)).mean().item()
                entropy = policy.entropy(old_dist).mean().item()
            value_loss = torch.stack(v_losses).mean().item()
            update_s = time.time() - t0

            rc.check_finite(iteration, policy_loss=-step["surrogate"], value_loss=value_loss,
                            approx_kl=approx_kl, policy=policy, value_function=value_fn)
            run.log(iteration, r.global_step, episodes, rollout_s, update_s, policy_loss=-step["surrogate"],
                    value_loss=value_loss, entropy=entropy, approx_kl=approx_kl, update_steps=1,
                    line_search_steps=step["steps"], step_accepted=int(step["accepted"]),
                    explained_variance=float(explained_var), grad_norm=step["grad_norm"])
        run.publish()
    return run.out


def main(argv=None):
    rc.main(train, validate, Args, argv, __doc__.split("\n\n")[0])


if __name__ == "__main__":
    main()
