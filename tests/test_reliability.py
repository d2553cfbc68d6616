"""Off the happy path: one line, never a traceback, for every way a user can get input wrong; nothing
run from data (docs/DESIGN.md §3, §9)."""
import errno
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, load_algorithm


def run_cli(*argv, **kwargs):
    return subprocess.run([sys.executable, *map(str, argv)], capture_output=True, text=True, timeout=300, **kwargs)


@pytest.mark.parametrize("argv,line", [
    (["--total-timesteps", "1e6"], "error: --total-timesteps: invalid int value: '1e6'"),
    (["--clip-epsilon", "0.1"], "error: --clip-epsilon: no such flag (did you mean --clip-eps?)"),
    (["--regime"], "error: --regime: expected one argument"),
])
def test_argument_errors_are_one_line_naming_the_flag(argv, line, tmp_path):
    proc = run_cli(ROOT / "algorithms" / "ppo.py", *argv, "--out", tmp_path / "run")
    assert proc.returncode == 2 and proc.stderr.strip() == line, proc.stderr
    assert not (tmp_path / "run").exists()  # nothing made before the checks pass


def test_a_full_disk_is_one_line_and_publishes_nothing(tmp_path, capsys, monkeypatch):
    vpg = load_algorithm("vpg")
    import run_contract

    def full(self, name, rows):
        raise OSError(errno.ENOSPC, "No space left on device", f"{self.out}/{name}.csv.partial")
    monkeypatch.setattr(run_contract.RunFiles, "write", full)
    with pytest.raises(SystemExit) as exit_info:
        vpg.main(["--env-id", "CartPole-v1", "--batch-size", "64", "--total-timesteps", "64", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 1 and len(err.splitlines()) == 1, err
    assert err.endswith("progress.csv.partial: No space left on device (nothing published)")
    assert not (tmp_path / "r" / "run.json").exists()


def test_ctrl_c_while_starting_is_one_line_and_exit_130(tmp_path):
    proc = subprocess.Popen([sys.executable, str(ROOT / "algorithms" / "trpo.py"), "--env-id", "CartPole-v1",
                             "--out", str(tmp_path / "run")], stderr=subprocess.PIPE, text=True)
    # inside the imports of torch and gymnasium: once torch's library is mapped (a fixed sleep can end before
    # Python has run the script's first line on a loaded machine, where no handler of ours can be in place)
    maps, deadline = pathlib.Path(f"/proc/{proc.pid}/maps"), time.time() + 60
    while "libtorch" not in maps.read_text():
        assert proc.poll() is None and time.time() < deadline, "trpo.py ended, or never reached `import torch`"
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1].strip()
    assert proc.returncode == 130 and len(err.splitlines()) == 1 and err.startswith("interrupted"), err


def test_the_random_policy_script_refuses_bad_input_in_one_line(tmp_path):
    for argv, line in ([["--seed", "-3"], "error: --seed: must be >= 0, got -3"],
                       [["--seed", "x"], "error: argument --seed: invalid int value: 'x'"]):
        proc = run_cli(ROOT / "experiments" / "random_policy.py", "--env-id", "CartPole-v1", "--out",
                       tmp_path / "r.csv", *argv)
        assert proc.returncode != 0 and proc.stderr.strip() == line, proc.stderr


@pytest.mark.parametrize("target", ["results/smoke/random/x||touch pgrepro_injected||echo.csv",
                                    "results/smoke/gradient_noise/x;touch pgrepro_injected;/seed1.csv"])
def test_a_target_path_cannot_run_a_shell_command(target, tmp_path):
    proc = run_cli("-m", "snakemake", "-s", ROOT / "Snakefile", "--directory", tmp_path, "--cores", "1",
                   target, "--config", "scale=smoke", cwd=tmp_path)
    assert proc.returncode != 0
    assert not (tmp_path / "pgrepro_injected").exists() and not (ROOT / "pgrepro_injected").exists()


def test_analysis_load_takes_a_run_a_runs_folder_or_a_scale_and_has_help():
    run = ROOT / "results" / "paper" / "runs" / "trpo" / "Hopper-v5" / "seed1"
    proc = run_cli("-m", "analysis.load", run, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.startswith(f"{run}: a finished trpo run, Hopper-v5 seed 1"), proc.stderr
    assert run_cli("-m", "analysis.load", "--help", cwd=ROOT).stdout.startswith("usage: python -m analysis.load")
    proc = run_cli("-m", "analysis.load", ROOT / "results" / "nowhere", cwd=ROOT)
    assert proc.returncode == 2 and proc.stderr.strip().endswith("nowhere: no such folder")


def test_repack_never_writes_through_a_symlinked_lock(tmp_path):
    import shutil
    run = tmp_path / "runs" / "trpo" / "Hopper-v5" / "seed1"
    shutil.copytree(ROOT / "results" / "paper" / "runs" / "trpo" / "Hopper-v5" / "seed1", run)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (run / ".lock").symlink_to(victim)
    proc = run_cli("-m", "experiments.repack", tmp_path / "runs", cwd=ROOT)
    assert proc.returncode != 0 and "a symbolic link is never followed" in proc.stderr and victim.read_text() == "precious\n"


def test_an_algorithm_name_from_a_run_json_never_reaches_a_file_outside_algorithms(tmp_path):
    from analysis import setups
    from experiments import grid
    (tmp_path / "evil.py").write_text("raise SystemExit('evil ran')\n")
    for name in ("../../x/evil", str(tmp_path / "evil"), "run_contract", "PPO", "ppo.py"):
        with pytest.raises(grid.ConfigError, match="no algorithm file"):
            grid.algorithm(name)
        with pytest.raises(grid.ConfigError):
            setups.policy_shape(name, {"init": "orthogonal"})


def test_the_progress_line_says_the_rounded_step_count_once_and_shows_an_eta(tmp_path):
    proc = run_cli(ROOT / "algorithms" / "vpg.py", "--env-id", "CartPole-v1", "--batch-size", "64",
                   "--total-timesteps", "200", "--out", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "vpg: training 192 steps, --total-timesteps 200 rounded down to whole batches of 64"
    assert sum("rounded down" in line for line in lines) == 1 and lines[-1].startswith("iter 3/3") and " eta " in lines[-1]


def test_ctrl_c_twice_in_a_run_is_one_line_and_leaves_no_lock(tmp_path):
    """A terminal's Ctrl-C reaches the whole process group, and experiments/job.py passes it on as well: the
    run sees two. The second must cut short neither the clean-up (the lock file) nor the exit (one line)."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(ROOT / "algorithms" / "ppo.py"), "--env-id", "HalfCheetah-v5",
                             "--total-timesteps", "200000", "--out", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "progress.csv.partial").exists():
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    time.sleep(1.0)  # training
    proc.send_signal(signal.SIGINT)
    time.sleep(0.003)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1].strip()
    assert proc.returncode == 130 and err == "interrupted: nothing published (the .partial files show how far it got)", err
    assert sorted(p.name for p in out.iterdir()) == ["episodes.csv.partial", "progress.csv.partial"]


def test_ctrl_c_while_a_run_sets_up_leaves_no_lock(tmp_path):
    """Ctrl-C after a run has taken its directory's lock but before it has entered its `with` (here: while
    it asks git for the commit, which a loaded machine can make take seconds) must not leave the lock file."""
    bin_dir, git_called = tmp_path / "bin", tmp_path / "git_called"
    bin_dir.mkdir()
    (bin_dir / "git").write_text(f"#!/bin/sh\ntouch {git_called}\nexec sleep 60\n")  # a git that takes a minute
    (bin_dir / "git").chmod(0o755)
    out = tmp_path / "run"
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    proc = subprocess.Popen([sys.executable, str(ROOT / "algorithms" / "vpg.py"), "--env-id", "CartPole-v1",
                             "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while not git_called.exists():
        assert time.time() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else ""
        time.sleep(0.05)
    assert (out / ".lock").exists()  # taken before the commit is asked for
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1].strip()
    assert proc.returncode == 130 and err == "interrupted: nothing published (the .partial files show how far it got)", err
    assert sorted(p.name for p in out.iterdir()) == ["episodes.csv.partial", "progress.csv.partial"]
