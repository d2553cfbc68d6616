"""A finished run is replaced only by a complete new one. publish() is killed (SIGKILL) at every step
that changes the file system, in turn: each time --out must hold a whole finished run, either the old
one byte for byte or the new one, never a mixture and never neither (docs/DESIGN.md §3)."""
import json
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, read_csv, without_clock

# Runs vpg.py on CartPole with --overwrite over the run in argv[1], SIGKILLing itself just before the
# file-system step number argv[2] of publish() (0: never), and prints how many steps publish() took.
KILLER = r"""
import os, shutil, signal, sys
import run_contract
sys.path.insert(0, os.path.join(sys.argv[3], "algorithms"))
import vpg

steps, kill_at = [0], int(sys.argv[2])
def step(fn):
    def wrapped(*args, **kwargs):
        steps[0] += 1
        if steps[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return fn(*args, **kwargs)
    return wrapped
publish = run_contract.RunFiles.publish
def instrumented(self, meta):
    saved = os.replace, os.mkdir, run_contract.exchange, shutil.rmtree, run_contract.json.dump
    os.replace, os.mkdir, run_contract.exchange, shutil.rmtree, run_contract.json.dump = map(step, saved)
    try:
        return publish(self, meta)
    finally:
        os.replace, os.mkdir, run_contract.exchange, shutil.rmtree, run_contract.json.dump = saved
run_contract.RunFiles.publish = instrumented
vpg.train(vpg.Args(env_id="CartPole-v1", seed=2, batch_size=64, train_v_iters=2, total_timesteps=128,
                   out=sys.argv[1], overwrite=True), quiet=True)
print(steps[0])
"""


def train(out, kill_at):
    return subprocess.run([sys.executable, "-c", KILLER, str(out), str(kill_at), str(ROOT)], capture_output=True,
                          text=True, timeout=300)


def snapshot(run):
    return {f: without_clock(read_csv(run / f)) for f in ("progress.csv", "episodes.csv")}


def test_a_kill_at_any_step_of_publishing_leaves_the_old_run_or_the_new_one(tmp_path):
    old = tmp_path / "old"
    subprocess.run([sys.executable, str(ROOT / "algorithms" / "vpg.py"), "--env-id", "CartPole-v1", "--seed", "1",
                    "--batch-size", "64", "--train-v-iters", "2", "--total-timesteps", "128", "--out", str(old)],
                   check=True, capture_output=True, timeout=300)
    new = tmp_path / "new"
    shutil.copytree(old, new)
    done = train(new, 0)
    assert done.returncode == 0, done.stderr
    steps = int(done.stdout)
    assert steps >= 5  # mkdir, two renames, run.json, the exchange, removing the old run
    old_files, new_files = snapshot(old), snapshot(new)
    assert old_files != new_files  # seed 2 against seed 1: telling them apart is possible
    outcomes = []
    for kill_at in range(1, steps + 1):
        out = tmp_path / f"kill{kill_at}"
        shutil.copytree(old, out)
        killed = train(out, kill_at)
        assert killed.returncode == -9, (kill_at, killed.stderr)
        assert (out / "run.json").exists(), f"killed before step {kill_at}: no finished run left"
        now = snapshot(out)
        assert now in (old_files, new_files), f"killed before step {kill_at}: a mixture of two runs"
        assert json.loads((out / "run.json").read_text())["seed"] == (1 if now == old_files else 2)
        outcomes.append("old" if now == old_files else "new")
    assert outcomes[0] == "old" and outcomes[-1] == "new", outcomes  # both sides of the one step are seen
    assert outcomes == sorted(outcomes, key=["old", "new"].index), outcomes  # old until the exchange, new after


def test_a_symlinked_lock_is_refused_and_its_target_untouched(tmp_path, capsys):
    import run_contract
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").symlink_to(victim)
    with pytest.raises(run_contract.UsageError, match=r"--out: cannot use .*\(its \.lock is a symbolic link"):
        run_contract.RunFiles(str(out), overwrite=False, compress=False)
    assert victim.read_text() == "precious\n"
