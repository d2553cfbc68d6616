"""Run one workflow job's command, and stop it if the workflow dies.

  python experiments/job.py python algorithms/ppo.py --env-id ... --out ...

A SIGKILLed Snakemake leaves its jobs running: they are not its process group's leader's
children for the kernel to stop. This wrapper runs the command as a child, watches the
Snakemake process named by $PGREPRO_WORKFLOW_PID (set by experiments/rules/common.smk), and
when that process is gone sends the child SIGINT (the algorithm files then exit 130 without
publishing anything), then SIGKILL if it has not ended 30 s later. SIGINT and SIGTERM sent to
the wrapper are passed on to the child. The exit status is the child's. Without
$PGREPRO_WORKFLOW_PID it only passes signals on.
"""
import os
import signal
import subprocess
import sys

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
    sys.exit(128 - returncode if returncode < 0 else returncode)  # killed by signal N: 128 + N, as a shell says

if __name__ == "__main__":
    main(sys.argv[1:])
