"""experiments/inside_run.py: a committed run trained again shows what its batches held, and says whether the
rerun is the committed run."""
import gzip
import lzma
import shutil

import numpy as np
import pytest

from experiments import grid, inside_run


def test_batch_summary_against_hand_values():
    batch = {"obs": np.array([[[1.0, -2.0]], [[-3.0, 4.0]]]),  # (T = 2, N = 1, 2)
             "actions": np.array([[[2.5]], [[-0.5]]])}
    row = inside_run.batch_summary(batch, np.array([-2.0]), np.array([2.0]))
    assert row == {"obs 0": -1.0, "obs 1": 1.0, "|action 0|": 1.5, "actions outside the bounds": 0.5}
    # a discrete action space: no bounds, no share; and only the observations asked for
    discrete = inside_run.batch_summary({"obs": batch["obs"], "actions": np.array([[1], [0]])}, dims={1})
    assert discrete == {"obs 1": 1.0, "|action 0|": 0.5}


def test_a_run_file_is_compared_plain_gzip_or_xz(tmp_path):
    from analysis.load import run_file
    from experiments.equivalence import without_clock
    text = "global_step,walltime_s,ep_return\n200,1.5,-766.5\n"
    for name, opener in (("plain", open), ("gzip", gzip.open), ("xz", lzma.open)):
        (tmp_path / name).mkdir()
        suffix = {"plain": "", "gzip": ".gz", "xz": ".xz"}[name]
        with opener(tmp_path / name / f"episodes.csv{suffix}", "wt") as f:
            f.write(text)
        assert without_clock(run_file(tmp_path / name, "episodes")) == [["global_step", "ep_return"], ["200", "-766.5"]]


def test_a_run_trained_again_is_the_committed_run_and_a_changed_one_is_not(tmp_path, capsys):
    vpg = grid.algorithm("vpg")
    committed = tmp_path / "runs" / "seed2"
    vpg.train(vpg.Args(env_id="Pendulum-v1", seed=2, batch_size=400, train_v_iters=2, total_timesteps=1200,
                       pi_lr=0.01, weight="reward_to_go", out=str(committed), compress=True), quiet=True)
    seen = []
    vpg.train(vpg.Args(env_id="Pendulum-v1", seed=2, batch_size=400, train_v_iters=2, total_timesteps=1200,
                       pi_lr=0.01, weight="reward_to_go", out=str(tmp_path / "again")), quiet=True,
              on_batch=lambda b: seen.append(inside_run.batch_summary(b, np.array([-2.0]), np.array([2.0]))))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    identical, frame, total = inside_run.inside(committed, {1, 3, 9}, scratch)
    assert identical and total == 3 and frame.batch.tolist() == [1, 3]
    assert frame.step.tolist() == [400, 1200]
    assert frame["obs 2"].tolist() == pytest.approx([seen[0]["obs 2"], seen[2]["obs 2"]])
    assert frame["actions outside the bounds"].tolist() == pytest.approx([seen[0]["actions outside the bounds"],
                                                                          seen[2]["actions outside the bounds"]])
    assert inside_run.main([str(committed), "--batches", "1", "9"]) == 0
    out, err = capsys.readouterr()
    assert "identical to the committed run's" in out and "the run has 3 batches" in err
    # no batch asked for is in the run: the note, and no table
    assert inside_run.main([str(committed), "--batches", "9"]) == 0
    out, err = capsys.readouterr()
    assert "the run has 3 batches" in err and "| batch" not in out

    # a committed run whose episodes differ from what its code makes: said, and the exit status is 1
    changed = tmp_path / "changed"
    shutil.copytree(committed, changed)
    rows = gzip.open(changed / "episodes.csv.gz", "rt").read().splitlines()
    first = rows[1].split(",")
    first[1] = str(float(first[1]) + 1)  # one episode's return
    with gzip.open(changed / "episodes.csv.gz", "wt") as f:
        f.write("\n".join([rows[0], ",".join(first), *rows[2:]]) + "\n")
    assert inside_run.main([str(changed)]) == 1
    assert "WARNING: the rerun's episodes differ" in capsys.readouterr().out


def test_bad_input_is_one_line_naming_the_argument(tmp_path):
    with pytest.raises(SystemExit, match="run_dir: no run.json"):
        inside_run.main([str(tmp_path)])
    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(SystemExit, match="--batches: batches count from 1"):
        inside_run.main([str(tmp_path), "--batches", "0"])
