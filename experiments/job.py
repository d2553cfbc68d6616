"""Run one workflow job's command, and stop it if the workflow dies.

  python experiments/job.py python algorithms/ppo.py --env-id ... --out ...

A SIGKILLed Snakemake leaves its jobs running: they are not its process group's leader's
children for the kernel to stop. This wrapper runs the command as a child, watches the
Snakemake process named by $PGREPRO_WORKFLOW_PID (set by experiments/rules/common.smk), and
when that process is gone sends the child SIGINT (the algorithm files then exit 130 without
publishing anything), then SIGKILL if it has not ended 30 s later. SIGINT and SIGTERM sent to
the wrapper are passed on to the child. The exit status is the child's. Without
$PGREPRO_WORKFLOW_PID it only passes signals on.

When the command is a training run that succeeded with --compress, each seed's .csv.gz files are then
rewritten as .csv.xz (experiments/repack.py: the same text, about a fifth smaller), the form the train
rule names as its outputs. A repack that fails leaves the files as written, valid but not the outputs
named, and says so; Snakemake then reports the job's missing outputs, and the next time the workflow plans
the job it repacks the run (experiments/rules/common.smk, stale_markers) instead of training it again.
"""
import os
import pathlib
import signal
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from experiments import repack  # noqa: E402

POLL_S = 1.0
GRACE_S = 30.0


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def run_dirs(argv):
    """The run directories of a training command: --out, with {seed} replaced by each of --seed's values."""
    if "--out" not in argv[:-1]:
        return []
    out, seeds = argv[argv.index("--out") + 1], []
    if "--seed" in argv:
        for value in argv[argv.index("--seed") + 1:]:
            if not value.isdigit():
                break
            seeds.append(value)
    return [pathlib.Path(out.replace("{seed}", seed)) for seed in seeds] if "{seed}" in out else [pathlib.Path(out)]


def repack_finished_run(argv):
    """Repack the run directories (--out) of a successful compressed training command."""
    if "--compress" not in argv:
        return
    for out in run_dirs(argv):
        try:
            repack.repack_run(out)
        except Exception as error:  # noqa: BLE001 - the files as written stay valid; only their size is at stake
            print(f"job.py: {out} left as written, not repacked: {error}", file=sys.stderr, flush=True)


def main(argv):
    if not argv:
        sys.exit("usage: python experiments/job.py COMMAND [ARG ...]")
    watched = int(os.environ.get("PGREPRO_WORKFLOW_PID", "0"))
    # the child takes SIGINT by default even where this process inherited it ignored (a workflow started
    # in the background with `nohup … &` ignores SIGINT, and so would the run, leaving only the SIGKILL)
    child = subprocess.Popen(argv, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: child.send_signal(signum))
    while True:
        try:
            returncode = child.wait(POLL_S)
            break
        except subprocess.TimeoutExpired:
            pass
        if watched and not alive(watched):
            print(f"job.py: the workflow (pid {watched}) is gone; stopping the run", file=sys.stderr, flush=True)
            child.send_signal(signal.SIGINT)
            try:
                returncode = child.wait(GRACE_S)
            except subprocess.TimeoutExpired:
                child.kill()
                returncode = child.wait()
            break
    if returncode == 0:
        repack_finished_run(argv)
    sys.exit(128 - returncode if returncode < 0 else returncode)  # killed by signal N: 128 + N, as a shell says

if __name__ == "__main__":
    main(sys.argv[1:])
