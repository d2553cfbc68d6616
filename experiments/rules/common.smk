# Helpers shared by the rules: the grid comes from experiments/grid.py, validated before
# any job is planned (a bad config stops here with one line naming the key).
import glob
import json
import os
import pathlib
import re
import sys
import time

sys.path.insert(0, workflow.basedir)
from experiments import grid, repack

try:
    for path in [os.path.join(workflow.basedir, "experiments", "config.yaml"), *workflow.overwrite_configfiles]:
        grid.load(path)  # refuses a repeated key, which Snakemake's own YAML loading keeps silently
    grid.check(config)
except grid.ConfigError as error:
    sys.exit(f"config error: {error}")

SCALE = config["scale"]
# experiments/job.py stops a training run when this process is gone (a SIGKILLed workflow); always
# this process, also on a cluster node, where the job's own Snakemake parses this file again
os.environ.update(PGREPRO_WORKFLOW_PID=str(os.getpid()))  # set here, never read from the caller: no envvars


# every wildcard matches a strict pattern, and the shell commands quote them too: a target path is data
wildcard_constraints:
    scale="smoke|quick|paper",
    seed=r"\d{1,9}",
    variant=r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}",
    env=r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}",


ANALYSED = grid.ANALYSED


def run_files(scale, runs, name):
    return [f"results/{scale}/runs/{r.variant}/{r.env}/seed{r.seed}/{name}" for r in runs]


def random_files(scale):
    return expand("results/{scale}/random/{env}.csv", scale=scale, env=grid.random_envs(config, scale))


def gradient_noise_files(scale):
    return [f"results/{scale}/gradient_noise/{env}/seed{seed}.csv" for env, seed in grid.gradient_noise_runs(config, scale)]


def analysed(scale):
    return [e for e in ANALYSED if e in config["scales"][scale]["experiments"]]


# the published numbers and setups the figures, tables and report stand ours beside
PUBLISHED = sorted(glob.glob(os.path.join(workflow.basedir, "analysis", "published", "*.csv")))


def scoped(wildcards):
    """The config as an analysis sees it: the scale's, or one of its subsets' (grid.subset) for a subset's files."""
    subset = getattr(wildcards, "subset", None)
    return grid.subset(config, wildcards.scale, subset) if subset else config


def out_dir(wildcards):
    """results/<scale>, or results/<scale>/<subset> for a subset's tables, figures and report."""
    subset = getattr(wildcards, "subset", None)
    return f"results/{wildcards.scale}/{subset}" if subset else f"results/{wildcards.scale}"


def subset_flag(wildcards):
    subset = getattr(wildcards, "subset", None)
    return f"--subset {subset}" if subset else ""


def discussions(wildcards):
    """The hand-written discussions the report shows: analysis/discussion/<scale>[/<subset>]/<experiment>.md."""
    folder = os.path.join(workflow.basedir, "analysis", "discussion", wildcards.scale, getattr(wildcards, "subset", ""))
    return sorted(glob.glob(os.path.join(folder, "*.md")))


def experiment_inputs(wildcards):
    chosen = scoped(wildcards)
    runs = grid.experiment_runs(chosen, wildcards.scale, wildcards.experiment)
    return run_files(wildcards.scale, runs, "run.json") + [
        f"results/{wildcards.scale}/random/{env}.csv" for env in grid.random_envs(chosen, wildcards.scale)]


def report_inputs(wildcards):
    chosen, out = scoped(wildcards), out_dir(wildcards)
    experiments = [e for e in ANALYSED if e in chosen["scales"][wildcards.scale]["experiments"]]
    # a scale's report also gives each subset's summary, from the subset's tables
    subsets = [] if getattr(wildcards, "subset", None) else [
        f"results/{wildcards.scale}/{name}/tables/{e}.csv" for name in SUBSETS[wildcards.scale]
        for e in ANALYSED if e in grid.subset(config, wildcards.scale, name)["scales"][wildcards.scale]["experiments"]]
    return [f"{out}/tables/{e}.{ext}" for e in experiments for ext in ("csv", "md")] + [
        f"{out}/figures/{e}.png" for e in experiments] + [
        f"results/{wildcards.scale}/gradient_noise/{env}/seed{seed}.csv"
        for env, seed in grid.gradient_noise_runs(chosen, wildcards.scale)] + subsets


SUBSETS = {scale: sorted(sc.get("subsets", {})) for scale, sc in config["scales"].items()}
# the subset wildcard: any scale's subset name (a pattern that matches nothing where there is none)
SUBSET_PATTERN = "|".join(re.escape(name) for names in SUBSETS.values() for name in names) or "(?!)"


def config_json(wildcards):
    """The merged config's part for this scale, so the analysis sees exactly the grid the workflow ran
    (and an edit elsewhere in the config does not rerun it)."""
    return json.dumps(grid.scale_config(config, wildcards.scale), sort_keys=True)


def config_marker(wildcards):
    """The scale's part of the config as a file, rewritten only when its content changes: an input of the
    analyses, so that they rerun when, and only when, the grid they read changes (not on a rule's edit)."""
    path = f"results/{wildcards.scale}/stale/config.json"
    text = config_json(wildcards) + "\n"
    if not os.path.exists(path) or open(path).read() != text:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    return path


def all_outputs():
    return (
        run_files(SCALE, grid.runs(config, SCALE), "run.json")
        + random_files(SCALE)
        + gradient_noise_files(SCALE)
        + [f"results/{SCALE}/REPORT.md"]
        + [f"results/{SCALE}/{subset}/REPORT.md" for subset in SUBSETS[SCALE]]
    )


# the seeds of every training run of this scale: one train job trains a variant × env's seeds together
TRAIN_SEEDS = grid.train_seeds(config, SCALE)
# as experiments/job.py leaves a finished run of the workflow (the algorithm files write .csv.gz; repack.py)
RUN_FILES = ("progress.csv.xz", "episodes.csv.xz", "run.json")


def run_dir(wildcards, seed):
    return f"results/{wildcards.scale}/runs/{wildcards.variant}/{wildcards.env}/seed{seed}"


def stale_why(wildcards, seed):
    """Why the finished run of this seed is stale (grid.stale_reason), or None."""
    path = f"{run_dir(wildcards, seed)}/run.json"
    if not os.path.exists(path):
        return None
    with open(path) as f:
        meta = json.load(f)
    run = grid.Run(wildcards.variant, wildcards.env, int(seed))
    return grid.stale_reason(config, wildcards.scale, run, meta)


def write_marker(marker, why):
    """For a stale output, a file written now that says why: newer than the outputs, it makes the job
    rerun by modification time, which needs no .snakemake/ metadata. [] for a fresh one (why is None).
    Its bytes are new at each write (the time, in ns): Snakemake ignores a newer input whose checksum it has
    recorded for the outputs, and it records one even for a rerun that failed and whose outputs it put back
    (update()); a marker with the same bytes would then hide the stale run from every later plan."""
    if why is None:
        return []
    os.makedirs(os.path.dirname(marker), exist_ok=True)
    with open(marker, "w") as f:
        print(why, file=f)
        print(f"(marked {time.time_ns()})", file=f)
    return marker


def stale_markers(wildcards):
    """The train rule's markers, one per stale run of the variant × env (stale_why); [] when none is.
    First, a finished run that still holds .csv.gz files (made before the workflow kept .csv.xz, or whose job
    stopped before its repack) is repacked here, while the job is planned, as the job would have left it:
    its outputs are then there, and it is not trained again. A run that a live process owns is left alone."""
    for seed in TRAIN_SEEDS:
        folder = pathlib.Path(run_dir(wildcards, seed))
        if (folder / "run.json").exists() and any((folder / f"{n}.csv.gz").exists() for n in repack.NAMES):
            repack.repack_run(folder)
    markers = [write_marker(f"results/{wildcards.scale}/stale/{wildcards.variant}/{wildcards.env}/seed{seed}.txt",
                            stale_why(wildcards, seed)) for seed in TRAIN_SEEDS]
    return [m for m in markers if m]


def seeds_to_train(wildcards):
    """The seeds the job trains: those with a file missing, or stale. The others' finished runs stay as they are."""
    return [seed for seed in TRAIN_SEEDS if stale_why(wildcards, seed) is not None
            or not all(os.path.exists(f"{run_dir(wildcards, seed)}/{name}") for name in RUN_FILES)]


def gradient_noise_stale_marker(wildcards):
    """As stale_marker, for a gradient-noise measurement: made, but by other arguments or code, or with no
    provenance record (then the record is also a missing output, and the job reruns anyway)."""
    state = grid.gradient_noise_state(config, wildcards.scale, f"results/{wildcards.scale}", wildcards.env, wildcards.seed)
    return write_marker(f"results/{wildcards.scale}/stale/gradient_noise/{wildcards.env}/seed{wildcards.seed}.txt",
                        None if state == grid.MISSING else state)


def train_script(wildcards):
    """The variant's algorithm file: a param, not an input, so that its modification time never reruns a run
    (staleness is decided by content: stale_marker)."""
    return str(grid.algorithm_path(config["variants"][wildcards.variant]["algo"]))


def train_args(wildcards):
    return grid.cli_args(config, wildcards.scale, wildcards.variant, wildcards.env)


def train_steps(wildcards):
    return grid.steps(config, wildcards.scale, wildcards.env)


def train_priority(wildcards):
    """Among ready jobs, the higher starts first: the variant's config priority, then env by env."""
    return grid.train_priority(config, wildcards.scale, wildcards.variant, wildcards.env)


def train_runtime(wildcards):
    """Minutes a job may take on a slow core (500 steps/s per seed), for the cluster's time limit."""
    return 5 + len(seeds_to_train(wildcards)) * train_steps(wildcards) // 30000
