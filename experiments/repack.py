"""Recompress the CSVs of finished runs as xz, the form in which the workflow keeps them.

  python -m experiments.repack results/paper/runs

The algorithm files write progress.csv.gz and episodes.csv.gz while they train (--compress) and flush
them after every iteration, so a live run can be read with zcat. A finished run is never written again,
so it can be kept in a denser form: each of its .csv.gz files becomes a .csv.xz (LZMA, preset 6), once
the new file is checked to decompress to exactly the old text. The new file is written beside the old
one and renamed into place atomically, and only then is the .csv.gz removed; a run stopped in between
holds both, with the same text, and the next repack removes the .csv.gz. Nothing a reader sees changes:
the same rows, the same digits (`analysis.compare` finds no difference; pandas and analysis.load read
.csv.xz as they read .csv.gz). Measured on the 1,063 paper runs committed on 2026-12-03: 92.81 MB of CSVs
as single-stream gzip -9, 71.94 MB as xz, 22 % less (docs/NOTEBOOK.md); as written (a deflate block ended
at every flush) the gzip files are about a fifth larger still. That difference keeps results/paper within
its 250 MB budget.

experiments/job.py repacks the runs a training job finished, so the workflow's train rule names the
.csv.xz files as its outputs. A run directory is repacked only when it holds run.json (finished) and this
process gets the run's own lock (<run>/.lock, the one the algorithm files hold while a run lives), so a
run that is being written or rewritten (--overwrite) is skipped, and no run can start in it meanwhile.

  python -m experiments.repack results/paper/runs --fold-job-files

also folds the Snakemake log and benchmark of each finished training job into one file each,
beside runs/: logs/train.log.gz (every job's log under a `==> <variant>/<env>/seed<k> <==` line,
as `tail` heads several files) and benchmarks/train.tsv (Snakemake's benchmark row, verbatim,
after a `job` column). Each job writes its own two small files of about 1.3 and 0.1 KB, and on a
disk of 4 KiB blocks each takes a whole block: folding the paper scale's 1,350 of them took the
folder from 79.2 to 72.1 MiB. A job is folded once its run is
finished (run.json, no .lock) and Snakemake has written its benchmark; a job that runs again later
writes its own files again, and the next fold replaces its folded entries with them. Folding is safe
while the workflow runs: it touches no job that is not finished, and leaves every folder in place (a
job's benchmark folder is empty until the job ends); remove logs/train/ and benchmarks/train/ once the
workflow has stopped.
"""
import argparse
import gzip
import lzma
import os
import pathlib
import re
import sys

import run_contract

NAMES = ("progress", "episodes")  # each <name>.csv.gz becomes <name>.csv.xz
XZ_PRESET = 6  # the default: -9 and -9e gain under 0.5 % on these files and take twice as long
FOLDED_LOG = pathlib.Path("logs", "train.log.gz")  # relative to the scale's folder, as below
FOLDED_BENCHMARKS = pathlib.Path("benchmarks", "train.tsv")
LOG_HEAD = "==> {} <==\n"  # the line above each job's log in FOLDED_LOG
HEAD_LINE = re.compile(r"==> (.+) <==")


def repack_file(run_dir, name):
    """<name>.csv.gz in run_dir rewritten as <name>.csv.xz; returns (bytes before, bytes after), (0, 0) with
    no .csv.gz. A .csv.xz already there (a repack stopped before it removed the .csv.gz) must hold the same
    text; then only the .csv.gz goes."""
    gz, xz = run_dir / f"{name}.csv.gz", run_dir / f"{name}.csv.xz"
    if not gz.exists():
        return 0, 0
    old = gz.read_bytes()
    text = gzip.decompress(old)
    if xz.exists():
        new = xz.read_bytes()
        if lzma.decompress(new) != text:
            raise RuntimeError(f"{xz}: holds other text than {gz.name} beside it; neither is changed")
    else:
        new = lzma.compress(text, preset=XZ_PRESET)
        if lzma.decompress(new) != text:
            raise RuntimeError(f"{gz}: the recompressed file does not give back the same text")
        tmp = run_dir / f"{name}.csv.xz.repack"
        tmp.write_bytes(new)
        os.replace(tmp, xz)
    gz.unlink()
    return len(old), len(new)


def repack_run(run_dir):
    """Repack one finished run under its own lock; (before, after) bytes, or None if skipped."""
    if not (run_dir / "run.json").exists():
        return None
    try:
        lock = run_contract.DirLock(run_dir)  # the algorithm files' own lock: never follows a symlinked .lock
    except run_contract.Busy:  # a run owns this directory now
        return None
    except OSError as e:
        raise SystemExit(f"error: {run_dir}/.lock: {e.strerror} (a symbolic link is never followed)") from None
    try:
        if not (run_dir / "run.json").exists():  # replaced by a rerun between the two checks
            return None
        sizes = [repack_file(run_dir, name) for name in NAMES]
        return sum(s[0] for s in sizes), sum(s[1] for s in sizes)
    finally:
        lock.release()


def folded_logs(scale_dir):
    """{job: log text} from the scale's folded training log ({} without one)."""
    path = pathlib.Path(scale_dir, FOLDED_LOG)
    if not path.exists():
        return {}
    logs, job = {}, None
    for line in gzip.decompress(path.read_bytes()).decode().splitlines(keepends=True):
        head = HEAD_LINE.fullmatch(line.rstrip("\n"))
        if head:
            job = head[1]
            logs[job] = ""
        else:
            logs[job] += line
    return logs


def folded_benchmarks(scale_dir):
    """(header, {job: benchmark row}) from the scale's folded benchmarks, verbatim text; (None, {}) without."""
    path = pathlib.Path(scale_dir, FOLDED_BENCHMARKS)
    if not path.exists():
        return None, {}
    header, *rows = path.read_text().splitlines(keepends=True)
    return header.split("\t", 1)[1], dict(row.split("\t", 1) for row in rows)


def write_atomically(path, data):
    tmp = path.with_name(path.name + ".fold")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def fold_job_files(scale_dir):
    """Fold the logs and benchmarks of the finished training jobs under scale_dir into FOLDED_LOG and
    FOLDED_BENCHMARKS (a job's own files win over its folded entries), then delete the job's own files;
    returns how many jobs were folded. Refuses a log line that reads as a job's head line."""
    scale_dir = pathlib.Path(scale_dir)
    logs_dir, bench_dir = scale_dir / "logs" / "train", scale_dir / "benchmarks" / "train"
    logs = folded_logs(scale_dir)
    header, rows = folded_benchmarks(scale_dir)
    jobs = []
    for bench in sorted(bench_dir.rglob("*.tsv")):
        job = bench.relative_to(bench_dir).with_suffix("").as_posix()
        log = logs_dir / f"{job}.log"
        # a job is <variant>/<env>, its runs the seed folders under it (before 2026-12-03 one job was one run)
        runs = [scale_dir / "runs" / job] if pathlib.PurePath(job).name.startswith("seed") else \
            sorted((scale_dir / "runs" / job).glob("seed*"))
        if not runs or not log.exists() or any(not (r / "run.json").exists() or (r / ".lock").exists() for r in runs):
            continue  # a run or its Snakemake job is not finished
        text = log.read_text()
        if text and not text.endswith("\n"):
            text += "\n"
        if any(HEAD_LINE.fullmatch(line) for line in text.splitlines()):
            raise RuntimeError(f"{log}: a line reads as a folded log's head line; not folding it")
        job_header, row = bench.read_text().splitlines(keepends=True)
        if header not in (None, job_header):
            raise RuntimeError(f"{bench}: its columns differ from the other benchmarks'; not folding it")
        header, logs[job], rows[job] = job_header, text, row
        jobs.append((log, bench))
    if not jobs:
        return 0
    log_text = "".join(LOG_HEAD.format(job) + logs[job] for job in sorted(logs))
    write_atomically(scale_dir / FOLDED_LOG, gzip.compress(log_text.encode(), compresslevel=9, mtime=0))
    write_atomically(scale_dir / FOLDED_BENCHMARKS,
                     ("job\t" + header + "".join(f"{job}\t{rows[job]}" for job in sorted(rows))).encode())
    for log, bench in jobs:  # only now that both folded files hold them
        log.unlink()
        bench.unlink()
    # The emptied folders stay: a running job's benchmark folder is empty until Snakemake writes the benchmark
    # at the job's end, and removing it then fails the job (it did, on 2026-12-03, with its runs finished)
    return len(jobs)


def benchmarks(scale_dir):
    """Every Snakemake benchmark row under scale_dir/benchmarks, one per job: the jobs' own files, and the
    folded rows of jobs that have none (a job's own file is newer than its folded row)."""
    import pandas as pd  # only the report needs this
    bench_root = pathlib.Path(scale_dir, "benchmarks")
    path = pathlib.Path(scale_dir, FOLDED_BENCHMARKS)
    frames = [pd.read_csv(p, sep="\t") for p in sorted(bench_root.rglob("*.tsv")) if p != path]
    if path.exists():
        folded = pd.read_csv(path, sep="\t", dtype={"job": str})
        train = bench_root / "train"
        frames.append(folded[~folded.job.map(lambda job: (train / f"{job}.tsv").exists())].drop(columns="job"))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="a folder of runs, e.g. results/paper/runs")
    parser.add_argument("--fold-job-files", action="store_true",
                        help="also fold the finished training jobs' logs and benchmarks beside root into one file each")
    args = parser.parse_args(argv)
    root = pathlib.Path(args.root)
    if not root.is_dir():
        parser.error(f"root: {root} is not a folder")
    before = after = runs = skipped = 0
    for meta in sorted(root.rglob("run.json")):
        sizes = repack_run(meta.parent)
        if sizes is None:
            skipped += 1
            continue
        runs, before, after = runs + 1, before + sizes[0], after + sizes[1]
    print(f"{runs} finished runs: {before / 1e6:.2f} MB of CSV.gz repacked as {after / 1e6:.2f} MB of CSV.xz"
          + (f"; {skipped} skipped (a run owns its directory)" if skipped else ""))
    if args.fold_job_files:
        folded = fold_job_files(root.parent)
        print(f"{folded} training jobs' logs and benchmarks folded into {root.parent / FOLDED_LOG} and "
              f"{root.parent / FOLDED_BENCHMARKS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
