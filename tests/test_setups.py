"""analysis/setups.py: the published setups against ours, setting by setting.

Our side is built here from the paper-scale config exactly as a run would resolve it (grid.expected_args),
so no training is needed; the expected differences were worked out by hand from the sources cited in
analysis/published/setups.csv."""
import dataclasses
import math
import warnings

import gymnasium as gym
import mujoco
import pandas as pd
import pytest
import torch

from analysis import setups, stats
from analysis.setups import PUBLISHED
from experiments import grid
from experiments.grid import Run


def paper_runs(variant, envs=("Hopper-v5",)):
    """A runs frame as analysis.load.load_runs gives it, for the paper scale's arguments of `variant`."""
    config = grid.load()
    rows = []
    for env in envs:
        run = Run(variant, env, 1)
        args = grid.expected_args(config, "paper", run)
        rows.append({"variant": variant, "env": env, "seed": 1, "algo": config["variants"][variant]["algo"],
                     "v_gymnasium": "1.4.0", "v_mujoco": "4.0.0", "args": args})
    return pd.DataFrame(rows)


def differing(variant, source, algo):
    return {name for name, *_ in setups.differences(paper_runs(variant), variant, source, algo)[0]}


def test_every_published_setting_is_one_of_ours():
    published = setups.load()
    assert set(published.tag) <= {"P", "D", "S", "U"}
    assert not published.duplicated(["source", "algo", "setting"]).any()
    config = grid.load()
    algorithms = grid.experiment_variants(config, "paper", "algorithms")
    for variant, matches in setups.variant_matches(config, "paper", algorithms).items():
        fields = {f.name for f in dataclasses.fields(grid.algorithm(config["variants"][variant]["algo"]).Args)}
        for source, algo in matches:
            rows = published[(published.source == source) & (published.algo == algo)]
            assert len(rows) >= 10, f"{source} {algo}: no setup rows"
            assert set(rows.setting) <= fields | set(setups.NOT_ARGS) | setups.ABSENT.keys(), (source, algo)
            # a Gaussian policy's initial σ and action handling do not apply to a discrete-action setup (CleanRL's ppo.py)
            discrete = {"log_std_init", "actions_to_env"} if (source, algo) == ("cleanrl", "ppo") else set()
            assert set(setups.NOT_ARGS) - discrete <= set(rows.setting), (source, algo)


def test_published_matches_are_read_from_the_resolved_arguments_not_the_variant_names():
    config = grid.load()
    found = setups.variant_matches(config, "paper", ["vpg_gae", "vpg_value_baseline", "trpo", "ppo_clip_0.2",
                                                     "ppo_clip_0.2_no_trunc_bootstrap", "ppo1_clip_0.2",
                                                     "ppo_clip_0.2_es_0.01", "ppo_gae_0.96", "ppo_kl_adaptive_0.01"])
    ppo2 = [("baselines", "ppo2"), ("cleanrl", "ppo_continuous_action"), ("cleanrl", "ppo")]
    assert found == {"vpg_gae": [("spinningup_pytorch", "vpg")], "vpg_value_baseline": [],
                     "trpo": [("baselines", "trpo_mpi"), ("spinningup_tf1", "trpo")],
                     "ppo_clip_0.2": ppo2, "ppo_clip_0.2_no_trunc_bootstrap": ppo2,
                     "ppo1_clip_0.2": [],  # the paper-era regime is not baselines ppo2's
                     "ppo_clip_0.2_es_0.01": [("spinningup_pytorch", "ppo")],
                     "ppo_gae_0.96": [],  # baselines ppo2 and CleanRL use λ = 0.95
                     "ppo_kl_adaptive_0.01": []}
    # a renamed variant with the same arguments matches the same
    renamed = {**config, "variants": {**config["variants"], "clip_renamed": config["variants"]["ppo_clip_0.2"]}}
    assert setups.variant_matches(renamed, "paper", ["clip_renamed"]) == {"clip_renamed": ppo2}


def test_our_policy_shape_is_read_from_the_algorithm_files():
    # every algorithm file: 64×64 tanh, state-independent log σ starting at 0 (σ = 1)
    assert setups.policy_shape("ppo", {"init": "orthogonal"}) == ("64×64 tanh", 0.0)
    assert setups.policy_shape("ppo", {"init": "normc"}) == ("64×64 tanh", 0.0)
    assert setups.policy_shape("trpo", {"init": "orthogonal"}) == ("64×64 tanh", 0.0)
    assert setups.policy_shape("vpg", {"init": "normc"}) == ("64×64 tanh", 0.0)


def test_our_action_handling_is_what_the_algorithm_files_do():
    rollout = (grid.ROOT / "algorithms" / "run_contract.py").read_text()  # the environment loop every file uses
    assert "the env gets the clipped action" in rollout and "np.minimum(np.maximum(action[i], self.low), self.high)" in rollout
    for algo in ("ppo", "trpo", "vpg"):
        assert "rc.Rollout(" in (grid.ROOT / "algorithms" / f"{algo}.py").read_text()


@pytest.mark.parametrize("variant, source, algo, expected", [
    # our ppo2 regime is baselines ppo2 bar the truncation bootstrap and the action clipping (CleanRL's)
    ("ppo_clip_0.2", "baselines", "ppo2", {"bootstrap_truncation", "actions_to_env", "env"}),
    ("ppo_clip_0.2", "cleanrl", "ppo_continuous_action", {"bootstrap_truncation", "env"}),
    # our TRPO takes trpo_mpi's MuJoCo defaults, with a 64×64 network and Spinning Up's line search
    ("trpo", "baselines", "trpo_mpi", {"backtrack_coef", "obs_clip", "scale_rewards", "hidden", "bootstrap_truncation",
                                       "actions_to_env", "env"}),
    ("trpo", "spinningup_tf1", "trpo", {"batch_size", "vf_epochs", "gae_lambda", "norm_obs", "init", "hidden",
                                        "log_std_init", "actions_to_env", "env"}),
    # our VPG takes Spinning Up's hyper-parameters; not its advantage standardisation, init or σ
    ("vpg_gae", "spinningup_pytorch", "vpg", {"norm_adv", "init", "hidden", "log_std_init", "actions_to_env",
                                              "env"}),
    ("ppo_clip_0.2_es_0.01", "spinningup_pytorch", "ppo",
     {"num_steps", "minibatch_size", "update_epochs", "learning_rate", "anneal_lr", "gae_lambda", "norm_obs",
      "scale_rewards", "adv_norm", "clip_vloss", "max_grad_norm", "adam_eps", "init", "hidden", "log_std_init",
      "actions_to_env", "env"}),
])
def test_differences_against_each_published_setup(variant, source, algo, expected):
    assert differing(variant, source, algo) == expected


def test_cleanrls_classic_control_ppo_is_compared_where_it_published_and_nowhere_else():
    cartpole = paper_runs("ppo_clip_0.2", ("CartPole-v1",))
    differ, agree = setups.differences(cartpole, "ppo_clip_0.2", "cleanrl", "ppo")
    assert {name for name, *_ in differ} == {"num_envs", "num_steps", "minibatch_size", "update_epochs", "learning_rate",
                                             "norm_obs", "scale_rewards", "ent_coef", "bootstrap_truncation", "env"}
    assert ("ent_coef", "0.01", "0") in [row[:3] for row in differ]  # ours has no entropy bonus (setups.ABSENT)
    assert ("hidden", "64×64 tanh") in agree
    blocks = [b for b in setups.reading(cartpole, ["ppo_clip_0.2"]).split("\n\n") if b.startswith("*")]
    assert [b.split(".*")[0] for b in blocks] == ["*ppo_clip_0.2 against cleanrl ppo"]  # not the MuJoCo-only setups
    mujoco = setups.reading(paper_runs("ppo_clip_0.2", ("Hopper-v5",)), ["ppo_clip_0.2"])
    assert "against cleanrl ppo." not in mujoco and "against cleanrl ppo_continuous_action." in mujoco


def test_same_reads_the_published_text_as_our_type():
    assert setups.same("True", True) and not setups.same("False", True) and not setups.same("1", True)
    assert setups.same("3e-4", 0.0003) and setups.same("2048", 2048) and not setups.same("0.97", 0.98)
    assert not setups.same("80 full-batch steps", 80) and setups.same("orthogonal", "orthogonal")


def test_reading_tables_each_difference_with_both_values_and_the_env_versions():
    text = setups.reading(paper_runs("ppo_clip_0.2", ("Hopper-v5", "Walker2d-v5")), ["ppo_clip_0.2", "not_run"])
    blocks = text.split("\n\n")
    assert blocks[0].startswith("*ppo_clip_0.2 against baselines ppo2.* The same: num_steps 2048, minibatch_size 64, ")
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in blocks[1].splitlines()[2:]]
    assert [row[:3] for row in rows] == [
        ["bootstrap_truncation", "False", "True"], ["actions_to_env", "the raw Gaussian sample", "clipped to the action bounds"],
        ["env", "-v2? (mujoco-py; the page does not say) [S]", "-v5 (gymnasium 1.4.0, MuJoCo 4.0.0)"]]
    assert blocks[2].startswith("*ppo_clip_0.2 against cleanrl ppo_continuous_action.*")
    assert len(blocks) == 5 and "setups.csv" in blocks[4]  # the variant without runs has no block
    assert setups.reading(paper_runs("ppo_clip_0.2"), ["ppo_none"]) == ""


def test_a_setting_that_is_not_ours_is_refused_by_name():
    bad = pd.DataFrame([{"source": "baselines", "algo": "ppo2", "setting": "num_minibatches", "theirs": "32",
                         "effect": "", "reference": "", "tag": "P"}])
    with pytest.raises(KeyError, match="baselines ppo2: 'num_minibatches' is neither an argument"):
        setups.differences(paper_runs("ppo_clip_0.2"), "ppo_clip_0.2", "baselines", "ppo2", bad)


def test_a_stale_run_without_the_argument_says_so_instead_of_guessing():
    runs = paper_runs("ppo_clip_0.2")
    runs.at[0, "args"] = {k: v for k, v in runs.args[0].items() if k != "adv_norm"}  # made before --adv-norm existed
    differ, agree = setups.differences(runs, "ppo_clip_0.2", "cleanrl", "ppo_continuous_action")
    assert ("adv_norm", "minibatch", "not in these runs' run.json", "", "P") in differ
    assert "adv_norm" not in {name for name, _ in agree}


def test_gaussian_sigma_inverts_the_entropy_torch_computes():
    assert stats.gaussian_sigma(0.5 * math.log(2 * math.pi * math.e), 1) == pytest.approx(1.0)  # H of N(0, 1)
    log_std = torch.tensor([-1.2, -0.5, 0.0, 0.3, 0.7, -2.0])
    entropy = torch.distributions.Normal(torch.zeros(6), log_std.exp()).entropy().sum().item()
    assert stats.gaussian_sigma(entropy, 6) == pytest.approx(math.exp(log_std.mean().item()), rel=1e-6)


def noise_progress(rows):
    """A progress frame of (variant, env, seed, σ) runs: two iterations each, the last one with entropy of σ in
    every one of HalfCheetah's 6 action dimensions (Ant's 8)."""
    dims = {"HalfCheetah-v5": 6, "Ant-v5": 8}
    return pd.DataFrame([{"variant": v, "env": env, "seed": seed, "iteration": it, "global_step": 1000 * it,
                          "entropy": dims[env] * (0.5 * math.log(2 * math.pi * math.e) + math.log(1.0 if it == 1 else sigma))}
                         for v, env, seed, sigma in rows for it in (2, 1)])


def test_noise_names_the_variant_that_keeps_its_initial_sigma():
    envs = ("HalfCheetah-v5", "Ant-v5")
    runs = pd.concat([paper_runs("vpg_gae", envs), paper_runs("ppo_clip_0.2", envs)])
    planned = [Run(v, env, seed) for v in ("vpg_gae", "ppo_clip_0.2") for env in envs for seed in (1, 2)]
    progress = noise_progress([("vpg_gae", "HalfCheetah-v5", 1, 0.98), ("vpg_gae", "HalfCheetah-v5", 2, 0.96),
                               ("vpg_gae", "Ant-v5", 1, 0.95),  # seed 2 missing
                               ("ppo_clip_0.2", "HalfCheetah-v5", 1, 0.2), ("ppo_clip_0.2", "HalfCheetah-v5", 2, 0.3),
                               ("ppo_clip_0.2", "Ant-v5", 1, 0.5), ("ppo_clip_0.2", "Ant-v5", 2, 0.4),
                               ("ppo_clip_0.2", "Ant-v5", 3, 0.01)])  # a seed not planned: left out
    text = setups.noise(runs, progress, planned)
    table = text.split("\n\n")[0].splitlines()
    assert [c.strip() for c in table[0].split("|")[2:5]] == ["σ at the start", "Ant-v5", "HalfCheetah-v5"]
    vpg = [c.strip() for c in table[2].split("|")[1:-1]]
    assert vpg == ["vpg_gae", "1.00", "0.95 (1 of 2 seeds)", "0.97", "spinningup_pytorch vpg 0.61"]
    ppo = [c.strip() for c in table[3].split("|")[1:-1]]
    assert ppo == ["ppo_clip_0.2", "1.00", "0.45", "0.25", "baselines ppo2 1.00; cleanrl ppo_continuous_action 1.00"]
    assert ("- vpg_gae ends at σ 0.95–0.97 after 2,000 steps, having started at 1.00: its policy keeps almost all of "
            "its initial exploration noise; spinningup_pytorch vpg starts at 0.61.") in text
    assert "- The other variants end at σ 0.25–0.45." in text
    assert "ppo_clip_0.2 ends" not in text
    # a σ that ends above its start (as printed) is named
    grown = noise_progress([("vpg_gae", "HalfCheetah-v5", 1, 1.13), ("vpg_gae", "Ant-v5", 1, 1.004)])
    assert ("- vpg_gae ends at σ 1.00–1.13 after 2,000 steps, having started at 1.00: its policy keeps almost all of "
            "its initial exploration noise, and on HalfCheetah-v5 ends with more; spinningup_pytorch vpg starts at "
            "0.61.") in setups.noise(runs, grown, planned)


def test_noise_without_a_gaussian_policy_is_empty():
    planned = [Run("ppo_clip_0.2", "CartPole-v1", 1)]
    progress = pd.DataFrame([{"variant": "ppo_clip_0.2", "env": "CartPole-v1", "seed": 1, "iteration": 1,
                              "global_step": 1000, "entropy": 0.6}])
    assert setups.noise(paper_runs("ppo_clip_0.2", ("CartPole-v1",)), progress, planned) == ""


def make_quiet(env_id):
    with warnings.catch_warnings():  # a -v4 id is deprecated, on purpose here
        warnings.simplefilter("ignore")
        return gym.make(env_id).unwrapped


def test_env_changes_say_what_the_installed_gymnasium_does():
    """The numbers of analysis/published/env_changes.csv, checked against -v4 and -v5 as gymnasium builds them."""
    changes = pd.read_csv(PUBLISHED / "env_changes.csv", dtype=str, keep_default_na=False)
    assert set(changes.tag) <= {"P", "U"} and not (changes.change == "").any()
    tasks = {env.rsplit("-", 1)[0] for env in grid.random_envs(grid.load(), "paper")}
    assert tasks <= set(changes.env), "every env of the paper scale has its row(s), 'none' included"
    # Walker2d: the right foot's friction was 0.9, the left 1.9; -v5 gives both 1.9
    for version, right in (("v4", 0.9), ("v5", 1.9)):
        model = make_quiet(f"Walker2d-{version}").model
        friction = {mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, i): model.geom_friction[i][0]
                    for i in range(model.ngeom)}
        assert (friction["foot_geom"], friction["foot_left_geom"]) == pytest.approx((right, 1.9))
    # observation sizes the rows quote
    for env, v4, v5 in (("Ant", 27, 105), ("Reacher", 11, 10), ("InvertedDoublePendulum", 11, 9)):
        assert make_quiet(f"{env}-v4").observation_space.shape == (v4,)
        assert make_quiet(f"{env}-v5").observation_space.shape == (v5,)
    # the healthy rewards and the contact-cost bound
    for env, reward in (("Ant", 1), ("Hopper", 1), ("Walker2d", 1), ("InvertedDoublePendulum", 10)):
        assert make_quiet(f"{env}-v5")._healthy_reward == reward
        assert f"healthy_reward {reward})" in changes[(changes.env == env) & (changes.kind == "reward")].effect.iloc[0]
    ant = make_quiet("Ant-v5")
    assert ant._contact_cost_weight == 5e-4 and ant._contact_force_range == (-1.0, 1.0)
    assert ant.data.cfrc_ext[1:].size == 78  # the world body (row 0) left out


def test_env_changes_table_keeps_the_asked_envs_and_the_simulator_row():
    text = setups.env_changes(["Hopper-v5", "HalfCheetah-v5"])
    rows = [line.split("|")[1].strip() for line in text.split("\n\n")[1].splitlines()[2:]]
    assert rows == ["all", "HalfCheetah", "Hopper"]
    assert setups.env_changes([]).count("\n| all ") == 1


def test_a_setting_set_per_task_is_compared_on_the_tasks_the_setup_published():
    """VPG's pi_lr is 0.01 on classic control (env_args) and Spinning Up's 3e-4 elsewhere; Spinning Up published
    MuJoCo only, so the comparison reads our MuJoCo runs and finds the two the same."""
    runs = paper_runs("vpg_gae", ("CartPole-v1", "Hopper-v5"))  # CartPole first: the first run is not the compared one
    assert [a["pi_lr"] for a in runs.args] == [0.01, 0.0003]
    assert setups.ours(runs, "vpg_gae")["pi_lr"] == "0.01 on CartPole-v1; 0.0003 on Hopper-v5"
    text = setups.reading(runs, ["vpg_gae"])
    assert "pi_lr 0.0003" in text.split("Different:")[0]  # among the settings that are the same
    assert "| pi_lr" not in text
    assert "-v5 (gymnasium" in text and "-v1" not in text  # the env row: the compared tasks' versions only
