"""How noisy is each VPG weight's gradient? Measured at one fixed policy, on the same batches.

  python experiments/gradient_noise.py --env-id Hopper-v5 --seed 1 --warmup-batches 25 --batches 40 \\
      --out hopper.csv [-- <algorithms/vpg.py flags, e.g. --batch-size 4000>]

The baselines experiment compares the four policy-gradient weights of algorithms/vpg.py by their
final scores, and the runs log each batch gradient's norm. Across runs that norm mixes the weight's
noise with the policy it has reached. This script holds the policy still and measures the noise:

1. It runs algorithms/vpg.py itself (weight gae, so V is fitted exactly as in a run) with a policy
   step size of 1e-30, far below the float32 spacing of any weight: the policy stays at its seeded
   initialisation, while V learns from every batch. The first --warmup-batches batches only fit V.
2. On each of the next --batches batches it computes all four weights Φ_t from the batch
   (vpg.pg_weights, V as it was before that batch's fit, so the baseline does not depend on the
   batch) and each batch gradient ĝ = mean_t Φ_t ∇_θ log π_θ(a_t|s_t), the gradient vpg.py steps on.
3. Over the batches, per weight: the gradient's variance tr Cov(ĝ) (the expected squared distance
   of ĝ from its mean, summed over the parameters), its mean's squared norm, and how far its mean
   lies from reward-to-go's mean (both estimated without the 1/B noise in squared norms).

Subtracting V(s_t) leaves E[ĝ] unchanged and lowers tr Cov(ĝ) (Greensmith et al. 2004; Schulman et
al. 2016 §2); GAE(λ < 1) lowers it further at the price of a bias. The total return differs in
expectation too: with γ < 1 it weights step t's reward-to-go by γ^t.

The policy that acts is rebuilt here from the seed exactly as vpg.py builds it; every action of
every batch is re-drawn from the rebuilt policy and must match (to float32 rounding), or the
script stops. Writes one row per weight, and beside it (<out>.json) its provenance: the arguments,
vpg.py's code fingerprint (with run_contract.py) and sha256, this script's sha256, the git commit and
the library versions. The CSV is published
first and the record last, each atomically: a killed run leaves .partial files, or a CSV with no record,
which the workflow and the report treat as not made (experiments/grid.py, gradient_noise_stale_reason).
"""
import argparse
import dataclasses
import json
import os
import sys
import tempfile

import numpy as np
import pandas as pd
import run_contract
import torch

from experiments import grid

FROZEN_PI_LR = 1e-30  # policy step size: below every float32 weight's spacing, so the policy never moves
COLUMNS = ["env_id", "seed", "weight", "warmup_batches", "batches", "batch_size", "grad_variance", "mean_grad_sq",
           "bias_sq_vs_reward_to_go", "bias_noise_sq", "explained_variance"]


def rebuild_policy(vpg, args):
    """vpg.train's policy at initialisation: its init stream is the second of the seed's four, and
    the policy is the first network built from it."""
    init_seed, act_seed = np.random.SeedSequence(args.seed).spawn(4)[1:3]
    obs_space, act_space = run_contract.env_spaces(args.env_id, "vpg")
    torch.manual_seed(int(init_seed.generate_state(1)[0]))
    Policy = vpg.CategoricalPolicy if hasattr(act_space, "n") else vpg.GaussianPolicy
    policy = Policy(run_contract.flat_dim(obs_space), run_contract.flat_dim(act_space), args.init)
    return policy, np.random.default_rng(act_seed)


def batch_gradients(policy, obs, actions, weights_by_name):
    """{weight: ĝ = ∇_θ mean_t Φ_t log π_θ(a_t|s_t)} as flat vectors, for (n, ·) obs and actions."""
    params = list(policy.parameters())
    log_prob = policy.log_prob(policy(torch.as_tensor(obs)), torch.as_tensor(actions))
    grads = {}
    for name, phi in weights_by_name.items():
        g = torch.autograd.grad((log_prob * torch.as_tensor(phi, dtype=log_prob.dtype)).mean(), params,
                                retain_graph=True)
        grads[name] = torch.cat([x.flatten() for x in g]).double().numpy()
    return grads


def noise_statistics(grads, reference):
    """grads: {weight: (B, P) batch gradients}. Per weight: tr Cov(ĝ) (unbiased, over the B batches),
    ‖E ĝ‖² and ‖E ĝ − E ĝ_ref‖², each squared norm less its expected noise tr Cov / B, and that
    noise for the difference (the paired batches make it small)."""
    stats = {}
    for name, g in grads.items():
        batches = len(g)
        variance = g.var(axis=0, ddof=1).sum()
        diff = g - grads[reference]
        diff_noise = diff.var(axis=0, ddof=1).sum() / batches
        stats[name] = dict(grad_variance=variance,
                           mean_grad_sq=np.sum(g.mean(axis=0) ** 2) - variance / batches,
                           bias_sq_vs_reward_to_go=np.sum(diff.mean(axis=0) ** 2) - diff_noise,
                           bias_noise_sq=diff_noise)
    return stats


def measure(vpg, args, warmup_batches, batches):
    """Run vpg.train with the policy frozen; returns the rows of noise statistics (module docstring)."""
    policy, act_rng = rebuild_policy(vpg, args)
    act = policy.actor()
    grads, explained, seen = {w: [] for w in vpg.WEIGHTS}, [], [0]

    def on_batch(b):
        seen[0] += 1
        T, N = b["rewards"].shape
        for t in range(T):  # the frozen policy is the one that acted: every action re-drawn and compared
            # (to float32 rounding: numpy's kernels may round the last bit differently for another memory layout)
            if not np.allclose(act(b["obs"][t], act_rng), b["actions"][t], rtol=1e-5, atol=1e-5):
                sys.exit(f"error: batch {seen[0]}, step {t}: the rebuilt policy would not have taken the batch's "
                         "action; algorithms/vpg.py builds or moves its policy differently than this script assumes")
        if seen[0] <= warmup_batches:
            return
        phi = {w: vpg.pg_weights(w, b["rewards"], b["values"], b["next_values"], b["terminated"], b["ends"],
                                 args.gamma, args.gae_lambda).reshape(-1) for w in vpg.WEIGHTS}
        obs, actions = b["obs"].reshape(T * N, -1), b["actions"].reshape((T * N,) + b["actions"].shape[2:])
        for w, g in batch_gradients(policy, obs, actions, phi).items():
            grads[w].append(g)
        if np.var(b["returns"]) > 0:
            explained.append(1 - np.var(b["returns"] - b["values"]) / np.var(b["returns"]))

    with tempfile.TemporaryDirectory() as scratch:
        run = dataclasses.replace(args, weight="gae", pi_lr=FROZEN_PI_LR, out=scratch, overwrite=True,
                                  total_timesteps=(warmup_batches + batches) * args.batch_size)
        vpg.train(run, quiet=True, on_batch=on_batch)
    stats = noise_statistics({w: np.stack(g) for w, g in grads.items()}, "reward_to_go")
    explained_variance = float(np.mean(explained)) if explained else float("nan")
    return [dict(env_id=args.env_id, seed=args.seed, weight=w, warmup_batches=warmup_batches, batches=batches,
                 batch_size=args.batch_size, **stats[w], explained_variance=explained_variance) for w in vpg.WEIGHTS]


def usage_error(message):
    """Bad input: one line naming the flag, exit status 2, before any compute."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Flags after -- go to algorithms/vpg.py (its --help lists them).")
    parser.add_argument("--env-id", required=True)
    parser.add_argument("--seed", type=int, default=1, help="vpg.py's root seed: the policy measured and the batches")
    parser.add_argument("--warmup-batches", type=int, default=25, help="batches that only fit V, before measuring")
    parser.add_argument("--batches", type=int, default=40, help="batches measured (at least 2)")
    parser.add_argument("--out", required=True, help="CSV to write")
    argv = sys.argv[1:] if argv is None else argv
    ours, vpg_flags = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    args = parser.parse_args(ours)
    if args.warmup_batches < 0:
        usage_error(f"--warmup-batches: must be >= 0, got {args.warmup_batches}")
    if args.batches < 2:
        usage_error(f"--batches: a variance needs at least 2 batches, got {args.batches}")
    if not args.out.endswith(".csv"):
        usage_error(f"--out: must end in .csv (the provenance record goes beside it, as .json), got {args.out}")
    vpg = grid.algorithm("vpg")
    with tempfile.TemporaryDirectory() as scratch:  # vpg.py checks its flags (and an --out) before any compute
        try:
            run = run_contract.parse_args(vpg.Args, ["--env-id", args.env_id, "--seed", str(args.seed), "--out", scratch,
                                                     *vpg_flags])
            vpg.validate(run)
        except run_contract.UsageError as e:
            usage_error(str(e))
    code = run_contract.code_version(vpg.__file__)  # taken before the compute, as vpg.py does for a run
    record = {"env_id": args.env_id, "seed": args.seed, "warmup_batches": args.warmup_batches,
              "batches": args.batches, "vpg_flags": vpg_flags, "vpg_sha256": code["script_sha256"],
              "vpg_code_sha256": code["code_sha256"], "script_sha256": grid.file_sha256(__file__),
              "git_commit": code["git_commit"], "versions": run_contract.versions()}
    frame = pd.DataFrame(measure(vpg, run, args.warmup_batches, args.batches), columns=COLUMNS)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    record_path = args.out[:-len(".csv")] + ".json"
    frame.to_csv(args.out + ".partial", index=False, float_format="%.6g")
    with open(record_path + ".partial", "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    os.replace(args.out + ".partial", args.out)
    os.replace(record_path + ".partial", record_path)


if __name__ == "__main__":
    main()
