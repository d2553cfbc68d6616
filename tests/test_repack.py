"""experiments/repack.py: a finished run's .csv.gz files become smaller .csv.xz files that say exactly the
same; a repack cut short is finished by the next; a run that is not finished, or that a process owns, is
left as it is; the workflow's job wrapper repacks the runs it finishes."""
import fcntl
import gzip
import lzma
import shutil
import subprocess
import sys

import pytest

from analysis import compare, load
from conftest import ROOT, load_algorithm
from experiments import repack

GZ = ("progress.csv.gz", "episodes.csv.gz")
XZ = ("progress.csv.xz", "episodes.csv.xz")


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


def texts(run, names):
    return {n.split(".")[0]: (gzip if n.endswith(".gz") else lzma).decompress((run / n).read_bytes()) for n in names}


def test_a_finished_run_gets_smaller_and_reads_the_same(written, tmp_path):
    run = scale_with(written, tmp_path, "repacked")
    before = {n: (run / n).read_bytes() for n in GZ}
    assert repack.main([str(tmp_path / "repacked" / "runs")]) == 0
    assert sorted(p.name for p in run.iterdir()) == ["episodes.csv.xz", "progress.csv.xz", "run.json"]
    assert texts(run, XZ) == texts(written, GZ)
    assert sum(len((run / n).read_bytes()) for n in XZ) < sum(map(len, before.values()))
    assert load.run_file(run, "progress").name == "progress.csv.xz"
    assert compare.differences(written.parents[3], tmp_path / "repacked") == []  # the same runs, read through xz
    assert load.load_run(run)[1].equals(load.load_run(written)[1])
    assert not (run / ".lock").exists()  # finished runs hold no lock: the repack leaves none
    again = {n: (run / n).read_bytes() for n in XZ}
    assert repack.repack_run(run) == (0, 0)  # nothing left to repack: unchanged
    assert {n: (run / n).read_bytes() for n in XZ} == again


def test_a_repack_cut_short_is_finished_by_the_next_and_refuses_two_different_texts(written, tmp_path):
    run = scale_with(written, tmp_path, "cut")
    (run / "progress.csv.xz").write_bytes(lzma.compress(gzip.decompress((run / "progress.csv.gz").read_bytes())))
    assert load.run_file(run, "progress").name == "progress.csv.xz"  # both there, the same text: either reads
    repack.repack_run(run)
    assert sorted(p.name for p in run.iterdir()) == ["episodes.csv.xz", "progress.csv.xz", "run.json"]
    assert texts(run, XZ) == texts(written, GZ)

    clash = scale_with(written, tmp_path, "clash")
    (clash / "episodes.csv.xz").write_bytes(lzma.compress(b"global_step,ep_return,ep_length,terminated\n"))
    before = {n: (clash / n).read_bytes() for n in ("episodes.csv.gz", "episodes.csv.xz")}
    with pytest.raises(RuntimeError, match="episodes.csv.xz: holds other text than episodes.csv.gz"):
        repack.repack_run(clash)
    assert {n: (clash / n).read_bytes() for n in before} == before  # neither of the pair changed
    assert not (clash / ".lock").exists()


def test_a_run_without_run_json_or_owned_by_a_process_is_left_alone(written, tmp_path):
    unfinished = scale_with(written, tmp_path, "unfinished")
    (unfinished / "run.json").unlink()
    owned = scale_with(written, tmp_path, "owned")
    before = {d: {n: (d / n).read_bytes() for n in GZ} for d in (unfinished, owned)}
    with open(owned / ".lock", "a+") as lock:  # as a live run holds it
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert repack.repack_run(unfinished) is None and repack.repack_run(owned) is None
    assert {d: {n: (d / n).read_bytes() for n in GZ} for d in before} == before
    assert not any((d / n).exists() for d in before for n in XZ)
    assert (owned / ".lock").exists()  # the owner's lock file stays


def test_the_workflow_job_wrapper_repacks_a_run_it_finished(tmp_path):
    """experiments/job.py, as the train rule calls it: a successful compressed run comes out as .csv.xz files
    (what the train rule names as its outputs); an uncompressed run is left as it is."""
    base = [sys.executable, str(ROOT / "experiments" / "job.py"), sys.executable, str(ROOT / "algorithms" / "ppo.py"),
            "--env-id", "CartPole-v1", "--total-timesteps", "512", "--num-steps", "128", "--minibatch-size", "64",
            "--update-epochs", "1"]
    compressed, plain = tmp_path / "compressed", tmp_path / "plain"
    assert subprocess.run(base + ["--out", str(compressed), "--compress"], capture_output=True).returncode == 0
    assert sorted(p.name for p in compressed.iterdir()) == ["episodes.csv.xz", "progress.csv.xz", "run.json"]
    assert subprocess.run(base + ["--out", str(plain)], capture_output=True).returncode == 0
    assert sorted(p.name for p in plain.iterdir()) == ["episodes.csv", "progress.csv", "run.json"]


HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def job_files(scale, job, log, seconds, finished=True, live=False, benchmark=True):
    """A training job as the workflow leaves it: its run folder, its Snakemake log and benchmark."""
    run = scale / "runs" / job
    run.mkdir(parents=True, exist_ok=True)
    if finished:
        (run / "run.json").write_text("{}")
    if live:
        (run / ".lock").write_text("123\n")
    (scale / "logs" / "train" / f"{job}.log").parent.mkdir(parents=True, exist_ok=True)
    (scale / "logs" / "train" / f"{job}.log").write_text(log)
    if benchmark:
        (scale / "benchmarks" / "train" / f"{job}.tsv").parent.mkdir(parents=True, exist_ok=True)
        (scale / "benchmarks" / "train" / f"{job}.tsv").write_text(
            HEADER + f"{seconds}\t0:00:01\t296.00\t739.29\t179.56\t218.97\t1.40\t0.36\t93.42\t{seconds}\n")


def own_files(scale, job):
    return [p for p in (scale / "logs" / "train" / f"{job}.log", scale / "benchmarks" / "train" / f"{job}.tsv")
            if p.exists()]


def test_folding_keeps_every_finished_jobs_log_and_benchmark_verbatim_and_leaves_the_rest(tmp_path):
    scale = tmp_path / "paper"
    done = {"ppo_clip_0.2/Hopper-v5/seed1": "iter 1/2\nWARNING: a\n", "trpo/Ant-v5/seed2": "no final newline"}
    for i, (job, log) in enumerate(done.items()):
        job_files(scale, job, log, 10.5 + i)
    job_files(scale, "vpg_gae/Hopper-v5/seed1", "killed\n", 1.0, finished=False)  # cut off: no run.json
    job_files(scale, "vpg_gae/Hopper-v5/seed2", "alive\n", 2.0, live=True)  # a run owns its folder
    job_files(scale, "vpg_gae/Hopper-v5/seed3", "ending\n", 3.0, benchmark=False)  # Snakemake not done yet
    (scale / "benchmarks" / "random").mkdir(parents=True)
    (scale / "benchmarks" / "random" / "Hopper-v5.tsv").write_text(HEADER + "4.0\t0:00:04\t1\t1\t1\t1\t0\t0\t1\t4.0\n")

    assert repack.fold_job_files(scale) == 2
    assert repack.folded_logs(scale) == {"ppo_clip_0.2/Hopper-v5/seed1": "iter 1/2\nWARNING: a\n",
                                         "trpo/Ant-v5/seed2": "no final newline\n"}
    assert (scale / repack.FOLDED_BENCHMARKS).read_text() == (
        "job\t" + HEADER
        + "ppo_clip_0.2/Hopper-v5/seed1\t10.5\t0:00:01\t296.00\t739.29\t179.56\t218.97\t1.40\t0.36\t93.42\t10.5\n"
        + "trpo/Ant-v5/seed2\t11.5\t0:00:01\t296.00\t739.29\t179.56\t218.97\t1.40\t0.36\t93.42\t11.5\n")
    assert all(own_files(scale, job) == [] for job in done)
    # emptied folders stay: a running job's own folder may be empty (Snakemake writes its benchmark at the end)
    assert (scale / "logs" / "train" / "trpo" / "Ant-v5").is_dir() and (scale / "benchmarks" / "train" / "trpo").is_dir()
    assert [len(own_files(scale, f"vpg_gae/Hopper-v5/seed{k}")) for k in (1, 2, 3)] == [2, 2, 1]
    # every job counted once: 2 folded, 2 of their own, the random policy's
    assert sorted(repack.benchmarks(scale).s) == [1.0, 2.0, 4.0, 10.5, 11.5]

    folded = {p: (scale / p).read_bytes() for p in (repack.FOLDED_LOG, repack.FOLDED_BENCHMARKS)}
    assert repack.fold_job_files(scale) == 0  # nothing new: nothing written
    assert {p: (scale / p).read_bytes() for p in folded} == folded

    # trpo runs again: its new files count instead of its folded row until they are folded in its place
    job_files(scale, "trpo/Ant-v5/seed2", "second run\n", 20.0)
    assert sorted(repack.benchmarks(scale).s) == [1.0, 2.0, 4.0, 10.5, 20.0]
    assert repack.fold_job_files(scale) == 1
    assert repack.folded_logs(scale)["trpo/Ant-v5/seed2"] == "second run\n"
    assert sorted(repack.benchmarks(scale).s) == [1.0, 2.0, 4.0, 10.5, 20.0]


def test_a_job_of_several_seeds_folds_once_all_its_runs_are_finished(tmp_path):
    """A job is a variant × env whose seeds train in one process: its log and benchmark fold when every seed
    folder under it holds a finished run and none is owned by a live run."""
    scale = tmp_path / "paper"
    for job, seeds in (("ppo_clip_0.2/Walker2d-v5", (4, 5)), ("ppo_none/Walker2d-v5", (4, 5))):
        job_files(scale, job, f"{job}\n", 7.0, finished=False)
        for seed in seeds:
            (scale / "runs" / job / f"seed{seed}").mkdir()
            (scale / "runs" / job / f"seed{seed}" / "run.json").write_text("{}")
    (scale / "runs" / "ppo_none/Walker2d-v5/seed5/.lock").write_text("123\n")  # still training
    assert repack.fold_job_files(scale) == 1
    assert list(repack.folded_logs(scale)) == ["ppo_clip_0.2/Walker2d-v5"]
    assert len(own_files(scale, "ppo_none/Walker2d-v5")) == 2


def test_a_log_line_that_reads_as_a_head_line_is_refused_before_anything_changes(tmp_path):
    scale = tmp_path / "paper"
    job_files(scale, "ppo_none/Reacher-v5/seed1", "fine\n", 1.0)
    job_files(scale, "ppo_none/Reacher-v5/seed2", "==> ppo_none/Reacher-v5/seed1 <==\n", 2.0)
    with pytest.raises(RuntimeError, match="seed2.log: a line reads as a folded log's head line"):
        repack.fold_job_files(scale)
    assert not (scale / repack.FOLDED_LOG).exists()
    assert len(own_files(scale, "ppo_none/Reacher-v5/seed1")) == 2


def test_the_report_counts_folded_and_own_benchmarks_once(tmp_path):
    import pandas as pd
    from analysis import report
    scale = tmp_path / "paper"
    job_files(scale, "ppo_none/Reacher-v5/seed1", "a\n", 1800.0)
    repack.fold_job_files(scale)
    job_files(scale, "ppo_none/Reacher-v5/seed2", "b\n", 1800.0)
    runs = pd.DataFrame({"steps": [10, 10], "walltime_s": [1.0, 1.0], "peak_rss_mb": [5.0, 5.0]})
    assert "Snakemake benchmarks: 2 jobs, 1.00 job-hours" in report.compute_text(scale, runs)
