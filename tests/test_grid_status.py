"""The analysis against the planned grid: missing runs and stale runs (other arguments, another
algorithm file) stop it unless asked for a partial or flagged report, which then says so; the CLIs
fail in one line on bad input; a repeated config key is refused; config edits touch one scale."""
import copy
import json
import pathlib
import shutil
import subprocess
import sys
import types

import pandas as pd
import pytest

from analysis import experiments as analysis_experiments
from analysis.load import GridStatus, RunContractError, seed_list
from conftest import ROOT, load_algorithm
from experiments import grid


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A smoke-scale config cut down to one experiment (ppo_objectives: ppo_clip_0.2 and ppo1_clip_0.2 on
    CartPole, seeds 1-2) and its four runs, made the way the workflow makes them."""
    config = copy.deepcopy(grid.load())
    config["scales"]["smoke"]["experiments"] = {
        "random": {"envs": ["CartPole-v1"], "seeds": [1]},
        "ppo_objectives": {"envs": ["CartPole-v1"], "seeds": [1, 2], "variants": ["ppo_clip_0.2", "ppo1_clip_0.2"]}}
    scale_dir = tmp_path_factory.mktemp("tiny") / "results" / "smoke"
    ppo = load_algorithm("ppo")
    for run in grid.experiment_runs(config, "smoke", "ppo_objectives"):
        out = scale_dir / "runs" / run.variant / run.env / f"seed{run.seed}"
        ppo.train(ppo.Args(env_id=run.env, seed=run.seed, total_timesteps=grid.steps(config, "smoke", run.env),
                           out=str(out), compress=True, **grid.run_args(config, "smoke", run.variant, run.env)[0]),
                  quiet=True)
    (scale_dir / "random").mkdir()
    (scale_dir / "random" / "CartPole-v1.csv").write_text("episode,ep_return,ep_length,terminated\n0,20.0,20,1\n1,24.0,24,1\n")
    return config, scale_dir


def copy_of(scale_dir, tmp_path):
    shutil.copytree(scale_dir, tmp_path / "smoke")
    return tmp_path / "smoke"


def test_the_complete_fresh_grid_passes(tiny):
    config, scale_dir = tiny
    status = GridStatus(scale_dir, config, "smoke", ["ppo_objectives"]).check()
    assert len(status.planned) == 4 and not status.missing and not status.stale and status.lines() == []


def test_a_missing_run_stops_the_analysis_unless_partial_and_is_then_reported(tiny, tmp_path):
    config, scale_dir = tiny
    scale_dir = copy_of(scale_dir, tmp_path)
    shutil.rmtree(scale_dir / "runs" / "ppo1_clip_0.2" / "CartPole-v1" / "seed2")
    with pytest.raises(RunContractError, match=r"1 of the 4 runs the smoke grid plans are missing "
                                               r"\(first: ppo1_clip_0.2/CartPole-v1/seed2\); .*--partial"):
        analysis_experiments.build(scale_dir, config, "smoke", "ppo_objectives")
    analysis_experiments.build(scale_dir, config, "smoke", "ppo_objectives", partial=True)
    markdown = (scale_dir / "tables" / "ppo_objectives.md").read_text()
    assert "(1 of 2 seeds)" in markdown  # in the cell
    assert "**Partial:** 1 of the 4 planned runs are missing: ppo1_clip_0.2: seed 2 on CartPole-v1." in markdown
    shutil.rmtree(scale_dir / "runs" / "ppo1_clip_0.2" / "CartPole-v1" / "seed1")
    status = GridStatus(scale_dir, config, "smoke", ["ppo_objectives"])
    assert status.lines() == ["**Partial:** 2 of the 4 planned runs are missing: ppo1_clip_0.2 (all 2 runs)."]
    analysis_experiments.build(scale_dir, config, "smoke", "ppo_objectives", partial=True)
    markdown = (scale_dir / "tables" / "ppo_objectives.md").read_text()
    assert "missing run" in markdown and "nan" not in markdown  # a cell without runs says so


def test_an_analysis_that_fails_while_writing_leaves_its_old_outputs_whole(tiny, tmp_path, monkeypatch):
    """Every output is written beside its place and moved there once all are written: a failure half-way
    through the last one (the figure's PDF, here a full disk) leaves the outputs of the last good analysis,
    byte for byte, and no output that looks complete (Snakemake, with keep-incomplete, would take it for one)."""
    import matplotlib.figure
    config, scale_dir = tiny
    scale_dir = copy_of(scale_dir, tmp_path)
    analysis_experiments.build(scale_dir, config, "smoke", "ppo_objectives")
    outputs = [scale_dir / "tables" / "ppo_objectives.csv", scale_dir / "tables" / "ppo_objectives.md",
               scale_dir / "figures" / "ppo_objectives.png", scale_dir / "figures" / "ppo_objectives.pdf"]
    before = [p.read_bytes() for p in outputs]
    shutil.rmtree(scale_dir / "runs" / "ppo1_clip_0.2" / "CartPole-v1" / "seed2")  # the next analysis differs
    savefig = matplotlib.figure.Figure.savefig

    def disk_full_in_the_pdf(fig, fname, **kwargs):
        if kwargs.get("format", pathlib.Path(fname).suffix[1:]) != "pdf":
            return savefig(fig, fname, **kwargs)
        pathlib.Path(fname).write_bytes(b"%PDF-1.4 half")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", disk_full_in_the_pdf)
    with pytest.raises(OSError, match="No space left"):
        analysis_experiments.build(scale_dir, config, "smoke", "ppo_objectives", partial=True)
    assert [p.read_bytes() for p in outputs] == before
    assert "1 of the 4 planned runs are missing" in (scale_dir / "tables" / "ppo_objectives.md.partial").read_text()


def test_the_missing_runs_are_summarised_per_variant_so_a_mostly_missing_grid_stays_readable():
    status = GridStatus.__new__(GridStatus)
    status.planned = [grid.Run(v, e, s) for v in ("a", "b") for e in ("E1", "E2") for s in (1, 2, 3)]
    status.missing, status.stale = [r for r in status.planned if r.variant == "a" or r.env == "E1" or r.seed == 2], []
    status.noise_missing, status.noise_stale = [], []
    assert status.lines() == ["**Partial:** 10 of the 12 planned runs are missing: a (all 6 runs); "
                              "b: every seed on E1 and seed 2 on E2."]
    # the paper grid's usual case: the same new seeds missing on every env, named once
    status.planned = [grid.Run(v, e, s) for v in ("a", "b") for e in ("E1", "E2", "E3") for s in range(1, 11)]
    status.missing = [r for r in status.planned if r.seed >= 4 and (r.variant == "a" or r.env != "E2" or r.seed == 9)]
    assert status.lines() == ["**Partial:** 36 of the 60 planned runs are missing: a: seeds 4-10 on every env; "
                              "b: seeds 4-10 on E1, E3 and seed 9 on E2."]
    status.missing, status.noise_planned = [], [(e, s) for e in ("E1", "E2", "E3") for s in range(1, 11)]
    status.noise_missing = [(e, s) for e, s in status.noise_planned if e == "E3" or s >= 4]
    assert status.lines() == ["**Partial (gradient noise):** 24 of the 30 measurements are missing: seeds 4-10 on "
                              "E1, E2 and every seed on E3."]
    assert [seed_list(s) for s in ([2], [3, 1], [1, 2, 4, 5, 6, 9])] == ["seed 2", "seeds 1, 3", "seeds 1, 2, 4-6, 9"]


def test_the_per_seed_scores_say_once_per_set_of_seeds_which_cells_hold_fewer():
    """The paper report listed 77 cells one line each ("ppo1_none on Hopper-v5: seeds 1, 2, 3 only.")."""
    scores = pd.DataFrame([dict(variant=v, env=e, seed=s, score=s * 1.0) for v in "abc" for e in ("E1", "E2")
                           for s in range(1, 11) if v == "a" or (s <= 3 and (v, e, s > 1) != ("c", "E2", True))])
    data = types.SimpleNamespace(scores=scores, variants=["c", "a", "b"], envs=["E2", "E1"])
    text = analysis_experiments.per_seed_scores(data)
    rows = [[cell.strip() for cell in line.split("|")[1:4]] for line in text.splitlines() if line.startswith("| ")]
    ten, three = " / ".join(f"{s:.1f}" for s in range(1, 11)), "1.0 / 2.0 / 3.0"
    assert rows[1:] == [["c", "1.0", three], ["a", ten, ten], ["b", three, three]]  # envs in the config's order
    notes = [line for line in text.splitlines() if " only: " in line]
    assert notes == ["Seeds 1-3 only: c on E1; b on every env.", "Seed 1 only: c on E2."]


def test_a_stale_argument_or_algorithm_file_stops_the_analysis_naming_the_run_and_key(tiny, tmp_path):
    config, scale_dir = tiny
    edited = copy.deepcopy(config)
    edited["variants"]["ppo_clip_0.2"]["args"]["clip_eps"] = 0.3  # as in a fresh clone with an edited config
    with pytest.raises(RunContractError, match=r"runs/ppo_clip_0.2/CartPole-v1/seed1: stale, argument clip_eps: "
                                               r"the run has 0.2, the config and code give 0.3 \(2 stale runs"):
        GridStatus(scale_dir, edited, "smoke", ["ppo_objectives"]).check()
    scale_dir = copy_of(scale_dir, tmp_path)
    meta_path = scale_dir / "runs" / "ppo1_clip_0.2" / "CartPole-v1" / "seed1" / "run.json"
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "code_sha256": "0" * 64}))
    with pytest.raises(RunContractError, match=r"seed1: stale, made by other code \(fingerprint 000000000000\), not shown"):
        GridStatus(scale_dir, config, "smoke", ["ppo_objectives"]).check()
    status = GridStatus(scale_dir, config, "smoke", ["ppo_objectives"]).check(allow_stale=True)
    assert status.lines()[0].startswith("**Stale:** 1 of the runs")


def test_the_report_cli_refuses_in_one_line_and_writes_nothing(tmp_path):
    unrelated = tmp_path / "photos"
    unrelated.mkdir()
    for argv in ([], ["--scale", "quick"]):
        proc = subprocess.run([sys.executable, "-m", "analysis.report", str(unrelated), *argv], cwd=ROOT,
                              capture_output=True, text=True)
        assert proc.returncode != 0 and proc.stderr.strip().startswith("error: ")
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert not any(unrelated.iterdir())


def test_analysis_load_without_an_argument_says_what_it_needs_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "analysis.load"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0 and proc.stderr.strip() == ("error: the following arguments are required: PATH "
                                                            "(python -m analysis.load --help)")


def test_a_repeated_config_key_is_refused_with_its_line(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text((ROOT / "experiments" / "config.yaml").read_text() +
                    "\n# appended\nvariants:\n  trpo: {algo: trpo, args: {}}\n")
    with pytest.raises(grid.ConfigError, match=r"config.yaml, line \d+: duplicate key 'variants'"):
        grid.load(path)


def test_a_config_edit_changes_the_analysis_parameters_of_its_scale_only():
    config = grid.load()
    edited = copy.deepcopy(config)
    edited["scales"]["quick"]["random_episodes"] = 7
    edited["variants"]["ppo_gae_0.36"]["args"]["gae_lambda"] = 0.4  # not used at the smoke scale
    assert grid.scale_config(edited, "smoke") == grid.scale_config(config, "smoke")
    assert grid.scale_config(edited, "quick") != grid.scale_config(config, "quick")
    reordered = copy.deepcopy(config)
    reordered["variants"]["ppo1_none"]["priority"] = 5  # when a job starts changes no result
    assert grid.scale_config(reordered, "quick") == grid.scale_config(config, "quick")


def test_a_partial_report_of_an_experiment_with_no_runs_yet_says_so(tiny, tmp_path):
    config, scale_dir = tiny
    scale_dir = copy_of(scale_dir, tmp_path)
    shutil.rmtree(scale_dir / "runs")
    with pytest.raises(RunContractError, match="4 of the 4 runs"):
        analysis_experiments.build(scale_dir, config, "smoke", "ppo_objectives")
    assert analysis_experiments.build(scale_dir, config, "smoke", "ppo_objectives", partial=True) is None
    assert (scale_dir / "tables" / "ppo_objectives.md").read_text().startswith("No runs yet: none of the 4 planned")
    assert (scale_dir / "figures" / "ppo_objectives.png").stat().st_size > 0


def test_a_partial_report_counts_finished_runs_per_experiment_and_a_shared_run_once(tiny, tmp_path):
    from analysis.report import grid_progress
    config, scale_dir = tiny
    scale_dir = copy_of(scale_dir, tmp_path)
    config = copy.deepcopy(config)  # algorithms reuses ppo_objectives' ppo_clip_0.2 runs
    config["scales"]["smoke"]["experiments"]["algorithms"] = {"envs": ["CartPole-v1"], "seeds": [1, 2],
                                                              "variants": ["ppo_clip_0.2"]}
    shutil.rmtree(scale_dir / "runs" / "ppo1_clip_0.2" / "CartPole-v1" / "seed2")
    status = GridStatus(scale_dir, config, "smoke", ["ppo_objectives", "algorithms"])
    lines = grid_progress(config, "smoke", status)
    assert lines[0].startswith("- **Partial:** 1 of the 4 planned runs are missing")
    rows = [[cell.strip() for cell in row.strip("|").split("|")] for row in lines[2].splitlines()[2:]]
    assert rows == [["ppo_objectives", "4", "3", "1"], ["algorithms", "2", "2", "0"],
                    ["all (a run shared by experiments counts once)", "4", "3", "1"]]


def test_the_gae_reading_says_when_an_end_of_the_lambda_range_has_no_run_yet():
    import pandas as pd
    from analysis.gae_lambda import reading_gae
    table = pd.DataFrame({"env": "Hopper-v5", "variant": ["ppo_gae_0", "ppo_clip_0.2", "ppo_gae_1"],
                          "lambda": [0.0, 0.95, 1.0], "mean": [float("nan"), 2000.0, 900.0],
                          "p_best": [float("nan"), 1.0, 0.0], "speed_mean": [float("nan"), 1500.0, 700.0],
                          "speed_p_best": [float("nan"), 1.0, 0.0], "seeds": [0, 3, 3]})
    text = reading_gae(table[table.seeds > 0])
    assert "λ = 0 has no run yet, λ = 1 scores 900.0." in text and "nan" not in text


def test_a_task_where_not_every_lambda_has_a_run_names_no_best_lambda():
    """The paper report once named λ = 0.95 CartPole's best "in 100% of resamples", and inside the GAE paper's
    cart-pole range, when 0.95 was the only λ with runs there."""
    from types import SimpleNamespace
    from analysis.gae_lambda import cite, reading_gae, summary
    rows = [("Hopper-v5", "ppo_gae_0", 0.0, 600.0), ("Hopper-v5", "ppo_clip_0.2", 0.95, 2000.0),
            ("Hopper-v5", "ppo_gae_1", 1.0, 900.0), ("CartPole-v1", "ppo_clip_0.2", 0.95, 497.6)]
    table = pd.DataFrame([dict(env=e, variant=v, **{"lambda": lam}, mean=m, p_best=float(m == 2000.0) if e == "Hopper-v5"
                               else 1.0, speed_mean=m / 2, speed_p_best=1.0 if lam == 0.95 else 0.0, seeds=3)
                          for e, v, lam, m in rows])
    text = reading_gae(table)
    assert "- CartPole-v1: 1 of the 3 λs have runs so far (λ = 0.95); no best λ until every λ has one." in text
    assert "- Hopper-v5: best final score at λ = 0.95 (2000.0" in text
    planned = [grid.Run(v, e, s) for e, v, _, _ in rows for s in (1, 2, 3)]
    ctx = SimpleNamespace(planned=planned, runs=pd.DataFrame(planned), config={}, scale="paper")
    said = summary(table, ctx)
    assert "CartPole-v1 0.95" not in said and "cart-pole range" not in said
    assert said.endswith("Not every λ has a run yet on CartPole-v1.") and "1 of 1 inside" in said
    assert "CartPole" not in cite(table, ctx)
