"""The contract every algorithm file keeps (docs/DESIGN.md §3-5): truncation handling on scripted
environments, NaN handling, determinism, the CLI's files and columns, and bad input."""
import math
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from conftest import (EPISODE_COLUMNS, PROGRESS_COLUMNS, ROOT, TINY, assert_usage_error, load_algorithm, read_csv,
                      without_clock)

ALGOS = ["ppo", "vpg", "trpo"]
ADVANTAGE_KEY = {"ppo": "advantages", "vpg": "weights", "trpo": "advantages"}


@pytest.fixture(scope="module", params=ALGOS)
def algo(request):
    return request.param, load_algorithm(request.param)


def tiny_args(module, name, tmp_path, **overrides):
    kw = dict(env_id="pgrepro/Truncating-v0", total_timesteps=8, norm_obs=False, out=str(tmp_path / "run"),
              **({"scale_rewards": False} if name == "ppo" else {}), **TINY[name])
    kw.update(overrides)
    return module.Args(**kw)


def first_batch(module, args):
    batches = []
    module.train(args, quiet=True, on_batch=lambda b: batches.append({k: None if v is None else v.copy() for k, v in b.items()}))
    return batches[0]


@pytest.mark.parametrize("bootstrap", [True, False])
def test_truncation_bootstraps_with_the_real_final_observation(algo, tmp_path, bootstrap):
    name, module = algo
    extra = {"weight": "gae"} if name == "vpg" else {}
    b = first_batch(module, tiny_args(module, name, tmp_path, bootstrap_truncation=bootstrap, **extra))
    np.testing.assert_array_equal(b["obs"][:, 0, 0], [0, 1, 2, 0, 1, 2, 0, 1])       # reset after 3 steps
    np.testing.assert_array_equal(b["next_obs"][:, 0, 0], [1, 2, 3, 1, 2, 3, 1, 2])  # real final obs: 3, not 0
    np.testing.assert_array_equal(b["ends"][:, 0], [0, 0, 1, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(b["terminated"][:, 0], [0] * 8 if bootstrap else [0, 0, 1, 0, 0, 1, 0, 0])
    v, v_next, adv = b["values"][:, 0], b["next_values"][:, 0], b[ADVANTAGE_KEY[name]][:, 0]
    assert v_next[2] == pytest.approx(v_next[5]) and v_next[2] != pytest.approx(v[3])  # V(3), not V(reset obs)
    gamma = module.Args.gamma
    delta_end = 1 + (gamma * v_next[2] if bootstrap else 0.0) - v[2]  # δ at the truncation step
    assert adv[2] == pytest.approx(delta_end, rel=1e-5)
    assert adv[7] == pytest.approx(1 + gamma * v_next[7] - v[7], rel=1e-5)  # batch end: bootstrap V(s_8)


def test_termination_is_never_bootstrapped(algo, tmp_path):
    name, module = algo
    extra = {"weight": "gae"} if name == "vpg" else {}
    b = first_batch(module, tiny_args(module, name, tmp_path, env_id="pgrepro/Terminating-v0", **extra))
    np.testing.assert_array_equal(b["terminated"][:, 0], [0, 0, 1, 0, 0, 1, 0, 0])
    assert b[ADVANTAGE_KEY[name]][2, 0] == pytest.approx(1 - b["values"][2, 0], rel=1e-5)


def test_nan_stops_with_error_and_publishes_nothing(algo, tmp_path):
    name, module = algo
    args = tiny_args(module, name, tmp_path, env_id="pgrepro/NaNReward-v0")
    with pytest.raises(module.NonFiniteError, match=r"iteration 1: [\w.]+ is (nan|not finite)"):
        module.train(args, quiet=True)
    files = sorted(os.listdir(args.out))
    assert "progress.csv" not in files and "run.json" not in files and "progress.csv.partial" in files


def short_run(module, name, tmp_path, tag, seed):
    size = {"ppo": dict(num_steps=128, minibatch_size=32, update_epochs=2), "vpg": dict(batch_size=128),
            "trpo": dict(batch_size=128)}[name]
    args = module.Args(env_id="CartPole-v1", seed=seed, total_timesteps=384, out=str(tmp_path / tag), **size)
    return module.train(args, quiet=True)


def test_same_seed_same_csvs_different_seed_differs(algo, tmp_path):
    name, module = algo
    a, b, c = (short_run(module, name, tmp_path, tag, seed) for tag, seed in (("a", 3), ("b", 3), ("c", 4)))
    for csv_name in ("progress.csv", "episodes.csv"):
        assert without_clock(read_csv(f"{a}/{csv_name}")) == without_clock(read_csv(f"{b}/{csv_name}"))
    assert read_csv(f"{a}/episodes.csv") != read_csv(f"{c}/episodes.csv")


NOT_APPLICABLE = {"ppo": {"line_search_steps", "step_accepted", "kl_beta"},
                  "vpg": {"clip_frac", "kl_beta", "early_stopped", "line_search_steps", "step_accepted"},
                  "trpo": {"clip_frac", "kl_beta", "early_stopped", "learning_rate"}}


@pytest.mark.parametrize("env_id", ["CartPole-v1", "InvertedPendulum-v5"])
@pytest.mark.parametrize("name,extra", [("vpg", ["--weight", "total_return"]), ("vpg", ["--weight", "gae"]),
                                        ("trpo", []), ("ppo", [])])
def test_cli_end_to_end(tmp_path, name, extra, env_id):
    out = tmp_path / "run"
    size = ["--num-steps", "256"] if name == "ppo" else ["--batch-size", "256"]
    proc = subprocess.run([sys.executable, str(ROOT / f"algorithms/{name}.py"), "--env-id", env_id, *size, *extra,
                           "--total-timesteps", "768", "--out", str(out)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    progress, episodes = read_csv(out / "progress.csv"), read_csv(out / "episodes.csv")
    assert progress[0] == PROGRESS_COLUMNS and episodes[0] == EPISODE_COLUMNS
    assert len(progress) == 4 and len(episodes) > 1
    nan_ok = NOT_APPLICABLE[name] | ({"value_loss", "explained_variance"} if "total_return" in extra else set())
    for row in progress[1:]:
        assert row[:3] == [name, env_id, "1"]
        for col, value in zip(progress[0][3:], row[3:]):
            assert math.isfinite(float(value)) != (col in nan_ok), (col, value)
    assert sorted(os.listdir(out)) == ["episodes.csv", "progress.csv", "run.json"]


COMMON_BAD_INPUTS = [
    (["--env-id", "NoSuchEnv-v0"], "--env-id"),
    (["--gamma", "1.5"], "--gamma"), (["--gamma", "-0.1"], "--gamma"), (["--gae-lambda", "2"], "--gae-lambda"),
    (["--total-timesteps", "0"], "--total-timesteps"), (["--total-timesteps", "10"], "--total-timesteps"),
    (["--seed", "x"], None), (["--out", "/proc/forbidden/run"], "--out"), (["--threads", "0"], "--threads"),
]


@pytest.mark.parametrize("argv,flag", COMMON_BAD_INPUTS)
def test_common_bad_input(algo, tmp_path, capsys, argv, flag):
    name, module = algo
    if flag is None:  # argparse's own type errors: exit 2 with a message naming the flag
        with pytest.raises(SystemExit) as exit_info:
            module.main(argv)
        assert exit_info.value.code == 2 and "--seed" in capsys.readouterr().err
    else:
        assert_usage_error(module, tmp_path, capsys, argv, flag)


def test_ctrl_c_deferred_holds_a_ctrl_c_until_the_block_ends():
    import run_contract
    reached_end = False
    with pytest.raises(KeyboardInterrupt):
        with run_contract.ctrl_c_deferred():
            signal.raise_signal(signal.SIGINT)
            for _ in range(1000):  # many chances for Python to run a handler
                pass
            reached_end = True
    assert reached_end and signal.getsignal(signal.SIGINT) is signal.default_int_handler
