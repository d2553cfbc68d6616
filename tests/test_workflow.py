"""The Snakemake workflow for real, at the smoke scale: every figure, table and the report are
produced; killing the workflow mid-run and starting it again gives the same files as an
uninterrupted run; changing one variant's arguments reruns only that variant's jobs."""
import datetime
import json
import os
import pathlib
import re
import shutil
import signal
import struct
import subprocess
import sys
import time

import pandas as pd
import pytest

from analysis.load import run_file
from conftest import ROOT, read_csv, without_clock
from experiments import grid

EXPERIMENTS = grid.ANALYSED


def snakemake(workdir, *args, overrides=(), **kwargs):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(ROOT / "experiments" / "config.yaml"), *map(str, overrides),
           "--config", "scale=smoke", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1200, **kwargs)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    # PGREPRO_SMOKE_DIR keeps this workflow's outputs there (.ci/run compares them with its SLURM run's)
    keep = os.environ.get("PGREPRO_SMOKE_DIR")
    workdir = pathlib.Path(keep) if keep else tmp_path_factory.mktemp("smoke")
    workdir.mkdir(parents=True, exist_ok=True)
    proc = snakemake(workdir, "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (workdir / "snakemake.log").write_text(proc.stderr)  # Snakemake's own log: the order jobs started in
    return workdir / "results" / "smoke"


def test_the_variants_with_a_lower_priority_start_last_and_each_priority_env_by_env(smoke):
    """config.yaml gives the ppo1_* variants priority -1: with more runs ready than cores, every other
    training run starts before the first of them (the paper scale's other results are complete first).
    Within one variant priority the runs start env by env, in the scale's start order (grid.start_order)."""
    config = grid.load()
    log = (smoke.parent.parent / "snakemake.log").read_text()
    started = re.findall(r"wildcards: scale=smoke, variant=([^,]+), env=(\S+)$", log, re.M)  # in start order
    assert sorted(started) == sorted({(r.variant, r.env) for r in grid.runs(config, "smoke")})  # one job per variant × env
    late = [i for i, (variant, _) in enumerate(started) if config["variants"][variant].get("priority", 0) < 0]
    assert late and min(late) == len(started) - len(late), started
    for priority in {config["variants"][variant].get("priority", 0) for variant, _ in started}:
        envs = [env for variant, env in started if config["variants"][variant].get("priority", 0) == priority]
        assert envs == sorted(envs, key=grid.start_order(config, "smoke").index), (priority, envs)
    # the gradient-noise measurements (priority -2 in the rule, the baselines experiment's) start after every
    # training job of a higher priority
    jobs = re.findall(r"^\s*(?:local)?rule (\w+):\n(?:.*\n)*?\s*wildcards: ([^\n]*)", log, re.M)  # in start order
    noise = [i for i, (rule, _) in enumerate(jobs) if rule == "gradient_noise"]
    assert len(noise) == len(grid.gradient_noise_runs(config, "smoke"))
    higher = [i for i, (rule, w) in enumerate(jobs) if rule == "train" and
              config["variants"][re.search(r"variant=([^,]+)", w).group(1)].get("priority", 0) > -2]
    assert max(higher) < min(noise), jobs


def png_size(path):
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_smoke_produces_every_run_figure_table_and_report(smoke):
    config = grid.load()
    for run in grid.runs(config, "smoke"):  # each run as the workflow keeps it: the CSVs repacked as xz
        run_dir = smoke / "runs" / run.variant / run.env / f"seed{run.seed}"
        assert sorted(p.name for p in run_dir.iterdir()) == ["episodes.csv.xz", "progress.csv.xz", "run.json"]
    for name in EXPERIMENTS:
        width, height = png_size(smoke / "figures" / f"{name}.png")
        assert width > 300 and height > 200
        pdf = (smoke / "figures" / f"{name}.pdf").read_bytes()
        assert len(pdf) > 5000 and b"/CreationDate" not in pdf  # no clock: the same runs, the same bytes
        table = pd.read_csv(smoke / "tables" / f"{name}.csv")
        variants = set(grid.experiment_variants(config, "smoke", name))
        assert set(table.variant) == variants, name
        assert "Missing runs" not in (smoke / "tables" / f"{name}.md").read_text()
    objectives = pd.read_csv(smoke / "tables" / "ppo_objectives.csv")
    assert objectives.runs.eq(4).all()  # 2 envs × 2 seeds per setting
    report = (smoke / "REPORT.md").read_text()
    for name in EXPERIMENTS:
        assert f"![{name}](figures/{name}.png)" in report
    assert "**Reading.**" in report and "Random-policy scores" in report
    for heading in ("weight's", "setting's", "algorithm's"):  # 2 seeds a cell: enough for P(X > Y)
        assert f"**Which {heading} runs end higher.**" in report
    measured = grid.gradient_noise_runs(config, "smoke")
    assert measured  # the smoke scale measures VPG's gradient noise on the baselines' envs and seeds
    for env, seed in measured:
        frame = pd.read_csv(smoke / "gradient_noise" / env / f"seed{seed}.csv")
        assert list(frame.weight) == ["total_return", "reward_to_go", "value_baseline", "gae"]
        record = json.loads((smoke / "gradient_noise" / env / f"seed{seed}.json").read_text())
        assert grid.gradient_noise_stale_reason(config, "smoke", env, record) is None
    assert "**Gradient noise at one fixed policy, measured.**" in report


def test_no_mujoco_log_in_the_working_directory(smoke):
    assert not (smoke.parent.parent / "MUJOCO_LOG.TXT").exists()


def test_kill_and_resume_gives_the_uninterrupted_results(smoke, tmp_path):
    """SIGKILL the whole workflow (Snakemake and its running jobs) mid-run, then start it again."""
    runs = [r for r in grid.runs(grid.load(), "smoke") if r.env == "InvertedPendulum-v5"][:6]
    targets = [f"results/smoke/runs/{r.variant}/{r.env}/seed{r.seed}/run.json" for r in runs]
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(ROOT / "experiments" / "config.yaml"), "--config", "scale=smoke", "--cores", "2",
           *targets]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not any((tmp_path / t).exists() for t in targets):
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = [t for t in targets if (tmp_path / t).exists()]
    assert 0 < len(done) < len(targets), "the kill should land mid-run"
    for t in targets:  # run.json is published last: without it a run directory is incomplete
        run_dir = (tmp_path / t).parent
        if (run_dir / "run.json").exists():  # as written (.csv.gz) or repacked (.csv.xz); perhaps both, mid-repack
            assert run_file(run_dir, "progress").exists() and run_file(run_dir, "episodes").exists()
    # a hard kill leaves Snakemake's lock behind; --unlock is the documented one-time step
    assert snakemake(tmp_path, "--unlock").returncode == 0
    resumed = snakemake(tmp_path, "--cores", "2", *targets)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for t in targets:
        for name in ("progress.csv.xz", "episodes.csv.xz"):
            ours = (tmp_path / t).parent / name
            reference = smoke.parent.parent / ours.relative_to(tmp_path)
            assert without_clock(read_csv(ours)) == without_clock(read_csv(reference)), ours


def test_changing_one_variant_reruns_only_its_jobs(smoke, tmp_path):
    override = tmp_path / "override.yaml"
    override.write_text("variants:\n  ppo_gae_1: {algo: ppo, args: {gae_lambda: 0.99}}\n")
    proc = snakemake(smoke.parent.parent, "-n", overrides=[override])
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats:")[1], re.M))
    assert stats["train"] == "2"  # ppo_gae_1 × 2 envs (a job trains both seeds), nothing else
    assert set(re.findall(r"wildcards: .*variant=([^,\s]+)", out)) == {"ppo_gae_1"}
    # the analyses see the merged config as a parameter, so they are redone (cheap); training is not
    assert stats["report"] == "1"


def test_a_finished_run_kept_as_gzip_is_repacked_when_planned_not_trained_again(smoke, tmp_path):
    """A results folder from before the workflow kept .csv.xz (or a job stopped between its run's end and its
    repack) holds finished runs as .csv.gz: planning the workflow repacks them, and no training job is planned."""
    import gzip
    import lzma
    clone = tmp_path / "clone"
    shutil.copytree(smoke, clone / "results" / "smoke")
    run = clone / "results" / "smoke" / "runs" / "ppo_gae_1" / "CartPole-v1" / "seed1"
    texts = {}
    for name in ("progress", "episodes"):
        texts[name] = lzma.decompress((run / f"{name}.csv.xz").read_bytes())
        (run / f"{name}.csv.gz").write_bytes(gzip.compress(texts[name], mtime=0))
        (run / f"{name}.csv.xz").unlink()
    assert "train" not in job_counts(snakemake(clone, "-n"))
    assert sorted(p.name for p in run.iterdir()) == ["episodes.csv.xz", "progress.csv.xz", "run.json"]
    assert {name: lzma.decompress((run / f"{name}.csv.xz").read_bytes()) for name in texts} == texts


def test_a_job_trains_only_the_missing_seeds_and_leaves_the_finished_ones_alone(smoke, tmp_path):
    """One job trains a variant × env's seeds in one process, but only those missing (or stale): a finished
    seed beside a missing one is not retrained or rewritten (Snakemake sets its files' times, nothing
    else); the missing one comes back as the complete workflow made it."""
    clone = tmp_path / "clone"
    shutil.copytree(smoke, clone / "results" / "smoke")
    job = clone / "results" / "smoke" / "runs" / "ppo_gae_1" / "CartPole-v1"
    shutil.rmtree(job / "seed2")
    kept = {f.name: f.read_bytes() for f in (job / "seed1").iterdir()}
    assert job_counts(snakemake(clone, "-n")).get("train") == 1
    proc = snakemake(clone, "--cores", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {f.name: f.read_bytes() for f in (job / "seed1").iterdir()} == kept
    assert "--seed 2 --total-timesteps" in proc.stdout + proc.stderr  # the job's command: seed 2 alone
    for name in ("progress.csv.xz", "episodes.csv.xz"):
        original = smoke / "runs" / "ppo_gae_1" / "CartPole-v1" / "seed2" / name
        assert without_clock(read_csv(job / "seed2" / name)) == without_clock(read_csv(original))
    assert "train" not in job_counts(snakemake(clone, "-n"))


def test_a_job_run_again_with_every_seed_finished_trains_nothing_and_succeeds(smoke, tmp_path):
    """A workflow stopped after a job's last run finished but before Snakemake saw the job end runs the job
    again on resume (here forced with --forcerun): no seed is left to train, so it trains none, keeps every
    run as it is and succeeds (it used to call the algorithm with an empty --seed and fail)."""
    clone = tmp_path / "clone"
    shutil.copytree(smoke, clone / "results" / "smoke")
    job = clone / "results" / "smoke" / "runs" / "ppo_gae_1" / "CartPole-v1"
    kept = {f: f.read_bytes() for f in job.rglob("*") if f.is_file()}
    target = "results/smoke/runs/ppo_gae_1/CartPole-v1/seed1/run.json"
    proc = snakemake(clone, "--cores", "1", "--forcerun", target, target)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert job_counts(proc).get("train") == 1
    assert {f: f.read_bytes() for f in job.rglob("*") if f.is_file()} == kept
    log = clone / "results" / "smoke" / "logs" / "train" / "ppo_gae_1" / "CartPole-v1.log"
    assert log.read_text() == "every seed of this job is finished and current: nothing to train\n"


def job_counts(proc):
    """Snakemake's 'Job stats' table of a dry run, as {rule: count} ({} when there is nothing to do)."""
    out = proc.stdout + proc.stderr
    return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats:")[1], re.M)} \
        if "Job stats:" in out else {}


def test_a_fresh_clone_reruns_the_runs_whose_arguments_changed(smoke, tmp_path):
    clone = tmp_path / "clone"  # the committed results, without Snakemake's .snakemake/ history
    shutil.copytree(smoke, clone / "results" / "smoke")
    assert "train" not in job_counts(snakemake(clone, "-n"))
    override = tmp_path / "override.yaml"
    override.write_text("variants:\n  ppo_gae_1: {algo: ppo, args: {gae_lambda: 0.99}}\n")
    stats = job_counts(snakemake(clone, "-n", overrides=[override]))
    assert stats["train"] == 2  # ppo_gae_1 × 2 envs (a job trains both seeds), and nothing else
    assert "gradient_noise" not in stats
    # the gradient-noise measurements hold their arguments (and code) in a record beside each CSV
    override.write_text("scales:\n  smoke:\n    gradient_noise: {warmup_batches: 1, batches: 3}\n")
    stats = job_counts(snakemake(clone, "-n", overrides=[override]))
    assert stats["gradient_noise"] == len(grid.gradient_noise_runs(grid.load(), "smoke")) and "train" not in stats
    # remade once, they are done: the marker that made them stale is gone, and with it an input, which must
    # not count as a change (profiles/default: no "input" rerun trigger)
    targets = [f"results/smoke/gradient_noise/{env}/seed{seed}.csv" for env, seed in grid.gradient_noise_runs(grid.load(), "smoke")]
    proc = snakemake(clone, "--cores", "2", *targets, overrides=[override])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "gradient_noise" not in job_counts(snakemake(clone, "-n", overrides=[override]))


def test_a_touched_algorithm_file_reruns_nothing(smoke, tmp_path):
    """Staleness follows content: a touch, a checkout or a branch switch never queues a finished run."""
    clone = tmp_path / "clone"
    shutil.copytree(smoke, clone / "results" / "smoke")
    for path in list((ROOT / "algorithms").glob("*.py")) + [ROOT / "experiments" / "gradient_noise.py"]:
        os.utime(path)  # now: newer than every run's files
    stats = job_counts(snakemake(clone, "-n"))
    assert "train" not in stats and "gradient_noise" not in stats, stats


def report_chart(html, name):
    """The data of one of the HTML report's charts (its vega-lite spec, `var <name>_spec = {...}`)."""
    start = html.index(f"var {name}_spec = ") + len(f"var {name}_spec = ")
    return json.JSONDecoder().raw_decode(html[start:])[0]["data"]["values"]


def test_the_html_report_of_a_fresh_clone_dates_every_job_from_its_results_and_reruns_nothing(smoke, tmp_path):
    """A clone has the results but not Snakemake's records of the jobs that made them: experiments.html_report
    writes them (training runs from run.json, other jobs from their benchmark), so the report warns about no
    file and charts every job, and the records make no job run again, whatever the rerun triggers."""
    clone = tmp_path / "clone"
    shutil.copytree(smoke, clone / "results" / "smoke")
    every_trigger = ["--rerun-triggers", "mtime", "params", "input", "software-env", "code"]
    planned = job_counts(snakemake(clone, "-n", *every_trigger))
    proc = subprocess.run([sys.executable, "-m", "experiments.html_report", "smoke", "--directory", str(clone)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1200)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Missing metadata" not in out and "not made yet" not in out, out[-3000:]
    html = (clone / "results" / "smoke" / "report.html").read_text()
    timeline = report_chart(html, "timeline")
    # a training job's seeds trained together are one entry (ppo.py), seeds trained one after another one each
    # (vpg.py, trpo.py); every other job is one entry
    config = grid.load()
    trained = {(run.variant, run.env) for run in grid.runs(config, "smoke")}
    processes = {(p.parent.parent, tuple(json.loads(p.read_text())["seeds_in_process"]))
                 for p in smoke.glob("runs/*/*/seed*/run.json")}
    rules = [entry["rule"] for entry in timeline]
    assert len(trained) < rules.count("train") == len(processes)
    assert rules.count("gradient_noise") == len(grid.gradient_noise_runs(config, "smoke"))
    assert rules.count("experiment_analysis") == len(EXPERIMENTS) and rules.count("report") == 1
    assert all(entry["runtime"] > 0 for entry in report_chart(html, "runtimes"))  # every job has a benchmark
    # a training job's times are its runs': the first seed's start to the last seed's end, as run.json says
    variant, env = sorted(trained)[0]
    runs = [json.loads(p.read_text()) for p in (smoke / "runs" / variant / env).glob("seed*/run.json")]
    local = lambda stamp: datetime.datetime.fromisoformat(stamp).astimezone().replace(tzinfo=None)
    first, last = min(local(r["start_time"]) for r in runs), max(local(r["end_time"]) for r in runs)
    close = lambda stamp, when: abs(datetime.datetime.fromisoformat(stamp) - when).total_seconds() < 1e-3
    assert any(close(e["starttime"], first) and close(e["endtime"], last) for e in timeline if e["rule"] == "train")
    assert job_counts(snakemake(clone, "-n", *every_trigger)) == planned


def test_an_interrupted_rerun_of_a_stale_run_keeps_the_finished_run(smoke, tmp_path):
    """Snakemake keeps a stale run's files while its rerun trains (update()), and the run replaces them
    only once complete: Ctrl-C in the middle leaves the finished run exactly as it was."""
    clone = tmp_path / "clone"
    shutil.copytree(smoke, clone / "results" / "smoke")
    override = tmp_path / "override.yaml"  # ppo_gae_1's runs become stale, and their reruns long
    override.write_text("variants:\n  ppo_gae_1: {algo: ppo, args: {gae_lambda: 0.99}}\n"
                        "scales:\n  smoke:\n    env_steps: {CartPole-v1: 100000000}\n")
    run_dir = clone / "results" / "smoke" / "runs" / "ppo_gae_1" / "CartPole-v1" / "seed1"
    before = {f.name: f.read_bytes() for f in run_dir.iterdir()}
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(clone),
           "--configfile", str(ROOT / "experiments" / "config.yaml"), str(override), "--config", "scale=smoke",
           "--cores", "1", str(run_dir.relative_to(clone) / "run.json")]
    log = tmp_path / "snakemake.log"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log.open("w"), start_new_session=True)
    try:
        deadline = time.time() + 120
        while not (run_dir / "progress.csv.gz.partial").exists():
            assert time.time() < deadline and proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
        time.sleep(1.0)
        assert (run_dir / "run.json").read_bytes() == before["run.json"]  # untouched while the rerun trains
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal: Snakemake and its job
        proc.wait(timeout=120)
        # Snakemake may exit before its job has ended: the run is read once every process of the group has.
        # (A .lock that CI found left behind was the run's own doing, fixed in run_contract: Ctrl-C while it
        # asked git for the commit; tests/test_reliability.py::test_ctrl_c_while_a_run_sets_up_leaves_no_lock)
        deadline = time.time() + 60
        while group_alive(proc.pid):
            assert time.time() < deadline, "the interrupted job did not end within 60 s of Snakemake"
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    after = {f.name: f.read_bytes() for f in run_dir.iterdir() if not f.name.endswith(".partial")}
    assert after == before, sorted(set(after) ^ set(before))


def group_alive(pgid):
    """Whether any process of the process group is still running (zombies count as ended)."""
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # after the name: state, ppid, pgrp
            return True
    return False


def test_a_failed_rerun_leaves_the_run_another_writer_published(tmp_path):
    """Two workflows on one folder (--nolock): while one holds a run (here: this test holds its lock, as a
    running job would, after publishing it), the other's rerun of it fails at once ('in use'); the failed
    job's clean-up must leave the published run exactly as it is (update() and keep-incomplete)."""
    import run_contract
    target = "results/smoke/runs/ppo_gae_1/CartPole-v1/seed1/run.json"
    assert snakemake(tmp_path, "--cores", "1", target).returncode == 0
    run_dir = tmp_path / target.rsplit("/", 1)[0]
    before = {f.name: f.read_bytes() for f in run_dir.iterdir()}
    override = tmp_path / "override.yaml"  # the other workflow's config: this run is stale for it
    override.write_text("variants:\n  ppo_gae_1: {algo: ppo, args: {gae_lambda: 0.99}}\n")
    holder = run_contract.DirLock(run_dir)  # the first workflow's job, still running
    try:
        proc = snakemake(tmp_path, "--cores", "1", "--nolock", target, overrides=[override])
    finally:
        holder.release()
    assert proc.returncode != 0
    log = (tmp_path / "results/smoke/logs/train/ppo_gae_1/CartPole-v1.log").read_text()
    assert f"is in use by another run (pid {os.getpid()})" in log
    assert {f.name: f.read_bytes() for f in run_dir.iterdir()} == before
    # and the run is still stale for the next plan: Snakemake records a failed job's input checksums too, so a
    # marker written again with the same bytes would pass for one already seen, and the rerun would never come
    assert job_counts(snakemake(tmp_path, "-n", target, overrides=[override])).get("train") == 1


def processes_mentioning(text):
    found = []
    for cmdline in pathlib.Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:
            pass
    return found


def test_a_killed_workflow_takes_its_training_jobs_with_it(tmp_path):
    """SIGKILL Snakemake alone (not its process group): experiments/job.py stops the run it started."""
    override = tmp_path / "long.yaml"
    override.write_text("scales:\n  smoke:\n    steps: 100000000\n")
    run_dir = tmp_path / "results" / "smoke" / "runs" / "ppo_clip_0.2" / "CartPole-v1" / "seed1"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(ROOT / "experiments" / "config.yaml"), str(override), "--config", "scale=smoke",
           "--cores", "1", str(run_dir.relative_to(tmp_path) / "run.json")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not (run_dir / "progress.csv.gz.partial").exists():
            assert time.time() < deadline and proc.poll() is None, "the training job did not start"
            time.sleep(0.2)
        assert processes_mentioning(str(run_dir.parent))  # its --out: .../CartPole-v1/seed{seed}
        proc.kill()  # Snakemake only: its job's shell, job.py and the run are left orphaned
        proc.wait()
        deadline = time.time() + 45
        while processes_mentioning(str(run_dir.parent)) and time.time() < deadline:
            time.sleep(0.5)
        assert not processes_mentioning(str(run_dir.parent)), "the training run outlived the workflow"
        assert not (run_dir / "run.json").exists()
        log = tmp_path / "results" / "smoke" / "logs" / "train" / "ppo_clip_0.2" / "CartPole-v1.log"
        assert "the workflow (pid" in log.read_text() and "interrupted:" in log.read_text()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group, should the test fail
