# Helpers shared by the rules: the grid comes from experiments/grid.py, validated before
# any job is planned (a bad config stops here with one line naming the key).
import os
import sys

sys.path.insert(0, os.path.join(workflow.basedir, "experiments"))
import grid

try:
    grid.check(config)
except grid.ConfigError as error:
    sys.exit(f"config error: {error}")

SCALE = config["scale"]
RUN_DIR = "results/{scale}/runs/{variant}/{env}/seed{seed}"


wildcard_constraints:
    scale="smoke|quick|paper",
    seed=r"\d+",
    variant=r"[^/]+",
    env=r"[^/]+",


def run_files(runs, name):
    return [f"results/{SCALE}/runs/{r.variant}/{r.env}/seed{r.seed}/{name}" for r in runs]


def all_outputs():
    return run_files(grid.runs(config, SCALE), "run.json") + expand(
        "results/{scale}/random/{env}.csv", scale=SCALE, env=grid.random_envs(config, SCALE)
    )


def train_script(wildcards):
    return os.path.join(workflow.basedir, "algorithms", config["variants"][wildcards.variant]["algo"] + ".py")


def train_args(wildcards):
    return grid.cli_args(config, wildcards.scale, wildcards.variant, wildcards.env)


def train_steps(wildcards):
    return grid.steps(config, wildcards.scale, wildcards.env)


def train_runtime(wildcards):
    """Minutes a run may take on a slow core (500 steps/s), for the cluster's time limit."""
    return 5 + train_steps(wildcards) // 30000
