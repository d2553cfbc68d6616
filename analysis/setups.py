"""How each published setup we stand beside ours differs from ours, setting by setting.

Their side: analysis/published/setups.csv, one row per setting with the source line it comes from.
Our side is read from what ran, never typed in: a setting that is an argument of our algorithm file
comes from the runs' run.json; the network and the initial log σ from the algorithm file's own
Gaussian policy, built as the runs built it.

noise() then measures one of those differences in the runs: how much of its initial σ each policy keeps.
"""
import dataclasses
import math
import pathlib

import gymnasium as gym
import pandas as pd
import torch

import yaml

from analysis import stats
from experiments import grid

PUBLISHED = pathlib.Path(__file__).resolve().parent / "published"  # the published numbers and setups, as CSV

# every algorithm file hands the env the sampled action clipped to the action space's bounds
# (the line "the env gets the clipped action" in ppo.py, trpo.py and vpg.py; tests/test_setups.py checks it)
OURS_ACTIONS = "clipped to the action bounds"
# the settings of setups.csv that are not arguments of our algorithm files
NOT_ARGS = ("hidden", "log_std_init", "actions_to_env", "env")
# settings an algorithm file has no flag for because it never does them: reward scaling (vpg, trpo), an entropy bonus
ABSENT = {"scale_rewards": False, "ent_coef": 0.0}


def load():
    return pd.read_csv(PUBLISHED / "setups.csv", dtype=str, keep_default_na=False)


def matches_of(algo, args, matches=None):
    """The published results (source, algo) that a run of our algorithm file `algo` with the resolved arguments
    `args` (run.json's, or grid.expected_args) stands beside: the rows of analysis/published/matches.csv whose
    `ours` column (e.g. 'algo=ppo regime=ppo2 objective=clip clip_eps=0.2 target_kl=null', values in YAML) it
    satisfies. Read from the arguments, so no variant name carries the match."""
    matches = pd.read_csv(PUBLISHED / "matches.csv") if matches is None else matches
    return [(row.source, row.algo) for row in matches.itertuples() if satisfies(algo, args, row.ours)]


def satisfies(algo, args, spec):
    """Whether a run of algorithm file `algo` with resolved arguments `args` is what `spec` describes: 'algo=<name>'
    then 'name=value' pairs, each value in YAML ('null' for None), all of which the arguments must equal."""
    wanted = dict(item.split("=", 1) for item in spec.split())
    return wanted.pop("algo") == algo and all(k in args and args[k] == yaml.safe_load(v) for k, v in wanted.items())


def variant_matches(config, scale, variants):
    """{variant: its published matches (matches_of)} for variants of a scale, from the arguments its config
    resolves to (grid.expected_args at the variant's first env: no matched argument depends on the env)."""
    matches = pd.read_csv(PUBLISHED / "matches.csv")
    env = grid.env_order(config, scale)[0]
    found = {}
    for variant in variants:
        args = grid.expected_args(config, scale, grid.Run(variant, env, 1))
        found[variant] = matches_of(config["variants"][variant]["algo"], args, matches)
    return found


def policy_shape(algo, args):
    """(hidden layers with their nonlinearity, e.g. '64×64 tanh', initial log σ) of the algorithm file's
    Gaussian policy, built with the run's --init."""
    policy = grid.algorithm(algo).GaussianPolicy(3, 2, args["init"])
    linears = [m for m in policy.mean if isinstance(m, torch.nn.Linear)]
    nonlinear = sorted({type(m).__name__.lower() for m in policy.mean if not isinstance(m, torch.nn.Linear)})
    hidden = "×".join(str(m.out_features) for m in linears[:-1])
    return f"{hidden} {'/'.join(nonlinear)}", float(policy.log_std.detach()[0])


PER_RUN = ("seed", "out", "env_id", "total_timesteps")  # arguments that differ between runs of one setup


def ours(runs, variant):
    """Our value of every setting, from the variant's runs: run.json's arguments, the policy's shape, the action
    handling and the env versions. An argument a variant sets per task (`env_args`: VPG's pi_lr on classic control)
    reads 'value on envs; value on envs' where these runs differ in it."""
    rows = runs[runs.variant == variant]
    args = dict(rows.args.iloc[0])
    for name in args:
        per_env = {}
        for env, run_args in zip(rows.env, rows.args):
            per_env.setdefault(shown(run_args.get(name)), set()).add(env)
        if len(per_env) > 1 and name not in PER_RUN:
            args[name] = "; ".join(f"{value} on {', '.join(sorted(envs))}" for value, envs in per_env.items())
    hidden, log_std = policy_shape(rows.algo.iloc[0], rows.args.iloc[0])
    envs = ", ".join(sorted({"-" + e.rsplit("-", 1)[1] for e in rows.env}))
    return {**ABSENT, **args, "hidden": hidden, "log_std_init": log_std, "actions_to_env": OURS_ACTIONS,
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
        if r.setting not in arguments | set(NOT_ARGS) | ABSENT.keys():
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
    """Per (our variant, published source) compared in the report (a published result on a task the variant has
    runs on): a table of the settings that differ, with the effect we expect where setups.csv gives one, then a
    line naming the settings that are the same."""
    published, returns = load(), pd.read_csv(PUBLISHED / "final_returns.csv")
    blocks = []
    for variant in variants:
        if variant not in set(runs.variant):
            continue
        sample = runs[runs.variant == variant].iloc[0]
        for source, algo in matches_of(sample.algo, sample.args):
            # our runs on the tasks it published (CleanRL's ppo.py: classic control only), so a setting we set
            # per task is compared where the two meet
            compared = runs[(runs.variant == variant) & runs.env.map(lambda env: published_on(source, algo, {env},
                                                                                               returns))]
            if compared.empty:
                continue
            differ, agree = differences(compared, variant, source, algo, published)
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


def published_on(source, algo, env_ids, returns=None):
    """Whether analysis/published/final_returns.csv (or `returns`, read from it) holds a result of `source` `algo`
    on a task of `env_ids` (any version)."""
    returns = pd.read_csv(PUBLISHED / "final_returns.csv") if returns is None else returns
    tasks = [env.rsplit("-", 1)[0] for env in env_ids]
    return bool(((returns.source == source) & (returns.algo == algo) & returns.env.isin(tasks)).any())


def env_changes(env_ids):
    """What -v5 changed against the published environment versions (analysis/published/env_changes.csv, read
    from gymnasium's version history) in the dynamics, reward, observation or simulator of `env_ids`' tasks."""
    changes = pd.read_csv(PUBLISHED / "env_changes.csv", dtype=str, keep_default_na=False)
    tasks = [e.rsplit("-", 1)[0] for e in env_ids]
    rows = changes[changes.env.isin(["all", *tasks])].assign(order=lambda c: c.env.map(
        {t: i for i, t in enumerate(["all", *sorted(tasks)])})).sort_values("order", kind="stable")
    if rows.empty:
        return ""
    table = pd.DataFrame({"env": rows.env, "against": rows.differs_from, "kind": rows.kind,
                          "what -v5 changed": rows.change + rows.tag.map(lambda t: "" if t == "P" else f" [{t}]"),
                          "effect on returns": rows.effect})
    return ("From gymnasium's version history: each change -v5 made to the dynamics, reward or observation "
            "against the versions the published results used (their env row above).\n\n"
            + table.to_markdown(index=False))


def action_dims(env_ids):
    """Each env's number of action dimensions; None for a discrete action space (no Gaussian σ)."""
    dims = {}
    for env_id in env_ids:
        env = gym.make(env_id)
        dims[env_id] = env.action_space.shape[0] if isinstance(env.action_space, gym.spaces.Box) else None
        env.close()
    return dims


def published_start_sigma(published, source, algo):
    """A published setup's initial σ, exp(log_std_init), or None where setups.csv gives no number for it."""
    row = published[(published.source == source) & (published.algo == algo) & (published.setting == "log_std_init")]
    try:
        return math.exp(float(row.theirs.iloc[0]))
    except (IndexError, ValueError):
        return None


def noise(runs, progress, planned, kept=0.9):
    """σ of each variant's Gaussian policy at the start and at its last update (mean over seeds, from the logged
    entropy: stats.gaussian_sigma), per env of the planned runs (grid.Run tuples), beside the published setups'
    initial σ; then a line for each variant that kept more than `kept` of its initial σ on every env, and the
    range the others end in."""
    variants = list(dict.fromkeys(r.variant for r in planned))
    envs = sorted({r.env for r in planned})  # the order of the score table
    seeds = len({r.seed for r in planned})
    dims = action_dims(envs)
    last = progress.sort_values("iteration").groupby(["variant", "env", "seed"]).tail(1)
    last = stats.planned_rows(last, planned)
    last = last[last.env.map(dims).notna() & last.entropy.notna()]
    if last.empty:
        return ""
    last = last.assign(sigma=stats.gaussian_sigma(last.entropy, last.env.map(dims).astype(float)))
    cells = last.groupby(["variant", "env"]).sigma.agg(["mean", "size"])
    published = load()
    rows, lines, others = [], [], []
    for variant in [v for v in variants if v in set(last.variant)]:
        ours_at = cells.loc[variant]
        sample = runs[runs.variant == variant]
        start = math.exp(policy_shape(sample.algo.iloc[0], sample.args.iloc[0])[1])
        theirs = [(f"{source} {algo}", sigma) for source, algo in matches_of(sample.algo.iloc[0], sample.args.iloc[0])
                  if (sigma := published_start_sigma(published, source, algo)) is not None]
        rows.append({"variant": variant, "σ at the start": f"{start:.2f}",
                     **{env: f"{c['mean']:.2f}" + (f" ({c['size']:.0f} of {seeds} seeds)" if c["size"] < seeds else "")
                        for env, c in ours_at.iterrows()},
                     "published setups' σ at the start": "; ".join(f"{label} {sigma:.2f}" for label, sigma in theirs)
                     or "not compared"})
        if (ours_at["mean"] / start > kept).all():
            steps = last[last.variant == variant].global_step.max()
            # above the start as printed: the policy widened (VPG without V on Pendulum)
            grew = [env for env, sigma in ours_at["mean"].items() if round(sigma, 2) > round(start, 2)]
            lines.append(f"- {variant} ends at σ {ours_at['mean'].min():.2f}–{ours_at['mean'].max():.2f} after "
                         f"{steps:,} steps, having started at {start:.2f}: its policy keeps almost all of its "
                         "initial exploration noise" + (f", and on {', '.join(grew)} ends with more" if grew else "")
                         + "".join(f"; {label} starts at {sigma:.2f}" for label, sigma in theirs) + ".")
        else:
            others.append(ours_at["mean"])
    if others and lines:
        ends = pd.concat(others)
        lines.append(f"- The other variants end at σ {ends.min():.2f}–{ends.max():.2f}.")
    table = pd.DataFrame(rows).set_index("variant").reindex(
        columns=["σ at the start", *[e for e in envs if dims[e]], "published setups' σ at the start"]).fillna("missing run")
    return "\n".join([table.to_markdown(disable_numparse=True), "", *lines,
                      "- σ is the geometric mean over the action dimensions, read from the entropy logged at the "
                      "last update: H = Σᵢ (½ ln 2πe + ln σᵢ) for a Gaussian whose σ does not depend on the state."])
