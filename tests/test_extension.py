"""Bringing your own algorithm (docs/GUIDE.md, "Adding an algorithm"): a new file algorithms/<name>.py that keeps
the run contract runs at every scale with no edit to the schema, the rules, the cost model or the analysis,
and its runs say their own name."""
import json
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from analysis.load import GridStatus, load_runs
from conftest import ROOT
from experiments import cost, grid


@pytest.fixture
def my_algorithm():
    name = "mytiny_test"
    path = ROOT / "algorithms" / f"{name}.py"
    shutil.copy(ROOT / "algorithms" / "ppo.py", path)  # the worked example: a copy of ppo.py, to be changed
    grid.algorithm.cache_clear()
    try:
        yield name
    finally:
        path.unlink()
        grid.algorithm.cache_clear()


def with_variant(name):
    config = grid.load()
    config["variants"]["mine"] = {"algo": name, "args": {"clip_eps": 0.25}}
    config["scales"]["smoke"]["algo_args"][name] = config["scales"]["smoke"]["algo_args"]["ppo"]  # smoke: tiny batches
    for scale in ("smoke", "quick", "paper"):
        chosen = config["scales"][scale]["experiments"]["algorithms"]
        chosen["add_variants"] = chosen.get("add_variants", []) + ["mine"]
        if "variants" in chosen:
            chosen["variants"] = chosen["variants"] + ["mine"]
    return config


def test_a_new_algorithm_file_runs_at_every_scale_without_other_edits(my_algorithm, tmp_path):
    config = with_variant(my_algorithm)
    grid.check(config)  # the schema and the config check take any file directly in algorithms/ (smoke: with its
    # tiny batches under scales.smoke.algo_args, as every algorithm has them)
    for scale in ("smoke", "quick", "paper"):
        assert grid.Run("mine", "CartPole-v1" if scale == "smoke" else config["scales"][scale]["experiments"]
                        ["algorithms"]["envs"][0], 1) in grid.runs(config, scale)
    assert cost.tiny_batch(grid.algorithm(my_algorithm)) == {"num_steps": cost.TINY_BATCH}  # the cost model's

    # the workflow plans it with its own rules, and runs it: its run names itself
    override = tmp_path / "mine.yaml"
    smoke = config["scales"]["smoke"]
    override.write_text(yaml.safe_dump({"variants": {"mine": config["variants"]["mine"]},
                                        "scales": {"smoke": {"algo_args": smoke["algo_args"],
                                                             "experiments": {"algorithms": smoke["experiments"]["algorithms"]}}}}))
    target = "results/smoke/runs/mine/CartPole-v1/seed1/run.json"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(ROOT / "experiments" / "config.yaml"), str(override), "--config", "scale=smoke",
           "--cores", "1", target]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((tmp_path / target).read_text())
    assert meta["algo"] == my_algorithm and meta["args"]["clip_eps"] == 0.25
    runs, _, _ = load_runs(tmp_path / "results" / "smoke")
    assert runs.algo.tolist() == [my_algorithm] * 2  # the job trains the variant × env's two smoke seeds
    status = GridStatus(tmp_path / "results" / "smoke", config, "smoke", ["algorithms"])
    assert [r.variant for r, _ in status.stale] == [] and grid.Run("mine", "CartPole-v1", 1) not in status.missing
    # its runs stay current while the file is unchanged, and go stale when it changes
    path = ROOT / "algorithms" / f"{my_algorithm}.py"
    path.write_text(re.sub(r"\(1 - clip_eps, 1 \+ clip_eps\)", "(1 - 2 * clip_eps, 1 + clip_eps)", path.read_text()))
    assert grid.stale_reason(config, "smoke", grid.Run("mine", "CartPole-v1", 1), meta).startswith("made by other code")
