"""vpg.py: the four policy-gradient weights against hand-computed values."""
import numpy as np
import pytest

from conftest import assert_usage_error

# As in test_ppo.py: episode A terminates at t=1, B is truncated at t=3 (V(final obs) = 7),
# C is cut by the batch end at t=5 (V(next obs) = 8); γ = 0.5.
R = np.array([[1, 2, 3, 4, 5, 6]], float).T
V = np.array([[10, 20, 30, 40, 50, 60]], float).T
V_NEXT = np.array([[20, 555, 40, 7, 60, 8]], float).T
TERM = np.array([[0, 1, 0, 0, 0, 0]], float).T
END = np.array([[0, 1, 0, 1, 0, 0]], float).T


def weights(vpg, weight, v=V, v_next=V_NEXT, lam=0.5):
    return vpg.pg_weights(weight, R, v, v_next, TERM, END, gamma=0.5, lam=lam)[:, 0]


def test_total_return(vpg):
    # R(τ) per episode segment: A: 1 + .5·2; B: 3 + .5·4; C: 5 + .5·6 — no bootstrap without a critic
    np.testing.assert_allclose(weights(vpg, "total_return"), [2, 2, 5, 5, 8, 8])


def test_reward_to_go(vpg):
    np.testing.assert_allclose(weights(vpg, "reward_to_go"), [2, 2, 5, 4, 8, 6])


def test_value_baseline(vpg):
    # bootstrapped rewards-to-go minus V: G3 = 4 + .5·7, G2 = 3 + .5·G3, G5 = 6 + .5·8, G4 = 5 + .5·G5
    np.testing.assert_allclose(weights(vpg, "value_baseline"), [2 - 10, 2 - 20, 6.75 - 30, 7.5 - 40, 10 - 50, 10 - 60])


def test_gae(vpg):
    # δ = [1, −18, −7, −32.5, −15, −50], γλ = .25, cut at the episode ends (t = 1, 3)
    np.testing.assert_allclose(weights(vpg, "gae"), [1 - 0.25 * 18, -18, -7 - 0.25 * 32.5, -32.5, -15 - 0.25 * 50, -50])


def test_zero_value_function_makes_baseline_equal_reward_to_go(vpg):
    zeros = np.zeros_like(V)
    np.testing.assert_allclose(weights(vpg, "value_baseline", zeros, zeros), weights(vpg, "reward_to_go"))


def test_total_return_carries_over_several_columns(vpg):
    rng = np.random.default_rng(0)
    r = rng.normal(size=(20, 3))
    end = (rng.random((20, 3)) < 0.2).astype(float)
    phi = vpg.pg_weights("total_return", r, None, None, end, end, 0.9, 0.0)
    to_go = vpg.pg_weights("reward_to_go", r, None, None, end, end, 0.9, 0.0)
    for n in range(3):
        first = 0
        for t in range(20):  # every step carries the to-go value of its segment's first step
            assert phi[t, n] == pytest.approx(to_go[first, n])
            if end[t, n]:
                first = t + 1


@pytest.mark.parametrize("weight,trained", [("reward_to_go", False), ("total_return", False), ("gae", True)])
def test_value_function_is_trained_only_when_used(vpg, tmp_path, weight, trained):
    # the scripted env repeats observations 0, 1, 2, so V(0) can be compared across iterations
    args = vpg.Args(env_id="pgrepro/Truncating-v0", weight=weight, batch_size=6, total_timesteps=12,
                    out=str(tmp_path / "run"))
    values = []
    vpg.train(args, quiet=True, on_batch=lambda b: values.append(b["values"][0, 0]))
    assert (values[0] != values[1]) == trained


@pytest.mark.parametrize("argv,flag", [
    (["--weight", "advantage"], "--weight"), (["--pi-lr", "0"], "--pi-lr"), (["--vf-lr", "-1"], "--vf-lr"),
    (["--batch-size", "0"], "--batch-size"), (["--batch-size", "1001", "--num-envs", "2"], "--batch-size"),
    (["--train-v-iters", "0"], "--train-v-iters"),
])
def test_bad_input(vpg, tmp_path, capsys, argv, flag):
    assert_usage_error(vpg, tmp_path, capsys, argv, flag)
