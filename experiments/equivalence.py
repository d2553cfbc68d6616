"""No number changed: the current code against the code that made the committed runs, byte for byte.

    python -m experiments.equivalence             # every case; exit 1 if one differs
    python -m experiments.equivalence --record    # and if none differs, record the current fingerprints
                                                  # in experiments/code_versions.yaml

Staleness follows numbers, not file bytes (docs/DESIGN.md §6). Each entry of code_versions.yaml names a
reference commit (the code that made the committed runs) and the fingerprints shown to compute exactly
its numbers; a committed run stays current while its fingerprint and the current code's are both there.
A fingerprint gets there only through --record: every case below is trained twice on this machine, by
the reference commit's files read straight from git and by the working tree's, and each pair of
progress.csv and episodes.csv must be identical bar the clock columns. Together the cases cover every
PPO objective, both regimes, KL early stopping, time limits bootstrapped and terminal (on tasks whose
short time limits truncate many episodes), discrete and continuous actions, several environments,
observation normalisation, VPG's four weights, TRPO, and one gradient-noise measurement.
tests/test_equivalence.py runs the same cases, and fails when the current code is not recorded.

Identity is shown on one CPU model at a time: a floating-point kernel may round differently on another
(docs/NOTEBOOK.md, "Reruns across CPU models"), so a record names the CPU it was made on. Where a CPU
model is known to make the current code's numbers differ from the reference's, code_versions.yaml says so
under the algorithm's `differs_on` (the fingerprints, and why); the tests then expect the difference there
instead of failing on it (known_difference).
"""
import argparse
import csv
import datetime
import importlib.util
import io
import os
import subprocess
import sys
import pathlib
import tarfile
import tempfile

import gymnasium as gym
import run_contract
import yaml
from run_contract import cpu_model

from analysis.load import open_csv

from experiments import grid

ROOT = grid.ROOT
# short time limits, so that a few hundred steps hold many truncations as well as terminations
SHORT_LIMITS = {"equivalence/InvertedPendulum-tl40-v5": ("gymnasium.envs.mujoco.inverted_pendulum_v5:InvertedPendulumEnv", 40),
                "equivalence/Pendulum-tl50-v1": ("gymnasium.envs.classic_control.pendulum:PendulumEnv", 50),
                "equivalence/CartPole-tl30-v1": ("gymnasium.envs.classic_control.cartpole:CartPoleEnv", 30)}
for _env_id, (_entry, _steps) in SHORT_LIMITS.items():
    if _env_id not in gym.registry:
        gym.register(_env_id, entry_point=_entry, max_episode_steps=_steps)

SIZE = {"ppo": dict(num_steps=256, minibatch_size=64, update_epochs=3, total_timesteps=768),
        "vpg": dict(batch_size=256, train_v_iters=5, total_timesteps=768),
        "trpo": dict(batch_size=256, total_timesteps=768)}
CASES = {  # name: (algorithm, arguments beyond SIZE)
    "ppo clip ppo2 Hopper": ("ppo", dict(env_id="Hopper-v5")),
    "ppo clip ppo2 terminal InvertedPendulum-tl40": ("ppo", dict(env_id="equivalence/InvertedPendulum-tl40-v5",
                                                                 bootstrap_truncation=False)),
    "ppo none ppo2 early-stop CartPole-tl30": ("ppo", dict(env_id="equivalence/CartPole-tl30-v1", objective="none",
                                                           target_kl=0.002)),
    "ppo kl_adaptive ppo2 2 envs Pendulum-tl50": ("ppo", dict(env_id="equivalence/Pendulum-tl50-v1",
                                                              objective="kl_adaptive", num_envs=2)),
    "ppo kl_fixed ppo2 HalfCheetah": ("ppo", dict(env_id="HalfCheetah-v5", objective="kl_fixed", beta=3.0)),
    "ppo clip ppo1 InvertedPendulum-tl40": ("ppo", dict(env_id="equivalence/InvertedPendulum-tl40-v5", regime="ppo1")),
    "ppo clip ppo1 bootstrapped early-stop Pendulum-tl50": ("ppo", dict(env_id="equivalence/Pendulum-tl50-v1", regime="ppo1",
                                                                        bootstrap_truncation=True, target_kl=0.002)),
    "ppo kl_adaptive ppo1 Hopper": ("ppo", dict(env_id="Hopper-v5", regime="ppo1", objective="kl_adaptive")),
    "ppo kl_fixed ppo1 CartPole-tl30": ("ppo", dict(env_id="equivalence/CartPole-tl30-v1", regime="ppo1",
                                                    objective="kl_fixed", beta=0.3)),
    "ppo none ppo1 Walker2d": ("ppo", dict(env_id="Walker2d-v5", regime="ppo1", objective="none")),
    "vpg total_return CartPole-tl30": ("vpg", dict(env_id="equivalence/CartPole-tl30-v1", weight="total_return")),
    "vpg reward_to_go InvertedPendulum-tl40": ("vpg", dict(env_id="equivalence/InvertedPendulum-tl40-v5",
                                                           weight="reward_to_go")),
    "vpg value_baseline normalised Hopper": ("vpg", dict(env_id="Hopper-v5", weight="value_baseline", norm_obs=True)),
    "vpg gae terminal 2 envs Pendulum-tl50": ("vpg", dict(env_id="equivalence/Pendulum-tl50-v1", weight="gae",
                                                          bootstrap_truncation=False, num_envs=2)),
    "trpo Hopper": ("trpo", dict(env_id="Hopper-v5")),
    "trpo terminal CartPole-tl30": ("trpo", dict(env_id="equivalence/CartPole-tl30-v1", bootstrap_truncation=False)),
    "trpo InvertedPendulum-tl40": ("trpo", dict(env_id="equivalence/InvertedPendulum-tl40-v5")),
}
GRADIENT_NOISE_CASE = ["--env-id", "CartPole-v1", "--seed", "2", "--warmup-batches", "2", "--batches", "3",
                       "--", "--batch-size", "200"]


def reference(name):
    return grid.code_versions()[name]["reference"]


def export(commit, paths, into):
    """The files at `paths` as of `commit`, straight from git, under `into`."""
    archive = subprocess.run(["git", "archive", commit, *paths], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def without_clock(path):
    """A run CSV's rows (plain, gzip or xz: analysis.load.open_csv) without the clock columns."""
    with open_csv(path) as f:
        rows = list(csv.reader(f))
    keep = [i for i, column in enumerate(rows[0]) if column not in run_contract.CLOCK_COLUMNS]
    return [[row[i] for i in keep] for row in rows]


def train_case(module, algo, overrides, out):
    fields = {f for f in module.Args.__dataclass_fields__}
    args = module.Args(seed=3, out=str(out), **SIZE[algo], **{k: v for k, v in overrides.items() if k in fields})
    return pathlib.Path(module.train(args, quiet=True))


def run_case(name, scratch):
    """(identical, why) for one case: the reference commit's algorithm file against the working tree's."""
    algo, overrides = CASES[name]
    old_dir = pathlib.Path(scratch, "reference", reference(algo))
    if not (old_dir / "algorithms" / f"{algo}.py").exists():
        export(reference(algo), [f"algorithms/{algo}.py"], old_dir)
    old = load(old_dir / "algorithms" / f"{algo}.py", f"reference_{algo}")
    tag = name.replace(" ", "_").replace("/", "_")
    runs = [train_case(module, algo, overrides, pathlib.Path(scratch, who, tag))
            for who, module in (("reference", old), ("current", grid.algorithm(algo)))]
    for file in ("progress.csv", "episodes.csv"):
        a, b = (without_clock(run / file) for run in runs)
        if a != b:
            row = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            return False, f"{file} differs from row {row} ({len(a) - 1} against {len(b) - 1} rows)"
    return True, f"{len(without_clock(runs[1] / 'episodes.csv')) - 1} episodes identical"


def run_gradient_noise(scratch):
    """(identical, why): one measurement by the reference commit's gradient_noise.py (and its vpg.py and
    grid.py) against the working tree's."""
    old_tree = pathlib.Path(scratch, "reference_tree")
    export(reference("gradient_noise"), ["algorithms", "experiments"], old_tree)
    outputs = []
    for who, tree in (("reference", old_tree), ("current", ROOT)):
        out = pathlib.Path(scratch, who, "gradient_noise.csv")
        # run from the tree itself, so `from experiments import grid` is that tree's grid.py
        subprocess.run([sys.executable, "-m", "experiments.gradient_noise", "--out", str(out), *GRADIENT_NOISE_CASE],
                       cwd=tree, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(tree)})
        outputs.append(out.read_bytes())
    return outputs[0] == outputs[1], "gradient_noise.csv " + ("identical" if outputs[0] == outputs[1] else "differs")


def check():
    """Run every case, printing each outcome; returns {case: (identical, why)}."""
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in CASES:
            results[name] = run_case(name, scratch)
            print(f"{'same' if results[name][0] else 'DIFFERENT':9s} {name}: {results[name][1]}")
        results["gradient_noise"] = run_gradient_noise(scratch)
        print(f"{'same' if results['gradient_noise'][0] else 'DIFFERENT':9s} gradient_noise: {results['gradient_noise'][1]}")
    return results


def known_difference(name):
    """Why the current code of `name` is known to compute other numbers than its reference commit on this CPU
    model (code_versions.yaml, `differs_on`), or None."""
    known = grid.code_versions()[name].get("differs_on", {}).get(cpu_model())
    return known["why"] if known and grid.fingerprint_now(name) in known["fingerprints"] else None


def record(results):
    """Add the current fingerprints to code_versions.yaml, each beside how it was shown."""
    versions = grid.code_versions()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    today = datetime.date.today().isoformat()
    for name, entry in versions.items():
        cases = [c for c, (algo, _) in CASES.items() if algo == name] or ["gradient_noise"]
        if all(results[c][0] for c in cases):
            now = grid.fingerprint_now(name)
            entry["fingerprints"].setdefault(now, f"{today}, working tree on {head}, {cpu_model()}: python -m "
                                                  f"experiments.equivalence --record, {len(cases)} case(s) "
                                                  f"byte-identical to {entry['reference']}")
    text = grid.CODE_VERSIONS.read_text()
    header = text[:text.index("\n\n") + 2]  # the comment block above the data is kept as it is
    grid.CODE_VERSIONS.write_text(header + yaml.safe_dump(versions, sort_keys=False, allow_unicode=True, width=200))
    grid.code_versions.cache_clear()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", action="store_true", help="record the current fingerprints if every case is identical")
    args = parser.parse_args(argv)
    results = check()
    for name in {CASES[case][0] if case in CASES else case for case, (ok, _) in results.items() if not ok}:
        if known := known_difference(name):
            print(f"{name}: differs on {cpu_model()}, as experiments/code_versions.yaml records (differs_on): {known}")
    if not all(ok for ok, _ in results.values()):
        sys.exit("error: some numbers changed; nothing recorded (a change that alters numbers makes its runs stale)")
    if args.record:
        record(results)
        print(f"recorded in {grid.CODE_VERSIONS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
