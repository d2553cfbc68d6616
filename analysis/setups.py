"""How each published setup we stand beside ours differs from ours, setting by setting.

Their side: analysis/published/setups.csv, one row per setting with the source line it comes from.
Our side is read from what ran, never typed in: a setting that is an argument of our algorithm file
comes from the runs' run.json; the network and the initial log σ from the algorithm file's own
Gaussian policy, built as the runs built it.
"""
import dataclasses
import math

import pandas as pd
import torch

from analysis.experiments import PUBLISHED, PUBLISHED_MATCH
from experiments import grid

# every algorithm file hands the env the sampled action clipped to the action space's bounds
# (the line "the env gets the clipped action" in ppo.py, trpo.py and vpg.py; tests/test_setups.py checks it)
OURS_ACTIONS = "clipped to the action bounds"
# the settings of setups.csv that are not arguments of our algorithm files
NOT_ARGS = ("hidden", "log_std_init", "actions_to_env", "env")


def load():
    return pd.read_csv(PUBLISHED / "setups.csv", dtype=str, keep_default_na=False)


def policy_shape(algo, args):
    """(hidden layers with their nonlinearity, e.g. '64×64 tanh', initial log σ) of the algorithm file's
    Gaussian policy, built with the run's init argument (ppo.py: --init, vpg.py and trpo.py: --ortho-init)."""
    init = args["init"] if "init" in args else args["ortho_init"]
    policy = grid.algorithm(algo).GaussianPolicy(3, 2, init)
    linears = [m for m in policy.mean if isinstance(m, torch.nn.Linear)]
    nonlinear = sorted({type(m).__name__.lower() for m in policy.mean if not isinstance(m, torch.nn.Linear)})
    hidden = "×".join(str(m.out_features) for m in linears[:-1])
    return f"{hidden} {'/'.join(nonlinear)}", float(policy.log_std.detach()[0])


def ours(runs, variant):
    """Our value of every setting, from the variant's runs: run.json's arguments (the planned runs of a variant
    share them bar env, seed and out), the policy's shape, the action handling and the env versions."""
    rows = runs[runs.variant == variant]
    args = rows.args.iloc[0]
    hidden, log_std = policy_shape(rows.algo.iloc[0], args)
    envs = ", ".join(sorted({"-" + e.rsplit("-", 1)[1] for e in rows.env}))
    return {**args, "hidden": hidden, "log_std_init": log_std, "actions_to_env": OURS_ACTIONS,
            "env": f"{envs} (gymnasium {rows.v_gymnasium.iloc[0]}, MuJoCo {rows.v_mujoco.iloc[0]})"}


def same(theirs, our):
    """Whether the published text names our value: read as our value's type where it parses as one."""
    if isinstance(our, bool):
        return theirs in ("True", "False") and (theirs == "True") == our
    if isinstance(our, (int, float)):
        try:
            return math.isclose(float(theirs), float(our), rel_tol=1e-9)
        except ValueError:
            return False
    return theirs == str(our)


def shown(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def differences(runs, variant, source, algo, published=None):
    """(differing settings as (setting, theirs, ours, effect, tag), the settings that agree as (setting, value))."""
    published = load() if published is None else published
    our = ours(runs, variant)
    arguments = {f.name for f in dataclasses.fields(grid.algorithm(runs[runs.variant == variant].algo.iloc[0]).Args)}
    differ, agree = [], []
    for r in published[(published.source == source) & (published.algo == algo)].itertuples():
        if r.setting not in arguments | set(NOT_ARGS):
            raise KeyError(f"analysis/published/setups.csv: {source} {algo}: {r.setting!r} is neither an argument "
                           f"of {variant}'s algorithm file nor one of {', '.join(NOT_ARGS)}")
        if r.setting not in our:  # a run made before the argument existed (a stale run)
            differ.append((r.setting, r.theirs, "not in these runs' run.json", r.effect, r.tag))
        elif same(r.theirs, our[r.setting]):
            agree.append((r.setting, shown(our[r.setting])))
        else:
            differ.append((r.setting, r.theirs, shown(our[r.setting]), r.effect, r.tag))
    return differ, agree


def reading(runs, variants):
    """Per (our variant, published source) compared in the report: a table of the settings that differ, with
    the effect we expect where setups.csv gives one, then a line naming the settings that are the same."""
    published = load()
    blocks = []
    for variant in variants:
        if variant not in set(runs.variant):
            continue
        for source, algo in PUBLISHED_MATCH.get(variant, []):
            differ, agree = differences(runs, variant, source, algo, published)
            table = pd.DataFrame([{"setting": name, "theirs": theirs + ("" if tag == "P" else f" [{tag}]"),
                                   "ours": our, "what we expect it to do": effect}
                                  for name, theirs, our, effect, tag in differ])
            blocks.append(f"*{variant} against {source} {algo}.* The same: "
                          f"{', '.join(f'{name} {value}' for name, value in agree)}. Different:\n\n"
                          + table.to_markdown(index=False))
    if blocks:
        blocks.append("Their settings come from `analysis/published/setups.csv`, each with the source line it is read "
                      "from; ours from the runs' `run.json` and the algorithm files. An expected effect is our "
                      "reading, not a measurement.")
    return "\n\n".join(blocks)
