"""experiments/cost.py: the time projection from a given calibration, and the disk projection, on a
hand-made results folder whose sizes are worked out by hand."""
import copy
import lzma
import json
import math

import pytest

from experiments import cost, grid

BLOCK = 4096


@pytest.fixture
def tiny():
    """The smoke scale cut to one variant on two envs, two seeds: four planned runs."""
    config = copy.deepcopy(grid.load())
    config["scales"]["smoke"]["experiments"] = {
        "random": {"envs": ["CartPole-v1", "InvertedPendulum-v5"], "seeds": [1]},
        "algorithms": {"envs": ["CartPole-v1", "InvertedPendulum-v5"], "seeds": [1, 2], "variants": ["ppo_clip_0.2"]}}
    return config


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def finished_run(scale_dir, config, variant, env, seed, episode_rows):
    run = scale_dir / "runs" / variant / env / f"seed{seed}"
    args = grid.expected_args(config, "smoke", grid.Run(variant, env, seed))
    write(run / "run.json", json.dumps({"args": args, "algo": "ppo", "code_sha256": grid.fingerprint_now("ppo")}).encode())
    write(run / "progress.csv.xz", b"p" * 5000)  # 2 blocks
    csv = "global_step,ep_return,ep_length,terminated\n" + "".join(f"{i},{i * 0.37:.6f},9,1\n" for i in range(episode_rows))
    write(run / "episodes.csv.xz", lzma.compress(csv.encode()))
    write(scale_dir / "logs" / "train" / variant / env / f"seed{seed}.log", b"l" * 10)
    write(scale_dir / "benchmarks" / "train" / variant / env / f"seed{seed}.tsv", b"b" * 10)
    return run


def test_on_disk_counts_whole_blocks_like_du(tmp_path):
    write(tmp_path / "d" / "one", b"x")
    write(tmp_path / "d" / "two", b"x" * (BLOCK + 1))
    assert cost.on_disk(tmp_path / "d" / "one") == BLOCK
    assert cost.on_disk(tmp_path / "d") == BLOCK + BLOCK + 2 * BLOCK  # the folder, a 1-byte file, a 4097-byte one
    assert cost.on_disk(tmp_path / "absent") == 0


def test_disk_projection_by_hand(tmp_path, tiny):
    scale_dir = tmp_path / "results" / "smoke"
    run = finished_run(scale_dir, tiny, "ppo_clip_0.2", "CartPole-v1", 1, episode_rows=2000)
    # random-policy episodes: InvertedPendulum's mean length 8, so 1536 steps give 192 episode rows
    write(scale_dir / "random" / "InvertedPendulum-v5.csv", b"episode,ep_return,ep_length,terminated\n0,6,6,1\n1,10,10,1\n")
    write(scale_dir / "random" / "CartPole-v1.csv", b"episode,ep_return,ep_length,terminated\n0,20,20,1\n")
    episodes = (run / "episodes.csv.xz").stat().st_size
    blocks = lambda n: math.ceil(n / BLOCK) * BLOCK  # noqa: E731
    # the run: its folder, run.json, progress (5000 B), episodes; its log and benchmark (10 B each)
    footprint = BLOCK + BLOCK + 2 * BLOCK + blocks(episodes) + BLOCK + BLOCK
    assert cost.run_footprint(scale_dir, grid.Run("ppo_clip_0.2", "CartPole-v1", 1)) == footprint
    now = cost.on_disk(scale_dir)
    # CartPole seed 2 costs what seed 1 did; each InvertedPendulum run the rest of a run plus 192 rows at seed 1's
    # bytes per row
    inverted_pendulum = footprint - blocks(episodes) + blocks(192 * episodes / 2000)
    projected = now + footprint + 2 * inverted_pendulum
    assert cost.disk_totals(tiny, "smoke", str(scale_dir))[2:4] == (now, projected)  # to the byte
    text = cost.disk_projection(tiny, "smoke", str(scale_dir))
    assert text.splitlines()[0] == (f"smoke scale: {scale_dir} takes {now / 2**20:.1f} MiB on disk with 1 of 4 planned runs; "
                                    f"with all of them about {projected / 2**20:.1f} MiB.")
    assert f"at {episodes / 2000:.1f} compressed bytes per episode row: ppo InvertedPendulum-v5 (2 runs)." in text
    # without the random policy's episodes, each of those runs counts as the mean finished run
    (scale_dir / "random" / "InvertedPendulum-v5.csv").unlink()
    now = cost.on_disk(scale_dir)
    assert cost.disk_totals(tiny, "smoke", str(scale_dir))[2:4] == (now, now + 3 * footprint)
    text = cost.disk_projection(tiny, "smoke", str(scale_dir))
    assert f"with all of them about {(now + 3 * footprint) / 2**20:.1f} MiB." in text
    assert text.splitlines()[1] == ("Neither a finished run nor the random policy's episodes yet, so counted at the mean "
                                    "finished run: ppo InvertedPendulum-v5 (2 runs).")


def test_disk_projection_without_runs_says_so(tmp_path, tiny):
    assert cost.disk_projection(tiny, "smoke", str(tmp_path)) == f"smoke scale: no finished run under {tmp_path} to project the size from."


def test_time_projection_counts_only_the_runs_still_to_do(tmp_path, tiny):
    scale_dir = tmp_path / "results" / "smoke"
    finished_run(scale_dir, tiny, "ppo_clip_0.2", "CartPole-v1", 1, episode_rows=10)
    calibration = cost.Calibration.__new__(cost.Calibration)  # given, not measured: s per step and seed beyond the env's
    calibration.env = {"CartPole-v1": 1.0, "InvertedPendulum-v5": 1.0}
    calibration.algo = {("ppo", 1): 0.5, ("ppo", 2): 0.25}  # two seeds at once: cheaper per seed
    text = cost.projection(tiny, "smoke", scale_dir, 2, calibration)
    # jobs: CartPole seed 2 alone, 1536 × 1.5 s = 2304 s; InvertedPendulum seeds 1 and 2 at once, 2 × 1536 × 1.25 = 3840 s
    assert text.startswith("smoke scale: 3 of 4 planned runs still to do, in 2 jobs (a variant × env's seeds in one process).")
    assert "Total 1.7 core-hours; on 2 cores about 1.1 h of wall time" in text  # 6144 s / 2 = 3072 s, but the longest job 3840 s
    assert "on 1 cores about 1.7 h of wall time" in cost.projection(tiny, "smoke", scale_dir, 1, calibration)


def test_the_recorded_projection_costs_each_run_as_the_finished_ones_did_by_hand(tmp_path, tiny):
    """--recorded: no calibration, the finished runs' own wall times (a process of k seeds at once counted as k runs
    of a k-th of its time), scaled from one at a time to k at a time by the ratio on envs that have both, and
    borrowed from the other envs where an env has no finished run."""
    config = copy.deepcopy(tiny)
    config["scales"]["smoke"]["experiments"]["algorithms"] = {
        "envs": ["CartPole-v1", "InvertedPendulum-v5", "Hopper-v5"], "seeds": [1, 2, 3, 4], "variants": ["ppo_clip_0.2"]}
    scale_dir = tmp_path / "results" / "smoke"
    steps = 1536  # every smoke run's

    def finished(env, seed, walltime_s, seeds_in_process):
        run = finished_run(scale_dir, config, "ppo_clip_0.2", env, seed, episode_rows=10)
        meta = json.loads((run / "run.json").read_text())
        meta.update(walltime_s=walltime_s, seeds_in_process=seeds_in_process, steps_trained=steps)
        (run / "run.json").write_text(json.dumps(meta))

    finished("InvertedPendulum-v5", 1, 100.0, [1])  # one at a time: 100 s a run
    for seed in (2, 3, 4):
        finished("InvertedPendulum-v5", seed, 120.0, [2, 3, 4])  # three at once: 40 s a run, 0.4 of one at a time
    finished("Hopper-v5", 1, 200.0, [1])
    text = cost.recorded_projection(config, "smoke", scale_dir, 2)
    # Hopper seeds 2-4, one job of three at once: 200 s × 0.4 = 80 s each; CartPole seeds 1-4, four at once, no run
    # there nor four at once anywhere: ppo's median per step over all its runs, 40 s (100, 40, 40, 40, 200) each
    assert text.startswith("smoke scale, from the wall times of 5 finished runs (no calibration): 7 runs and 0 "
                           "gradient-noise measurements still to do.")
    assert [line.split("|")[1:4] for line in text.splitlines() if line.startswith("| algorithms")] == \
        [[" algorithms   ", "            7 ", "          0.1 "]]  # 400 s
    total = 3 * 80 + 4 * 40
    assert f"Total {total / 3600:.1f} core-hours; on 2 cores about {total / 2 / 60:.0f} min of wall time, " \
           f"{7 / (total / 2 / 3600):.0f} runs an hour." in text
    assert "one at a time, scaled: ppo Hopper-v5 (3 runs)." in text
    assert "over the other envs: ppo CartPole-v1 (4 runs)." in text
    assert cost.recorded_cost(cost.recorded_costs(config, "smoke", scale_dir), "ppo", "InvertedPendulum-v5", 1) == \
        (pytest.approx(100 / steps), "recorded")
    # an env whose runs were trained some other number at a time, with no env to take a ratio from: as they were
    assert cost.recorded_cost(cost.recorded_costs(config, "smoke", scale_dir), "ppo", "InvertedPendulum-v5", 2) == \
        (pytest.approx(40 / steps), "unscaled")


def test_time_projection_counts_the_gradient_noise_measurements_still_to_do(tmp_path, tiny):
    config = copy.deepcopy(tiny)
    config["scales"]["smoke"]["experiments"]["baselines"] = {"envs": ["CartPole-v1"], "seeds": [1, 2],
                                                             "variants": ["vpg_gae"]}
    scale_dir = tmp_path / "results" / "smoke"
    measured = scale_dir / "gradient_noise" / "CartPole-v1"  # seed 1 measured by this config and code
    write(measured / "seed1.csv", b"weight\n")
    write(measured / "seed1.json", json.dumps({**grid.gradient_noise_args(config, "smoke", "CartPole-v1"),
                                               "vpg_code_sha256": grid.fingerprint_now("vpg"),
                                               "script_sha256": grid.file_sha256(grid.ROOT / "experiments" /
                                                                                 "gradient_noise.py")}).encode())
    calibration = cost.Calibration.__new__(cost.Calibration)
    calibration.env = {"CartPole-v1": 1.0, "InvertedPendulum-v5": 1.0}
    calibration.algo = {("ppo", 1): 0.5, ("ppo", 2): 0.5, ("vpg", 1): 0.25}
    text = cost.projection(config, "smoke", scale_dir, 1, calibration)
    assert text.startswith("smoke scale: 6 of 6 planned runs still to do, in 3 jobs (a variant × env's seeds in one "
                           "process), and 1 of 2 gradient-noise measurements.")
    # seed 2: (2 warm-up + 3 measured batches) × 256 steps × (1.0 + 0.25) s = 1600 s
    noise_row = next(line for line in text.splitlines() if line.startswith("| gradient_noise"))
    assert [c.strip() for c in noise_row.split("|")[2:5]] == ["1", "0.4", "0.4 h"]
    (measured / "seed1.json").unlink()  # a CSV without its record is still to do
    assert "2 of 2 gradient-noise measurements" in cost.projection(config, "smoke", scale_dir, 1, calibration)
