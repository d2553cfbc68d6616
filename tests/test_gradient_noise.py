"""experiments/gradient_noise.py: the batch gradients against a per-sample loop, the noise statistics
against hand-computed values, the frozen policy against the one vpg.py acts with, and bad input."""
import copy
import dataclasses
import json
import shlex
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from analysis.load import GridStatus, RunContractError
from experiments import gradient_noise as gn
from experiments import grid


@pytest.mark.parametrize("discrete", [False, True])
def test_batch_gradients_match_a_loop_over_samples(vpg, discrete):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((7, 3)).astype(np.float32)
    if discrete:
        policy, actions = vpg.CategoricalPolicy(3, 4, True), rng.integers(0, 4, 7).astype(np.float32)
    else:
        policy, actions = vpg.GaussianPolicy(3, 2, True), rng.standard_normal((7, 2)).astype(np.float32)
    with torch.no_grad():  # a policy away from its initialisation, so that every parameter has a gradient
        for p in policy.parameters():
            p.add_(0.3 * torch.randn_like(p))
    phi = {"a": rng.standard_normal(7).astype(np.float32), "b": np.arange(7, dtype=np.float32)}
    grads = gn.batch_gradients(policy, obs, actions, phi)
    for name, weights in phi.items():
        expected = 0
        for t in range(7):  # Φ_t ∇ log π(a_t|s_t), one sample at a time, averaged
            policy.zero_grad()
            policy.log_prob(policy(torch.from_numpy(obs[t:t + 1])), torch.from_numpy(actions[t:t + 1])).sum().backward()
            expected = expected + weights[t] * torch.cat([p.grad.flatten() for p in policy.parameters()]).numpy() / 7
        np.testing.assert_allclose(grads[name], expected, rtol=1e-5, atol=1e-6)


def test_noise_statistics_by_hand():
    # 3 batches of a 2-parameter gradient; reference "r"
    r = np.array([[1.0, 0.0], [3.0, 0.0], [2.0, 3.0]])
    w = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 4.0]])
    stats = gn.noise_statistics({"r": r, "w": w}, "r")
    # r: per-parameter variances (ddof 1): [1, 3] → 4; mean (2, 1): ‖·‖² = 5, less 4/3
    assert stats["r"]["grad_variance"] == pytest.approx(4.0)
    assert stats["r"]["mean_grad_sq"] == pytest.approx(5 - 4 / 3)
    assert stats["r"]["bias_sq_vs_reward_to_go"] == 0 and stats["r"]["bias_noise_sq"] == 0
    # w: variances [1, 3] → 4; mean (2, 2): 8 − 4/3. w − r = [[0, 1], [-1, 1], [1, 1]]: mean (0, 1),
    # variances [1, 0] → noise 1/3, squared distance 1 − 1/3
    assert stats["w"]["grad_variance"] == pytest.approx(4.0)
    assert stats["w"]["mean_grad_sq"] == pytest.approx(8 - 4 / 3)
    assert stats["w"]["bias_noise_sq"] == pytest.approx(1 / 3)
    assert stats["w"]["bias_sq_vs_reward_to_go"] == pytest.approx(2 / 3)


def test_measures_the_four_weights_of_one_frozen_policy(vpg, tmp_path):
    out = tmp_path / "gn.csv"
    gn.main(["--env-id", "CartPole-v1", "--seed", "3", "--warmup-batches", "2", "--batches", "4", "--out", str(out),
             "--", "--batch-size", "200", "--train-v-iters", "5"])
    frame = pd.read_csv(out)
    assert list(frame.columns) == gn.COLUMNS and list(frame.weight) == list(vpg.WEIGHTS)
    assert (frame.seed == 3).all() and (frame.batches == 4).all() and (frame.batch_size == 200).all()
    assert (frame.grad_variance > 0).all() and frame.explained_variance.nunique() == 1
    rtg = frame.set_index("weight").loc["reward_to_go"]
    assert rtg.bias_sq_vs_reward_to_go == 0 and rtg.bias_noise_sq == 0
    assert not list(tmp_path.glob("*.partial")) and (tmp_path / "gn.json").is_file()
    again = tmp_path / "again.csv"  # deterministic: the same seed measures the same numbers
    gn.main(["--env-id", "CartPole-v1", "--seed", "3", "--warmup-batches", "2", "--batches", "4", "--out", str(again),
             "--", "--batch-size", "200", "--train-v-iters", "5"])
    assert again.read_text() == out.read_text()
    assert (tmp_path / "again.json").read_text() == (tmp_path / "gn.json").read_text()  # no clock, no host in it


def test_the_provenance_record_makes_a_measurement_stale_when_its_arguments_or_code_change(tmp_path):
    """<out>.json says which arguments and code made the CSV; grid.gradient_noise_stale_reason holds it
    to the config and the current files, as grid.stale_reason holds a run, and the report's GridStatus
    stops on a missing or stale measurement unless asked for a partial or flagged report."""
    config = copy.deepcopy(grid.load())
    config["scales"]["smoke"]["experiments"]["baselines"] = {"envs": ["CartPole-v1"], "seeds": [1, 2]}
    scale_dir = tmp_path / "smoke"
    out = scale_dir / "gradient_noise" / "CartPole-v1" / "seed1.csv"
    gn.main(["--env-id", "CartPole-v1", "--seed", "1", "--out", str(out),
             *shlex.split(grid.gradient_noise_cli(config, "smoke", "CartPole-v1"))])
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["vpg_sha256"] == grid.script_sha256("vpg") and record["versions"]["torch"] == torch.__version__
    assert record["vpg_flags"][:2] == ["--threads", "1"] and "--batch-size" in record["vpg_flags"]
    reason = lambda r: grid.gradient_noise_stale_reason(config, "smoke", "CartPole-v1", r)  # noqa: E731
    assert reason(record) is None
    assert reason({**record, "batches": 99}) == \
        f"argument batches: the measurement has 99, the config and code give {record['batches']}"
    assert record["vpg_code_sha256"] == grid.fingerprint_now("vpg")
    assert reason({**record, "vpg_code_sha256": "0" * 64}) == ("made by other code (fingerprint 000000000000), not shown "
                                                              "to compute what vpg.py with run_contract.py computes now")
    old = {k: v for k, v in record.items() if k != "vpg_code_sha256"}  # a record made before run_contract.py
    made_them = next(iter(grid.code_versions()["vpg"]["fingerprints"]))  # vpg.py at the reference commit
    assert reason({**old, "vpg_sha256": made_them}) is None  # the committed measurements' case: current
    assert reason({**record, "script_sha256": "1" * 64}).startswith("made by other code (fingerprint 111111111111), "
                                                                   "not shown to compute what gradient_noise.py")
    assert reason(None) == "no provenance record (the .json beside the .csv)"

    with pytest.raises(RunContractError, match=r"1 of the 2 planned gradient-noise measurements are missing "
                                               r"\(first: CartPole-v1 seed 2\)"):
        GridStatus(scale_dir, config, "smoke", [], gradient_noise=True).check()
    status = GridStatus(scale_dir, config, "smoke", [], gradient_noise=True).check(partial=True)
    assert status.lines() == ["**Partial (gradient noise):** 1 of the 2 measurements are missing: seed 2 on CartPole-v1."]
    shutil.copy(out, out.with_name("seed2.csv"))  # a CSV without its record, as a run killed between the two leaves
    with pytest.raises(RunContractError, match=r"gradient_noise/CartPole-v1/seed2.csv: stale, no provenance record"):
        GridStatus(scale_dir, config, "smoke", [], gradient_noise=True).check()
    status = GridStatus(scale_dir, config, "smoke", [], gradient_noise=True).check(allow_stale=True)
    assert status.lines()[0].startswith("**Stale (gradient noise):** 1 of the measurements")
    assert GridStatus(scale_dir, config, "smoke", []).check().lines() == []  # only the report asks about them
    out.with_suffix(".json").write_text("{cut short")  # a broken record is stale, not an error: the workflow remakes it
    assert grid.gradient_noise_state(config, "smoke", scale_dir, "CartPole-v1", 1) == "its provenance record is not JSON"
    assert grid.gradient_noise_state(config, "smoke", scale_dir, "CartPole-v1", 3) == grid.MISSING

    with pytest.raises(SystemExit) as exit_info:  # the record needs a name: the CSV's, as .json
        gn.main(["--env-id", "CartPole-v1", "--out", str(tmp_path / "gn.txt")])
    assert exit_info.value.code == 2 and not (tmp_path / "gn.txt").exists()


def test_stops_when_the_rebuilt_policy_is_not_the_one_that_acted(vpg, tmp_path, monkeypatch):
    """The check that makes the measurement trustworthy: a policy built from another seed is caught."""
    rebuild = gn.rebuild_policy
    monkeypatch.setattr(gn, "rebuild_policy", lambda v, a: rebuild(v, dataclasses.replace(a, seed=a.seed + 1)))
    args = vpg.Args(env_id="CartPole-v1", batch_size=100, out=str(tmp_path / "x"))
    with pytest.raises(SystemExit, match="the rebuilt policy would not have taken the batch's action"):
        gn.measure(vpg, args, warmup_batches=0, batches=2)


@pytest.mark.parametrize("argv, flag", [
    (["--env-id", "CartPole-v1", "--batches", "1"], "--batches"),
    (["--env-id", "CartPole-v1", "--warmup-batches", "-1"], "--warmup-batches"),
    (["--env-id", "NoSuchEnv-v0"], "--env-id"),
    (["--env-id", "CartPole-v1", "--", "--batch-size", "0"], "--batch-size"),
])
def test_bad_input_is_one_line_naming_the_flag(tmp_path, capsys, argv, flag):
    out = tmp_path / "gn.csv"
    with pytest.raises(SystemExit) as exit_info:
        gn.main(argv[:2] + ["--out", str(out)] + argv[2:])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {flag}:"), err
    assert not out.exists()
