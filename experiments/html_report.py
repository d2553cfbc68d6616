"""Snakemake's HTML report of a scale, also in a clone that did not run the jobs itself.

  python -m experiments.html_report quick            # -> results/quick/report.html
  python -m experiments.html_report paper --out /tmp/paper.html

`snakemake --report` reads, for every output of the workflow, the record Snakemake wrote into
.snakemake/metadata when it ran the job: the rule, the job, when it started and ended. A clone of this
repository has the committed results but none of those records, so the plain command warns once per file
(663 times at the quick scale) and leaves its runtime and timeline charts empty. This runs the same
`snakemake --report`, with one step added after the DAG is built and before the report is: every output
that exists and has no record gets one, its times read from the results themselves:

- a training run (a directory with run.json): run.json's start_time and end_time. The seeds one process
  trained together (run.json's seeds_in_process: ppo.py's batched seeds) are one job in the charts, and
  seeds a process trained one after another (vpg.py, trpo.py) one each, so the charts show what ran when;
- any other job (random-policy anchors, gradient-noise measurements, analyses, reports): its benchmark's
  wall time `s`, ending when its output was last committed (git), or at the file's modification time when
  the file is not committed as it is. A job without a benchmark file gets a duration of 0.

A record written here holds the rule, the job and the times, and no code, input, parameter or software
fingerprint: Snakemake's rerun triggers compare those with the current ones and skip a record that has
none, so the records never make a job run again. Records Snakemake wrote itself are kept as they are.
Outputs not made yet (a grid still training) are counted in one line instead of one warning each; a
missing record for a file that does exist is still Snakemake's warning, as it would be without this.

The hook is Snakemake's report function (snakemake.report.auto_report, looked up when the report is
made), wrapped for the one call; it relies on the pinned Snakemake's metadata record
(snakemake.persistence.MetadataRecord), which tests/test_html_report.py checks.
"""
import argparse
import csv
import functools
import hashlib
import json
import logging
import os
import pathlib
import subprocess
import sys
from datetime import datetime

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from experiments import grid  # noqa: E402

MISSING = "Missing metadata for file "


@functools.lru_cache(maxsize=None)  # each of a run's three files asks
def run_times(run_json):
    """(start, end, process) of a training run: epoch seconds from run.json, and the seeds its process trained."""
    record = json.loads(pathlib.Path(run_json).read_text())
    start, end = (datetime.fromisoformat(record[k]).timestamp() for k in ("start_time", "end_time"))
    return start, end, tuple(record.get("seeds_in_process", [record["seed"]]))


def benchmark_seconds(path):
    """The wall time `s` of a Snakemake benchmark file, or None without one."""
    if path is None or not os.path.exists(path):
        return None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return float(rows[0]["s"]) if rows else None


class CommitTimes:
    """When each file was last committed, for the files committed as they are (else None)."""

    def __init__(self, directory):
        self.times, self.changed = {}, set()
        try:
            top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=directory, capture_output=True,
                                 text=True, check=True).stdout.strip()
            status = subprocess.run(["git", "status", "--porcelain", "--no-renames", "-z", "--", "results"],
                                    cwd=top, capture_output=True, text=True, check=True).stdout
            log = subprocess.run(["git", "log", "--format=%x00%ct", "--name-only", "--no-renames", "--", "results"],
                                 cwd=top, capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return  # not a git clone: modification times only
        self.changed = {os.path.join(top, entry[3:]) for entry in status.split("\0") if entry}
        for block in log.split("\0")[1:]:
            stamp, *names = block.split("\n")
            for name in filter(None, names):
                self.times.setdefault(os.path.join(top, name), float(stamp))  # newest commit first

    def of(self, path):
        path = os.path.abspath(path)
        return None if path in self.changed else self.times.get(path)


def stable_hash(*parts):
    """A job's id in its records: the same job gets the same number in every process (Python's hash() does not)."""
    return int(hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:15], 16)


def records_for(job, paths, commits):
    """{path: (job_hash, start, end)} for a job's outputs that exist, lack a record and can be dated."""
    dated = {}
    for path in paths:
        run_json = os.path.join(os.path.dirname(path), "run.json")
        if os.path.exists(run_json):
            start, end, process = run_times(run_json)
            # one process: the same job directory (variant/env) and the same seeds trained together
            dated[path] = (stable_hash(job.rule.name, os.path.dirname(os.path.dirname(path)), process), start, end)
    if any(os.path.basename(str(f)) == "run.json" for f in job.output):
        return dated  # a training job: a file of a run without run.json is an unfinished run's, and gets none
    undated = [p for p in paths if p not in dated]
    if undated:
        # made by the job as a whole: one end (its last output committed, or last written) and its benchmark's length
        end = max(commits.of(p) or os.path.getmtime(p) for p in undated)
        seconds = benchmark_seconds(str(job.benchmark) if job.benchmark else None)
        start = end - (seconds or 0.0)
        key = stable_hash(job.rule.name, *sorted(undated))
        dated.update({p: (key, start, end) for p in undated})
    return dated


def write_records(dag):
    """Give every existing output of the DAG's jobs that has no Snakemake record one (module docstring)."""
    from snakemake.persistence import MetadataRecord, RECORD_FORMAT_VERSION

    persistence = dag.workflow.persistence
    commits = CommitTimes(os.getcwd())
    written, jobs = 0, set()
    for job in dag.jobs:
        lacking = {str(f): f for f in job.output if os.path.exists(f) and persistence.metadata(f) is None}
        for path, (job_hash, start, end) in records_for(job, list(lacking), commits).items():
            record = MetadataRecord(rule=job.rule.name, job_hash=job_hash, starttime=start, endtime=end,
                                    incomplete=False, record_format_version=RECORD_FORMAT_VERSION)
            persistence._write_record(persistence._get_key(lacking[path]), record)
            written += 1
            jobs.add((job.rule.name, job_hash))
    persistence._clear_cache()
    print(f"html_report: wrote Snakemake records for {written} committed outputs of {len(jobs)} jobs "
          f"(times from run.json, or benchmark and commit)")


class NotMadeYet(logging.Filter):
    """Counts Snakemake's missing-metadata warnings for outputs that do not exist yet instead of printing them."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def filter(self, record):
        message = record.getMessage()
        if message.startswith(MISSING):
            path = message[len(MISSING):].split(". Maybe", 1)[0]
            if not os.path.exists(path):
                self.count += 1
                return False
        return True


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scale", help="the scale whose report to build (experiments/config.yaml scales)")
    parser.add_argument("--out", help="the report's path, ending .html or .zip (default results/<scale>/report.html)")
    parser.add_argument("--directory", default=".", help="the working directory holding results/ (default: here)")
    args = parser.parse_args(argv)
    scales = grid.load()["scales"]
    if args.scale not in scales:
        parser.error(f"scale: {args.scale!r} is not a scale of experiments/config.yaml ({', '.join(scales)})")
    args.out = args.out or f"results/{args.scale}/report.html"
    if not args.out.endswith((".html", ".zip")):
        parser.error(f"--out: {args.out!r} must end in .html or .zip (Snakemake's two report formats)")
    if not os.path.isdir(os.path.join(args.directory, "results", args.scale)):
        parser.error(f"--directory: no results/{args.scale} under {args.directory!r}")
    return args


def main(argv=None):
    args = parse_args(argv)
    import snakemake.report
    from snakemake.cli import main as snakemake_main

    report = snakemake.report.auto_report

    async def auto_report(dag, *rest, **kwargs):
        write_records(dag)
        return await report(dag, *rest, **kwargs)

    not_made, code = NotMadeYet(), 0
    snakemake.report.auto_report = auto_report
    logging.getLogger("snakemake.logging").addFilter(not_made)
    try:
        snakemake_main(["-s", str(ROOT / "Snakefile"), "--directory", args.directory,
                        "--report", os.path.abspath(os.path.join(args.directory, args.out)),  # join keeps an absolute out
                        "--config", f"scale={args.scale}"])
    except SystemExit as done:
        code = done.code
    finally:
        snakemake.report.auto_report = report
    if not_made.count:
        print(f"html_report: {not_made.count} outputs of the {args.scale} scale are not made yet (a grid still "
              f"training): not in the report", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
