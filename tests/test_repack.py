"""experiments/repack.py: a finished run's CSV.gz files get smaller and say exactly the same; a run
that is not finished, or that a process owns, is left as it is; the workflow's job wrapper repacks
the runs it finishes."""
import fcntl
import gzip
import shutil
import subprocess
import sys

import pytest

from analysis import compare
from conftest import ROOT, load_algorithm
from experiments import repack

NAMES = ("progress.csv.gz", "episodes.csv.gz")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A compressed run as the algorithm files write it: flushed after each of its 16 iterations."""
    ppo = load_algorithm("ppo")
    out = tmp_path_factory.mktemp("written") / "runs" / "ppo_clip_0.2" / "CartPole-v1" / "seed1"
    ppo.train(ppo.Args(env_id="CartPole-v1", num_steps=128, minibatch_size=64, update_epochs=1,
                       total_timesteps=2048, out=str(out), compress=True), quiet=True)
    return out


def scale_with(run, tmp_path, name):
    dest = tmp_path / name / "runs" / "ppo_clip_0.2" / "CartPole-v1" / "seed1"
    shutil.copytree(run, dest)
    return dest


def test_a_finished_run_gets_smaller_and_reads_the_same(written, tmp_path):
    run = scale_with(written, tmp_path, "repacked")
    before = {n: (run / n).read_bytes() for n in NAMES}
    assert repack.main([str(tmp_path / "repacked" / "runs")]) == 0
    for n in NAMES:
        after = (run / n).read_bytes()
        assert len(after) < len(before[n]) and gzip.decompress(after) == gzip.decompress(before[n])
    assert compare.differences(written.parents[3], tmp_path / "repacked") == []
    assert not (run / ".lock").exists()  # finished runs hold no lock: the repack leaves none
    again = {n: (run / n).read_bytes() for n in NAMES}
    assert repack.repack_run(run) == (sum(map(len, again.values())),) * 2  # one stream already: unchanged
    assert {n: (run / n).read_bytes() for n in NAMES} == again


def test_a_run_without_run_json_or_owned_by_a_process_is_left_alone(written, tmp_path):
    unfinished = scale_with(written, tmp_path, "unfinished")
    (unfinished / "run.json").unlink()
    owned = scale_with(written, tmp_path, "owned")
    before = {d: {n: (d / n).read_bytes() for n in NAMES} for d in (unfinished, owned)}
    with open(owned / ".lock", "a+") as lock:  # as a live run holds it
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert repack.repack_run(unfinished) is None and repack.repack_run(owned) is None
    assert {d: {n: (d / n).read_bytes() for n in NAMES} for d in before} == before
    assert (owned / ".lock").exists()  # the owner's lock file stays


def test_the_workflow_job_wrapper_repacks_a_run_it_finished(tmp_path):
    """experiments/job.py, as the train rule calls it: a successful compressed run comes out as one gzip
    stream per file (exactly what repack writes); an uncompressed run is left as it is."""
    base = [sys.executable, str(ROOT / "experiments" / "job.py"), sys.executable, str(ROOT / "algorithms" / "ppo.py"),
            "--env-id", "CartPole-v1", "--total-timesteps", "512", "--num-steps", "128", "--minibatch-size", "64",
            "--update-epochs", "1"]
    compressed, plain = tmp_path / "compressed", tmp_path / "plain"
    assert subprocess.run(base + ["--out", str(compressed), "--compress"], capture_output=True).returncode == 0
    for n in NAMES:
        data = (compressed / n).read_bytes()
        assert data == gzip.compress(gzip.decompress(data), compresslevel=9, mtime=0)
    assert not (compressed / ".lock").exists()
    assert subprocess.run(base + ["--out", str(plain)], capture_output=True).returncode == 0
    assert sorted(p.name for p in plain.iterdir()) == ["episodes.csv", "progress.csv", "run.json"]
