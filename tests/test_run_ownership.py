"""Every algorithm file off the happy path: one writer per run directory, a finished run never
replaced silently, Ctrl-C exits 130, unsupported spaces and out-of-range sizes refused in one line."""
import json
import signal
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest

from conftest import ROOT, TINY, assert_usage_error, load_algorithm

ALGOS = ["ppo", "vpg", "trpo"]
SLOW = {"ppo": ["--num-steps", "64", "--minibatch-size", "64"], "vpg": ["--batch-size", "64"], "trpo": ["--batch-size", "64"]}


@pytest.fixture(scope="module", params=ALGOS)
def algo(request):
    return request.param, load_algorithm(request.param)


def tiny_argv(name, out, env="CartPole-v1", steps=16, seed=1):
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY[name].items()]
    return ["--env-id", env, "--total-timesteps", str(steps), "--seed", str(seed), "--out", str(out)] + flags


def start_long_run(name, out):
    """A real run in another process that lasts minutes; returns once it owns `out`."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "algorithms" / f"{name}.py"), "--env-id", "CartPole-v1",
                             "--total-timesteps", "10000000", "--out", str(out)] + SLOW[name],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            # as from a terminal: a test suite started in the background (`… &`, nohup)
                            # passes SIGINT on ignored, and Python then never raises KeyboardInterrupt
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while not (out / "progress.csv.partial").exists():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(proc.stderr.read() or "the run did not start within 60 s")
        time.sleep(0.1)
    return proc


def test_a_second_writer_is_refused_with_the_owners_pid_and_a_killed_owner_frees_the_directory(algo, tmp_path, capsys):
    name, module = algo
    out = tmp_path / "run"
    owner = start_long_run(name, out)
    try:
        with pytest.raises(SystemExit) as exit_info:
            module.main(tiny_argv(name, out, seed=2))
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err == f"error: --out: {out} is in use by another run (pid {owner.pid})"
        assert not (out / "run.json").exists()
    finally:
        owner.kill()  # SIGKILL: no cleanup code runs, the OS releases the lock
        owner.wait()
    module.main(tiny_argv(name, out, seed=2))
    assert json.loads((out / "run.json").read_text())["seed"] == 2


def test_ctrl_c_exits_130_and_publishes_nothing(algo, tmp_path):
    name, _ = algo
    proc = start_long_run(name, tmp_path / "run")
    try:
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:  # a run that ignored the signal must not train on after a failed test
        proc.kill()
        proc.wait()
    assert proc.returncode == 130 and proc.stderr.read().strip().startswith("interrupted:")
    assert not (tmp_path / "run" / "run.json").exists() and not (tmp_path / "run" / "progress.csv").exists()


def test_a_finished_run_is_refused_and_replaced_only_with_overwrite(algo, tmp_path, capsys):
    name, module = algo
    out = tmp_path / "run"
    module.main(tiny_argv(name, out, seed=1))
    first = {f: (out / f).read_bytes() for f in ("progress.csv", "episodes.csv", "run.json")}
    with pytest.raises(SystemExit) as exit_info:
        module.main(tiny_argv(name, out, seed=2))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (f"error: --out: {out} holds a finished run (run.json); "
                                               "pass --overwrite to replace it")
    assert {f: (out / f).read_bytes() for f in first} == first
    # --overwrite with a run that fails: the finished run stays as it was
    with pytest.raises(SystemExit):
        module.main(tiny_argv(name, out, env="pgrepro/NaNReward-v0", seed=3) + ["--overwrite"])
    assert {f: (out / f).read_bytes() for f in first} == first
    module.main(tiny_argv(name, out, seed=2) + ["--overwrite"])
    assert json.loads((out / "run.json").read_text())["seed"] == 2
    assert (out / "progress.csv").read_bytes() != first["progress.csv"]


def test_run_json_records_the_steps_actually_trained(algo, tmp_path):
    name, module = algo
    out = tmp_path / "run"
    module.main(tiny_argv(name, out, steps=20))  # 2 whole batches of 8
    meta = json.loads((out / "run.json").read_text())
    assert meta["args"]["total_timesteps"] == 20 and meta["steps_trained"] == 16


class DictObsEnv(gym.Env):
    observation_space = gym.spaces.Dict({"x": gym.spaces.Box(-1, 1, (2,))})
    action_space = gym.spaces.Discrete(2)


class MultiDiscreteEnv(gym.Env):
    observation_space = gym.spaces.Box(-1, 1, (2,))
    action_space = gym.spaces.MultiDiscrete([2, 3])


gym.register("pgrepro/DictObs-v0", entry_point=DictObsEnv)
gym.register("pgrepro/MultiDiscrete-v0", entry_point=MultiDiscreteEnv)


@pytest.mark.parametrize("env, words", [("Blackjack-v1", "observation space Tuple("),
                                        ("pgrepro/DictObs-v0", "observation space Dict("),
                                        ("pgrepro/MultiDiscrete-v0", "action space MultiDiscrete(")])
def test_unsupported_spaces_are_refused_naming_the_env_and_the_space(algo, tmp_path, capsys, env, words):
    name, module = algo
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--env-id", env, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"error: --env-id: {env} has the {words}") and f"{name}.py supports" in err


def test_a_missing_optional_dependency_gets_an_install_hint(algo, tmp_path):
    name, module = algo
    try:
        import Box2D  # noqa: F401
        pytest.skip("Box2D is installed here")
    except ImportError:
        pass
    with pytest.raises(module.UsageError, match=r"^--env-id: LunarLander-v3 needs an optional dependency: .*pip install"):
        module.validate(module.Args(env_id="LunarLander-v3", out=str(tmp_path / "run")))


def test_discrete_observations_are_one_hot_encoded(algo, tmp_path):
    name, module = algo
    seen = []
    args = module.Args(env_id="FrozenLake-v1", total_timesteps=8, norm_obs=False, out=str(tmp_path / "run"), **TINY[name])
    module.train(args, quiet=True, on_batch=lambda b: seen.append(b["obs"].copy()))
    obs = seen[0].reshape(8, 16)
    np.testing.assert_array_equal(obs.sum(1), np.ones(8))
    assert obs[0, 0] == 1.0  # FrozenLake starts in state 0


@pytest.mark.parametrize("argv, flag", [(["--threads", "100000"], "--threads"), (["--seed", "-1"], "--seed"),
                                        (["--num-envs", "2048", "--total-timesteps", str(10 ** 12)], "--num-envs")])
def test_out_of_range_numbers_are_refused_in_one_line(algo, tmp_path, capsys, argv, flag):
    name, module = algo
    batch = ["--batch-size", str(2048 * 4000)] if name != "ppo" and flag == "--num-envs" else []
    assert_usage_error(module, tmp_path, capsys, argv + batch, flag)


def test_a_batch_larger_than_memory_is_refused_before_allocating(algo, tmp_path, capsys):
    name, module = algo
    flag = "--num-steps" if name == "ppo" else "--batch-size"
    assert_usage_error(module, tmp_path, capsys, [flag, str(10 ** 9), "--total-timesteps", str(10 ** 12)], flag)
