"""No number changed: the current code trains byte-identical runs to the code that made the committed
runs (its files read straight from git), and it is recorded as doing so, so that committed runs stay
current (experiments/equivalence.py, experiments/code_versions.yaml, docs/DESIGN.md §6)."""
import json

import pytest

from experiments import equivalence, grid


@pytest.mark.parametrize("case", list(equivalence.CASES))
def test_the_current_code_computes_the_reference_commits_numbers(case, tmp_path):
    identical, why = equivalence.run_case(case, tmp_path)
    known = equivalence.known_difference(equivalence.CASES[case][0])
    if known and not identical:  # recorded in code_versions.yaml (differs_on) for this CPU model, with the cause
        pytest.xfail(f"{case}: {why} on {equivalence.cpu_model()}, as recorded: {known}")
    assert identical, f"{case}: {why} on {equivalence.cpu_model()}"


def test_a_known_difference_is_read_for_this_cpu_and_the_current_fingerprint_only(monkeypatch):
    versions = {"ppo": {"reference": "r", "fingerprints": {}, "differs_on": {
        "CPU A": {"fingerprints": ["f1"], "why": "kernels round differently"}}}}
    monkeypatch.setattr(grid, "code_versions", lambda: versions)
    monkeypatch.setattr(equivalence, "cpu_model", lambda: "CPU A")
    monkeypatch.setattr(grid, "fingerprint_now", lambda name: "f1")
    assert equivalence.known_difference("ppo") == "kernels round differently"
    monkeypatch.setattr(grid, "fingerprint_now", lambda name: "f2")  # other code: not known, so it must match
    assert equivalence.known_difference("ppo") is None
    monkeypatch.setattr(grid, "fingerprint_now", lambda name: "f1")
    monkeypatch.setattr(equivalence, "cpu_model", lambda: "CPU B")  # another CPU: not known either
    assert equivalence.known_difference("ppo") is None
    versions["ppo"].pop("differs_on")
    assert equivalence.known_difference("ppo") is None


def test_a_run_made_on_a_cpu_where_its_code_is_known_to_differ_is_stale_there_only(monkeypatch):
    """A run is current only where its code and the current code compute the same numbers on the CPU model
    that made it: both listed, and both or neither among the fingerprints differs_on names for that CPU."""
    versions = {"ppo": {"reference": "r", "fingerprints": {"old": "", "batched": "", "now": ""}, "differs_on": {
        "CPU A": {"fingerprints": ["batched"], "why": "kernels round differently"}}}}
    monkeypatch.setattr(grid, "code_versions", lambda: versions)
    monkeypatch.setattr(grid, "fingerprint_now", lambda name: "now")
    assert grid.code_reason("ppo", "batched", "CPU A").startswith("made on an CPU A by code batched, which computes other")
    assert grid.code_reason("ppo", "batched", "CPU B") is None and grid.code_reason("ppo", "old", "CPU A") is None
    monkeypatch.setattr(grid, "fingerprint_now", lambda name: "batched")  # the differing code is current: then
    assert grid.code_reason("ppo", "batched", "CPU A") is None  # its own runs are current there, the others not
    assert grid.code_reason("ppo", "old", "CPU A") is not None and grid.code_reason("ppo", "old", "CPU B") is None


def test_the_command_names_a_known_difference_and_records_nothing(monkeypatch, capsys):
    ppo_case = next(c for c, (algo, _) in equivalence.CASES.items() if algo == "ppo")
    monkeypatch.setattr(equivalence, "check", lambda: {ppo_case: (False, "progress.csv differs from row 2"),
                                                       "gradient_noise": (True, "identical")})
    monkeypatch.setattr(equivalence, "known_difference", lambda name: "kernels round differently" if name == "ppo" else None)
    monkeypatch.setattr(equivalence, "record", lambda results: pytest.fail("recorded a difference"))
    with pytest.raises(SystemExit, match="some numbers changed; nothing recorded"):
        equivalence.main(["--record"])
    out = capsys.readouterr().out
    assert f"ppo: differs on {equivalence.cpu_model()}, as experiments/code_versions.yaml records" in out
    assert out.rstrip().endswith("kernels round differently")


def test_every_recorded_difference_names_a_listed_fingerprint_and_its_cause():
    for name, entry in grid.code_versions().items():
        for cpu, known in entry.get("differs_on", {}).items():
            assert known["why"].strip() and set(known["fingerprints"]) <= set(entry["fingerprints"]), (name, cpu)


def test_a_gradient_noise_measurement_is_the_reference_commits(tmp_path):
    identical, why = equivalence.run_gradient_noise(tmp_path)
    assert identical, why


def test_the_current_code_is_recorded_as_computing_those_numbers():
    """Fails after any edit to an algorithm file, run_contract.py or gradient_noise.py until
    `python -m experiments.equivalence --record` has shown and recorded that it changes no number."""
    for name in grid.code_versions():
        assert grid.code_reason(name, grid.fingerprint_now(name)) is None, grid.code_reason(name, grid.fingerprint_now(name))


def test_the_cases_cover_every_path():
    algos = {algo for algo, _ in equivalence.CASES.values()}
    ppo = [kw for algo, kw in equivalence.CASES.values() if algo == "ppo"]
    for regime in ("ppo2", "ppo1"):
        objectives = {kw.get("objective", "clip") for kw in ppo if kw.get("regime", "ppo2") == regime}
        assert objectives == {"clip", "kl_adaptive", "kl_fixed", "none"}, regime
    assert any("target_kl" in kw for kw in ppo) and any(kw.get("bootstrap_truncation") is False for kw in ppo)
    assert any(kw.get("regime") == "ppo1" and kw.get("bootstrap_truncation") for kw in ppo)  # ppo1's flag switched on
    assert {kw["weight"] for algo, kw in equivalence.CASES.values() if algo == "vpg"} == \
        {"total_return", "reward_to_go", "value_baseline", "gae"}
    envs = {kw["env_id"] for _, kw in equivalence.CASES.values()}
    assert algos == {"ppo", "vpg", "trpo"} and "equivalence/CartPole-tl30-v1" in envs  # discrete actions
    assert any("tl" in env for env in envs)  # short time limits: truncations, as well as terminations


def test_a_run_by_unrecorded_code_is_stale_and_a_renamed_argument_is_read_as_today(tmp_path):
    config = grid.load()
    run = grid.Run("vpg_gae", "CartPole-v1", 1)
    made_then = next(iter(grid.code_versions()["vpg"]["fingerprints"]))  # vpg.py at the reference commit
    args = dict(grid.expected_args(config, "quick", run), out="x")
    del args["init"]
    then = {"args": {**args, "ortho_init": True, "scale_rewards": False, "reward_clip": 10.0},
            "script_sha256": made_then}  # as run.json was written before run_contract.py
    assert grid.stale_reason(config, "quick", run, then) is None
    assert grid.stale_reason(config, "quick", run, {**then, "args": {**then["args"], "ortho_init": False}}) == \
        "argument init: the run has no such argument, the config and code give 'orthogonal'"
    other = grid.stale_reason(config, "quick", run, {**then, "script_sha256": "f" * 64})
    assert other.startswith("made by other code (fingerprint ffffffffffff)")
    now = {"args": dict(grid.expected_args(config, "quick", run), out="x"), "code_sha256": grid.fingerprint_now("vpg"),
           "script_sha256": grid.script_sha256("vpg")}
    assert grid.stale_reason(config, "quick", run, json.loads(json.dumps(now))) is None


def test_a_fingerprint_recorded_while_a_workflow_runs_is_seen_by_it(tmp_path, monkeypatch):
    """grid.code_versions() is read again when the file changes: a Snakemake process that started before
    `equivalence --record` must not take the newly recorded code's runs, or the old runs, for stale (it did:
    2026-12-02, two paper jobs retrained committed seeds after a docstring edit was recorded)."""
    path = tmp_path / "code_versions.yaml"
    path.write_text((grid.ROOT / "experiments" / "code_versions.yaml").read_text())
    monkeypatch.setattr(grid, "CODE_VERSIONS", path)
    before = grid.code_versions()
    assert "f" * 64 not in before["ppo"]["fingerprints"]
    path.write_text(path.read_text().replace("  fingerprints:\n", f"  fingerprints:\n    {'f' * 64}: a test\n", 1))
    assert "f" * 64 in grid.code_versions()[next(iter(before))]["fingerprints"]
