"""Are two sets of runs the same runs? The determinism contract (docs/DESIGN.md §4), checked file by file.

  python -m analysis.compare results/smoke /elsewhere/results/smoke

Two scale directories hold the same runs when they have the same run directories and, in
each, progress.csv and episodes.csv are identical except the wall-clock columns, and
run.json records the same algorithm, arguments (bar --out), library versions and code.
Used by CI to show that the smoke scale gives the same run files locally and through SLURM.
Exit status 0 when identical; otherwise 1, with one line per difference.

  python -m analysis.compare --code-may-differ OLD_DIR NEW_DIR

checks that a change to the code (a speed-up, a refactor, a new flag) computes the same numbers:
the code fields of run.json (commit, dirty flag, script hash) may differ, and so may the set of
arguments (a flag added or renamed); every argument both runs record must agree, as must the rest.

  python -m analysis.compare --reruns results/paper /tmp/rerun/results/paper

checks that committed runs reproduce: DIR_B holds reruns of some of DIR_A's runs (made by the
workflow with --directory, see the README), and each must equal its original. Its code may differ
only as experiments/code_versions.yaml allows: both fingerprints listed under the algorithm.
"""
import argparse
import csv
import json
import pathlib
import sys

from analysis.load import open_csv, run_file
from run_contract import CLOCK_COLUMNS
from experiments import grid
from experiments.grid import NOT_RUN_ARGS

# run.json fields that must agree; the rest (times, host, memory, --out) describe the machine
CODE_META = ["git_commit", "git_dirty", "script_sha256", "contract_sha256", "code_sha256"]
SAME_META = ["algo", "seed", "versions", "threads", "exit_status"] + CODE_META


def run_dirs(scale_dir):
    return {p.parent.relative_to(scale_dir).as_posix() for p in pathlib.Path(scale_dir).glob("runs/*/*/seed*/run.json")}


def significant(cell):
    """A CSV cell at the run contract's precision (floats to 8 significant digits), so runs written
    before the contract fixed it (full repr) compare with runs written after."""
    try:
        return f"{float(cell):.8g}"
    except ValueError:
        return cell


def csv_without_clock(path):
    with open_csv(path) as f:
        rows = list(csv.reader(f))
    keep = [i for i, column in enumerate(rows[0]) if column not in CLOCK_COLUMNS]
    return [[significant(row[i]) for i in keep] for row in rows]


def meta_without_machine(meta):
    args = {k: v for k, v in grid.current_args(meta["algo"], meta["args"]).items() if k not in NOT_RUN_ARGS}
    return {"args": args, **{k: meta.get(k) for k in SAME_META}, "fingerprint": grid.run_fingerprint(meta)}


def differences(dir_a, dir_b, code_may_differ=False, reruns=False):
    """Lines describing every way the runs under dir_a and dir_b differ (empty: the same runs).
    With code_may_differ, run.json's code fields are not compared. With reruns, dir_b may hold a subset
    of dir_a's runs, made by code that code_versions.yaml lists beside the originals' (or the same code)."""
    dir_a, dir_b = pathlib.Path(dir_a), pathlib.Path(dir_b)
    runs_a, runs_b = run_dirs(dir_a), run_dirs(dir_b)
    if not runs_a and not runs_b:
        return [f"no runs under {dir_a}/runs or {dir_b}/runs"]
    if reruns and not runs_b:
        return [f"no runs under {dir_b}/runs"]
    alone = runs_b - runs_a if reruns else runs_a ^ runs_b
    ignored = CODE_META if code_may_differ or reruns else []  # reruns: the numbers are the proof
    found = [f"{run}: only in {dir_a if run in runs_a else dir_b}" for run in sorted(alone)]
    for run in sorted(runs_a & runs_b):
        a, b = dir_a / run, dir_b / run
        for name in ("progress", "episodes"):
            rows_a, rows_b = csv_without_clock(run_file(a, name)), csv_without_clock(run_file(b, name))
            if rows_a != rows_b:
                line = next((i for i, (x, y) in enumerate(zip(rows_a, rows_b)) if x != y), min(len(rows_a), len(rows_b)))
                found.append(f"{run}/{name}.csv: differs from line {line + 1}")
        raw_a = json.loads((a / "run.json").read_text())
        meta_a, meta_b = meta_without_machine(raw_a), meta_without_machine(json.loads((b / "run.json").read_text()))
        if code_may_differ:  # a flag that only one version of the code has is not a difference
            shared = meta_a["args"].keys() & meta_b["args"].keys()
            meta_a["args"], meta_b["args"] = ({k: m["args"][k] for k in shared} for m in (meta_a, meta_b))
        made_by = meta_a.pop("fingerprint"), meta_b.pop("fingerprint")
        if reruns and not grid.same_numbers(meta_a["algo"], *made_by, raw_a.get("cpu")):
            found.append(f"{run}/run.json: code {made_by[1][:12]} is not shown to compute what {made_by[0][:12]} computed")
        found += [f"{run}/run.json: {key} differs ({meta_a[key]!r} vs {meta_b[key]!r})"
                  for key in meta_a if meta_a[key] != meta_b[key] and key not in ignored]
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir_a")
    parser.add_argument("dir_b")
    parser.add_argument("--code-may-differ", action="store_true",
                        help="do not compare run.json's git commit, dirty flag and script hash, nor arguments only one run records")
    parser.add_argument("--reruns", action="store_true",
                        help="DIR_B holds reruns of some of DIR_A's runs: compare those only; the commit may differ, "
                             "the algorithm file's hash may not")
    args = parser.parse_args(argv)
    found = differences(args.dir_a, args.dir_b, args.code_may_differ, args.reruns)
    for line in found:
        print(line)
    if found:
        sys.exit(1)
    code = " (arguments both record)" if args.code_may_differ else " and algorithm file" if args.reruns else " and code"
    print(f"{len(run_dirs(args.dir_b if args.reruns else args.dir_a))} runs identical (progress.csv and episodes.csv "
          f"except {', '.join(CLOCK_COLUMNS)}; run.json arguments, versions{code})")


if __name__ == "__main__":
    main()
