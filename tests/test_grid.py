"""experiments/grid.py: the committed config validates; each kind of bad config is refused
with one error naming the key; runs are shared between experiments."""
import copy
import math
import subprocess
import sys

import pytest

from conftest import ROOT
from experiments import grid


@pytest.fixture(scope="module")
def config():
    return grid.load()


def test_committed_config_is_valid(config):
    grid.check(config)


def test_run_counts_per_scale_and_sharing(config):
    for scale in ("smoke", "quick", "paper"):
        runs = grid.runs(config, scale)
        per_experiment = sum(len(grid.experiment_runs(config, scale, e)) for e in config["experiments"])
        assert len(runs) == len(set(runs)) < per_experiment  # ppo_clip_0.2 is shared by three experiments
    quick = grid.runs(config, "quick")
    assert sum(r.variant == "ppo_clip_0.2" for r in quick) == 2 * 3  # 2 envs × 3 seeds, trained once


def test_training_priority_is_the_variants_capped_by_their_experiments_then_env_by_env(config):
    # the paper scale names 11 envs, first in its random experiment: HalfCheetah is 0th, Ant 7th, CartPole 8th;
    # its start_first puts classic control (cheap seeds) first: CartPole, Acrobot, Pendulum, then HalfCheetah ...
    order = grid.env_order(config, "paper")
    assert (order[0], order[7], order[8], len(order)) == ("HalfCheetah-v5", "Ant-v5", "CartPole-v1", 11)
    start = grid.start_order(config, "paper")
    assert start == ["CartPole-v1", "Acrobot-v1", "Pendulum-v1"] + [e for e in order if e not in start[:3]]
    assert grid.train_priority(config, "paper", "ppo_gae_0", "CartPole-v1") == 1               # priority 1
    assert grid.train_priority(config, "paper", "ppo_gae_0", "HalfCheetah-v5") == 1 - 3 / 11
    assert grid.train_priority(config, "paper", "ppo_gae_0", "Ant-v5") == 1 - 10 / 11
    assert grid.train_priority(config, "paper", "ppo_none", "Hopper-v5") == 3 - 4 / 11          # Table 1, ppo2
    assert grid.train_priority(config, "paper", "ppo1_none", "HalfCheetah-v5") == 2 - 3 / 11    # Table 1, ppo1
    assert grid.train_priority(config, "paper", "ppo_clip_0.2_no_trunc_bootstrap", "HalfCheetah-v5") == -3 / 11  # 0
    assert grid.train_priority(config, "paper", "vpg_total_return", "HalfCheetah-v5") == -2 - 3 / 11  # baselines
    # Table 1's PPO-clip ε = 0.2 (priority 3) is also the GAE sweep's λ = 0.95 and the algorithm comparison's PPO:
    # on their envs alone it starts with them, not with Table 1
    assert grid.train_priority(config, "paper", "ppo_clip_0.2", "Walker2d-v5") == 3 - 9 / 11
    assert grid.train_priority(config, "paper", "ppo_clip_0.2", "CartPole-v1") == 1             # gae_lambda
    assert grid.train_priority(config, "paper", "ppo_clip_0.2", "Ant-v5") == -1 - 10 / 11       # algorithms
    # the start order is no part of what the analyses depend on: dropping it changes nothing they read
    unordered = copy.deepcopy(config)
    del unordered["scales"]["paper"]["start_first"]
    assert grid.scale_config(unordered, "paper") == grid.scale_config(config, "paper")
    assert grid.start_order(unordered, "paper") == order
    # so the runs start in the order of experiments: none before a run that an earlier one plans
    caps = {name: config["experiments"][name].get("priority") for name in config["experiments"]}
    first = {}  # each run's earliest experiment, by its cap
    for name in config["scales"]["paper"]["experiments"]:
        for run in grid.experiment_runs(config, "paper", name):
            first[run.variant, run.env] = max(first.get((run.variant, run.env), caps[name]), caps[name])
    by_priority = sorted(first, key=lambda run: -grid.train_priority(config, "paper", *run))
    assert [first[run] for run in by_priority] == sorted(first.values(), reverse=True)
    # an env never lifts a run above one of higher integer priority
    assert [math.ceil(grid.train_priority(config, "paper", *run)) for run in by_priority] == sorted(
        (math.ceil(grid.train_priority(config, "paper", *run)) for run in first), reverse=True)


def test_cli_args_are_stable_and_complete(config):
    assert grid.cli_args(config, "quick", "ppo_kl_adaptive_0.01", "Hopper-v5") == "--d-targ 0.01 --objective kl_adaptive"
    assert grid.cli_args(config, "quick", "vpg_gae", "CartPole-v1") == "--pi-lr 0.01 --weight gae"
    assert grid.cli_args(config, "quick", "vpg_gae", "Hopper-v5") == "--weight gae"
    smoke = grid.cli_args(config, "smoke", "ppo_clip_0.2", "CartPole-v1")
    assert smoke == "--clip-eps 0.2 --minibatch-size 64 --num-steps 256 --objective clip --update-epochs 2"


def mutate(config, path, value):
    bad = copy.deepcopy(config)
    node = bad
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return bad


BAD = [
    (("scales", "quick", "experiments", "baselines", "seedz"), [1], "scales.quick.experiments.baselines: "
     "Additional properties are not allowed ('seedz' was unexpected)"),
    (("scale",), "huge", "scale: 'huge' is not one of"),
    (("variants", "trpo", "algo"), "a2c", "variants.trpo.algo: no algorithm file algorithms/a2c.py"),
    # names from data are never paths: an algorithm is a file directly in algorithms/
    (("variants", "trpo", "algo"), "../../x/evil", "variants.trpo.algo: '../../x/evil' does not match"),
    (("variants", "trpo", "algo"), "run_contract", "variants.trpo.algo: no algorithm file algorithms/run_contract.py"),
    # no silent defaults: settings for envs nothing runs, step counts that are not whole numbers
    (("scales", "smoke", "steps"), 1536.0, "scales.smoke.steps: expected a whole number, got 1536.0"),
    (("scales", "smoke", "env_steps"), {"CartPol-v1": 3000}, "scales.smoke.env_steps.CartPol-v1: no experiment of this "
     "scale runs CartPol-v1"),
    (("scales", "paper", "start_first"), ["CartPole-v1", "Humanoid-v5"], "scales.paper.start_first[1]: no experiment "
     "of this scale runs Humanoid-v5"),
    (("variants", "vpg_gae", "env_args"), {"CartPol-v1": {"pi_lr": 0.01}}, "variants.vpg_gae.env_args.CartPol-v1: "
     "vpg_gae runs on CartPol-v1 at no scale"),
    (("scales", "quick", "experiments", "baselines", "seeds"), [1, 2.0], "scales.quick.experiments.baselines.seeds[1]: "
     "expected a whole number, got 2.0"),
    # a scale's variants are the experiment's, or ones it declares it adds
    (("scales", "smoke", "experiments", "gae_lambda", "variants"), ["ppo_gae_0", "trpo"],
     "scales.smoke.experiments.gae_lambda.variants[1]: 'trpo' is not one of experiments.gae_lambda.variants"),
    (("scales", "smoke", "experiments", "gae_lambda", "add_variants"), ["ppo_gae_1"],
     "scales.smoke.experiments.gae_lambda.add_variants[0]: 'ppo_gae_1' is already in experiments.gae_lambda.variants"),
    (("scales", "quick", "experiments", "baselines", "envs"), ["CartPole-v1", "Hoper-v5"],
     "scales.quick.experiments.baselines.envs[1]: unknown environment 'Hoper-v5'"),
    (("variants", "vpg_gae", "args", "clip_eps"), 0.2, "variants.vpg_gae.args.clip_eps: vpg.py has no argument --clip-eps"),
    (("variants", "ppo_gae_0.99", "args", "gae_lambda"), 1.5,
     "variants.ppo_gae_0.99.args.gae_lambda: --gae-lambda: must be in [0, 1], got 1.5"),
    (("variants", "ppo_clip_0.1", "args", "clip_eps"), "0.1", "variants.ppo_clip_0.1.args.clip_eps: expected float"),
    (("variants", "trpo", "args", "seed"), 3, "variants.trpo.args.seed: set by the workflow"),
    (("experiments", "algorithms", "variants"), ["trpo", "ppo_clipp"], "experiments.algorithms.variants[1]: unknown variant"),
    (("scales", "smoke", "algo_args", "ppo", "num_steps"), 4096,
     "scales.smoke.steps: --total-timesteps: 1536 is less than one batch (4096 steps)"),
    (("scales", "quick", "steps"), KeyError, "scales.quick: 'steps' is a required property"),
    (("variants", "ppo1_none", "priority"), "last", "variants.ppo1_none.priority: 'last' is not of type 'integer'"),
    (("experiments", "algorithms", "priority"), 0.5, "experiments.algorithms.priority: 0.5 is not of type 'integer'"),
    (("scales", "paper", "gradient_noise", "batches"), 1, "scales.paper.gradient_noise.batches: 1 is less than the minimum of 2"),
    (("variants", "gradient_noise"), {"algo": "vpg", "args": {}}, "variants.gradient_noise: a reserved name"),
    # the time_limits experiment is a 2 × 2 of regime × time limit, read from each variant's resolved arguments
    (("experiments", "time_limits", "variants"), ["ppo_clip_0.2", "ppo_clip_0.1", "ppo1_clip_0.2_trunc_bootstrap",
                                                  "ppo1_clip_0.2"],
     "experiments.time_limits.variants: ppo_clip_0.2 and ppo_clip_0.1 are both the ppo2 regime with the time limit "
     "bootstrapped; the experiment needs each regime × time limit once"),
    (("scales", "paper", "experiments", "time_limits", "variants"), ["ppo_clip_0.2", "ppo1_clip_0.2"],
     "scales.paper.experiments.time_limits.variants: no variant for the ppo2 regime with the time limit terminal, "
     "the ppo1 regime with the time limit bootstrapped"),
    (("experiments", "time_limits", "variants"), ["trpo"], "experiments.time_limits.variants: trpo is not a PPO variant"),
    # a subset is part of its scale's runs, in a folder of its own
    (("scales", "paper", "subsets", "seeds1-3", "seeds"), [1, 11], "scales.paper.subsets.seeds1-3.seeds[1]: 11 is not "
     "one of the scale's seeds"),
    (("scales", "paper", "subsets", "seeds1-3", "envs"), ["Hopper-v5", "CartPole-v0"],
     "scales.paper.subsets.seeds1-3.envs[1]: 'CartPole-v0' is not one of the scale's envs"),
    (("scales", "paper", "subsets", "runs"), {"seeds": [1]}, "scales.paper.subsets.runs: a folder results/paper/ "
     "already holds"),
    (("scales", "paper", "subsets", "../x"), {"seeds": [1]}, "scales.paper.subsets: '../x' does not match"),
]


def test_a_variant_can_be_added_to_one_scale_only(config):
    added = mutate(config, ("scales", "smoke", "experiments", "algorithms", "add_variants"), ["ppo_none"])
    grid.check(added)
    assert grid.experiment_variants(added, "smoke", "algorithms")[-1] == "ppo_none"
    assert "ppo_none" not in grid.experiment_variants(added, "quick", "algorithms")
    assert len(grid.runs(added, "quick")) == len(grid.runs(config, "quick"))  # the other scales plan what they did


def test_a_subset_keeps_only_its_seeds_and_envs_of_every_experiment(config):
    """The paper scale's seeds1-3 subset is the 3-seed grid as it stood: 699 runs and 15 gradient-noise measurements,
    no classic-control task, and the classic tasks' step budgets gone with them."""
    three = grid.subset(config, "paper", "seeds1-3")
    assert len(grid.runs(three, "paper")) == 699 and len(grid.gradient_noise_runs(three, "paper")) == 15
    assert {run.seed for run in grid.runs(three, "paper")} == {1, 2, 3}
    assert not {"CartPole-v1", "Acrobot-v1", "Pendulum-v1"} & {run.env for run in grid.runs(three, "paper")}
    assert three["scales"]["paper"]["env_steps"] == {} and "subsets" not in three["scales"]["paper"]
    assert set(grid.runs(three, "paper")) <= set(grid.runs(config, "paper"))
    assert "subsets" in config["scales"]["paper"]  # the config itself is untouched
    with pytest.raises(grid.ConfigError, match=r"^scales.paper.subsets: no subset 'seeds1-4' \(the config names seeds1-3\)$"):
        grid.subset(config, "paper", "seeds1-4")


def test_a_yaml_alias_bomb_is_refused_in_one_line_before_it_is_expanded(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]  # 10^9 values
    bomb.write_text("\n".join(lines) + "\n")
    config = grid.load(bomb)  # loading shares the aliases: cheap
    with pytest.raises(grid.ConfigError, match=r"^\(top level\): the config expands to more than 100,000 values"):
        grid.check(config)


def test_the_time_limit_cells_follow_each_variants_resolved_arguments(config):
    """ppo_clip_0.2 sets neither --regime nor --bootstrap-truncation: ppo2's REGIMES value bootstraps. ppo1_clip_0.2
    inherits ppo1's terminal time limit; the two others override their regime's value explicitly."""
    assert grid.time_limit_cells(config, "paper") == {
        ("ppo2", "bootstrapped"): "ppo_clip_0.2", ("ppo2", "terminal"): "ppo_clip_0.2_no_trunc_bootstrap",
        ("ppo1", "bootstrapped"): "ppo1_clip_0.2_trunc_bootstrap", ("ppo1", "terminal"): "ppo1_clip_0.2"}
    for run in grid.experiment_runs(config, "paper", "time_limits"):  # and the runs will record what the cells say
        args = grid.expected_args(config, "paper", run)
        assert (args["regime"], args["bootstrap_truncation"]) == {
            "ppo_clip_0.2": ("ppo2", True), "ppo_clip_0.2_no_trunc_bootstrap": ("ppo2", False),
            "ppo1_clip_0.2_trunc_bootstrap": ("ppo1", True), "ppo1_clip_0.2": ("ppo1", False)}[run.variant]


@pytest.mark.parametrize("path,value,message", BAD)
def test_bad_config_names_the_key(config, path, value, message):
    with pytest.raises(grid.ConfigError) as info:
        grid.check(mutate(config, path, value))
    assert str(info.value).startswith(message.split(":")[0] + ":") and message in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


def test_snakemake_refuses_bad_config_before_planning(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("variants:\n  ppo_clip_0.2: {algo: ppo, args: {clip_eps: -1}}\n")
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", str(bad)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "config error: variants.ppo_clip_0.2.args.clip_eps: --clip-eps: must be positive, got -1" in proc.stderr + proc.stdout
    assert "Building DAG" not in proc.stderr + proc.stdout
