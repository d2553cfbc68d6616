"""Load runs into tidy pandas frames, refusing anything that breaks the run contract (docs/DESIGN.md §3).

  python -m analysis.load results/quick        # the runs found, then the planned ones missing or stale
  python -m analysis.load results/quick/runs/ppo_clip_0.2/Hopper-v5/seed1   # one run

A run directory results/<scale>/runs/<variant>/<env>/seed<k>/ must hold run.json with every
key of the contract and a successful exit status, and progress and episodes CSVs (plain; .csv.gz
as --compress writes them; or .csv.xz, as the workflow keeps them: experiments/repack.py) that are whole: every row complete, iterations 1..n, the
last global_step equal to the steps run.json says were trained, and as many episodes as the
progress rows count. Anything else raises RunContractError: one line naming the file and what
is wrong. check_grid() then compares the runs with those the config plans for a scale: missing
runs and stale runs (other arguments, or code not recorded as computing what the current code
computes: experiments/code_versions.yaml) are errors unless the caller accepts them, and then they are reported.
"""
import argparse
import collections
import csv
import gzip
import io
import json
import lzma
import pathlib
import re
import sys
import zlib

import numpy as np

import pandas as pd
from run_contract import EPISODE_COLUMNS, PROGRESS_COLUMNS  # the run contract's columns, without torch

from experiments import grid
VERSION_KEYS = ["torch", "numpy", "gymnasium", "mujoco"]
META_KEYS = ["algo", "args", "seed", "versions", "git_commit", "git_dirty", "script_sha256", "threads", "cpu",
             "start_time", "end_time", "walltime_s", "exit_status"]
NEVER_NAN = ["iteration", "global_step", "walltime_s", "ep_count", "update_steps"]  # every algorithm fills them
# The only columns allowed to differ between two runs of the same code, versions and seed (docs/DESIGN.md §4)


class RunContractError(ValueError):
    """A run directory that breaks the run contract, or a set of runs that is not the planned grid."""


RUN_CSV_SUFFIXES = (".csv", ".csv.xz", ".csv.gz")  # as written; as the workflow keeps them; as --compress writes them


def run_file(run_dir, name):
    """<name>.csv, .csv.xz or .csv.gz, the first that exists (the first if none does)."""
    paths = [pathlib.Path(run_dir) / f"{name}{suffix}" for suffix in RUN_CSV_SUFFIXES]
    return next((p for p in paths if p.exists()), paths[0])


def open_csv(path):
    """A run CSV opened for csv.reader, whether plain, gzip or xz (by its suffix)."""
    opener = {".gz": gzip.open, ".xz": lzma.open}.get(pathlib.Path(path).suffix, open)
    return opener(path, "rt", newline="")


def read_text(path):
    """The CSV's text, decompressed (its suffix says how); a file that does not decompress is an error."""
    try:
        with open_csv(path) as f:
            return f.read()
    except (OSError, EOFError, UnicodeDecodeError, zlib.error, lzma.LZMAError) as e:  # a stream cut short: EOFError
        raise RunContractError(f"{path}: unreadable ({e})") from None


def read_rows(path, text=None):
    """The CSV's rows (of `text`, the file's text if read already) as lists of strings; a row with the wrong
    number of fields is an error."""
    rows = list(csv.reader(io.StringIO(read_text(path) if text is None else text, newline="")))
    if not rows:
        raise RunContractError(f"{path}: empty file, not even a header")
    bad = next((i for i, row in enumerate(rows) if len(row) != len(rows[0])), None)
    if bad is not None:
        raise RunContractError(f"{path}: line {bad + 1} has {len(rows[bad])} fields, the header {len(rows[0])} "
                               "(a file cut short?)")
    return rows


def steps_trained(meta):
    """Environment steps the run trained for: run.json's steps_trained, or (runs made before that key
    existed) --total-timesteps rounded down to whole batches, as every algorithm file does."""
    if "steps_trained" in meta:
        return meta["steps_trained"]
    a = meta["args"]
    batch = a["num_steps"] * a["num_envs"] if meta["algo"] == "ppo" else a["batch_size"]
    return a["total_timesteps"] // batch * batch


def load_run(run_dir, key=None):
    """(meta dict, progress frame, episodes frame) of one run directory, checked whole; with `key`
    (variant, env, seed from its place under runs/), also against where it lies."""
    run_dir = pathlib.Path(run_dir)
    meta_path = run_dir / "run.json"
    if not meta_path.is_file():
        raise RunContractError(f"{meta_path}: missing (the run did not finish)")
    try:
        meta = json.loads(meta_path.read_text())
    except ValueError as e:
        raise RunContractError(f"{meta_path}: not JSON ({e})") from None
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise RunContractError(f"{meta_path}: missing key(s) {', '.join(missing)}")
    if meta["exit_status"] != "success":
        raise RunContractError(f"{meta_path}: exit_status is {meta['exit_status']!r}")
    frames = {}
    for name, columns in (("progress", PROGRESS_COLUMNS), ("episodes", EPISODE_COLUMNS)):
        path = run_file(run_dir, name)
        if not path.exists():
            raise RunContractError(f"{run_dir}: missing {name}.csv (or {name}.csv.xz, {name}.csv.gz)")
        text = read_text(path)  # decompressed once, read twice: row shapes first, then pandas' parse
        rows = read_rows(path, text)
        if rows[0] != columns:
            raise RunContractError(f"{path}: columns differ from the run contract")
        frames[name] = numeric(pd.read_csv(io.StringIO(text)), path, text=("algo", "env_id"))
    progress, episodes = frames["progress"], frames["episodes"]
    path = run_file(run_dir, "progress")
    if progress.empty:
        raise RunContractError(f"{path}: no rows")
    check_identity(run_dir, meta, progress, path, key)
    gaps = progress[NEVER_NAN].isna().any(axis=1)
    if gaps.any():
        raise RunContractError(f"{path}: line {gaps.idxmax() + 2} has empty or NaN required fields")
    if list(progress.iteration) != list(range(1, len(progress) + 1)):
        raise RunContractError(f"{path}: iterations are not 1..{len(progress)}")
    expected = steps_trained(meta)
    if progress.global_step.iloc[-1] != expected:
        raise RunContractError(f"{path}: ends at global_step {progress.global_step.iloc[-1]}, run.json says "
                               f"{expected} steps were trained (a file cut short?)")
    counted = int(progress.ep_count.sum())
    if counted != len(episodes):
        raise RunContractError(f"{run_file(run_dir, 'episodes')}: {len(episodes)} episodes, progress counts {counted}")
    check_returns(episodes, progress, run_file(run_dir, "episodes"))
    return meta, progress, episodes


def numeric(frame, path, text=()):
    """The frame as pandas read it, once every column but the `text` ones holds numbers: a cell that is
    not a number (pandas then reads its column as text) is an error naming the file, line and column."""
    for column in frame.columns:
        if column in text or frame.empty or pd.api.types.is_numeric_dtype(frame[column]):
            continue
        bad = pd.to_numeric(frame[column], errors="coerce").isna() & frame[column].notna()
        line = int(bad.to_numpy().argmax())
        raise RunContractError(f"{path}: line {line + 2}, column {column}: {frame[column].iloc[line]!r} is not a number")
    return frame


def check_identity(run_dir, meta, progress, path, key=None):
    """The run's CSVs say what its run.json says, and both what its folder says: algorithm, env and seed
    (a file or a run.json copied from another run is refused)."""
    said = {"algo": meta["algo"], "env_id": meta["args"].get("env_id"), "seed": meta["seed"]}
    if key is not None and (meta["seed"] != key["seed"] or meta["args"].get("env_id") != key["env"]):
        raise RunContractError(f"{run_dir / 'run.json'}: seed {meta['seed']}, env {meta['args'].get('env_id')!r}, "
                               f"but the folder is {key['env']}/seed{key['seed']}")
    for column, value in said.items():
        found = set(progress[column])
        if found != {value}:
            raise RunContractError(f"{path}: column {column} holds {sorted(map(str, found))}, the run is {value!r} "
                                   "(copied from another run?)")


MAX_RETURN = 1e12  # no task's episode comes near this; a larger value is a corrupted file, not a score


def check_returns(episodes, progress, path):
    """Every episode's return is finite and plausible, and the episodes are those progress.csv logged:
    each iteration's mean return is the mean of the episodes that ended in it."""
    returns = episodes.ep_return.to_numpy()
    bad = ~np.isfinite(returns) | (np.abs(returns) > MAX_RETURN)
    if bad.any():
        raise RunContractError(f"{path}: line {int(np.argmax(bad)) + 2}, ep_return {float(returns[bad][0])!r} is not a "
                               f"finite return (|return| <= {MAX_RETURN:g})")
    iteration = np.searchsorted(progress.global_step.to_numpy(), episodes.global_step.to_numpy())  # ends in it
    grouped = pd.Series(returns).groupby(iteration)
    means, scale = grouped.mean(), grouped.apply(lambda r: r.abs().max())
    logged = progress.ep_return_mean.iloc[means.index].to_numpy()
    # both sides were written to 8 significant digits: they agree to about 1e-7 of the largest return
    off = np.abs(means.to_numpy() - logged) > 1e-6 * scale.to_numpy() + 1e-9
    if off.any():
        raise RunContractError(f"{path}: the episodes ending in iteration {means.index[off][0] + 1} have mean return "
                               f"{means.to_numpy()[off][0]:.8g}, progress.csv logged {logged[off][0]:.8g}")


RUN_DIR = re.compile(r"seed(\d{1,9})")


def run_key(run_dir):
    run_dir = pathlib.Path(run_dir)
    seed = RUN_DIR.fullmatch(run_dir.name)
    if seed is None:
        raise RunContractError(f"{run_dir}: not a run folder name (seed<k>); move a copy out of runs/")
    return dict(variant=run_dir.parent.parent.name, env=run_dir.parent.name, seed=int(seed[1]))


def run_dirs(scale_dir):
    """Every run directory with a run.json under <scale_dir>/runs (a folder named other than seed<k>
    there is refused: a copy such as 'seed1 (copy)' would otherwise be mistaken for a run or dropped)."""
    found = [p.parent for p in sorted(pathlib.Path(scale_dir, "runs").glob("*/*/*/run.json"))]
    for run_dir in found:
        run_key(run_dir)
    return found


def load_runs(scale_dir, allow_mixed_versions=False, only=None):
    """The runs under <scale_dir>/runs (or only the `only` (variant, env, seed) keys among them) as three
    tidy frames keyed by (variant, env, seed): runs (one row per run: algo, steps, walltime, versions,
    commit and the run's arguments, as the run.json dict `args` and one column `arg_<name>` each), progress
    and episodes. Runs made with different library versions
    are refused unless allow_mixed_versions: returns from different MuJoCo versions are not comparable."""
    rows, progress, episodes = [], [], []
    for run_dir in run_dirs(scale_dir):
        key = run_key(run_dir)
        if only is not None and (key["variant"], key["env"], key["seed"]) not in only:
            continue
        meta, prog, eps = load_run(run_dir, key)
        args = grid.current_args(meta["algo"], meta["args"])  # under today's argument names (code_versions.yaml)
        rows.append({**key, "algo": meta["algo"], "steps": int(prog.global_step.iloc[-1]),
                     "walltime_s": meta["walltime_s"], "peak_rss_mb": meta.get("peak_rss_mb"),
                     "git_commit": meta["git_commit"], "git_dirty": meta.get("git_dirty"),
                     "script_sha256": meta["script_sha256"], "code_sha256": grid.run_fingerprint(meta), "cpu": meta["cpu"],
                     **{f"v_{k}": meta["versions"][k] for k in VERSION_KEYS},
                     "args": args, **{f"arg_{k}": v for k, v in args.items()}})
        progress.append(prog.assign(**key))
        episodes.append(eps.assign(**key))
    if not rows:
        raise RunContractError(f"{scale_dir}: no runs found under {pathlib.Path(scale_dir, 'runs')}")
    runs = pd.DataFrame(rows)
    versions = runs[[f"v_{k}" for k in VERSION_KEYS]].drop_duplicates()
    if len(versions) > 1 and not allow_mixed_versions:
        raise RunContractError(f"{scale_dir}: runs were made with {len(versions)} different sets of library versions: "
                               + "; ".join(", ".join(f"{c[2:]} {v}" for c, v in r.items()) for _, r in versions.iterrows()))
    return runs, pd.concat(progress, ignore_index=True), pd.concat(episodes, ignore_index=True)


RANDOM_COLUMNS = ["episode", "ep_return", "ep_length", "terminated"]


def load_random(scale_dir, envs=None):
    """Random-policy episode returns per env (the random experiment, the 0 of every normalised score), as a
    frame env, ep_return, ...: every env in `envs` must have its file, whole and finite."""
    folder = pathlib.Path(scale_dir, "random")
    paths = sorted(folder.glob("*.csv"))
    for env in envs or []:
        if not (folder / f"{env}.csv").exists():
            raise RunContractError(f"{folder / (env + '.csv')}: missing: {env}'s random-policy anchor (the random "
                                   "experiment makes it)")
    frames = []
    for path in paths:
        rows = read_rows(path)
        if rows[0] != RANDOM_COLUMNS:
            raise RunContractError(f"{path}: columns {rows[0]}, a random-policy anchor has {RANDOM_COLUMNS}")
        frame = numeric(pd.read_csv(path), path)
        if frame.empty:
            raise RunContractError(f"{path}: no episodes")
        check = ~np.isfinite(frame.ep_return) | (frame.ep_return.abs() > MAX_RETURN)
        if check.any():
            raise RunContractError(f"{path}: line {int(check.idxmax()) + 2}, ep_return {float(frame.ep_return[check.idxmax()])!r} "
                                   "is not a finite return")
        frames.append(frame.assign(env=path.stem))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["env"] + RANDOM_COLUMNS)


def random_score(scale_dir, envs):
    """The random policy's mean return per env (load_random), the 0 of every normalised score."""
    return load_random(scale_dir, envs).groupby("env").ep_return.mean()


def seed_list(seeds):
    """'seed 2', 'seeds 1, 3', 'seeds 4-10': runs of three or more consecutive seeds as a range."""
    seeds, parts = sorted(seeds), []
    for seed in seeds:
        if parts and seed == parts[-1][1] + 1:
            parts[-1][1] = seed
        else:
            parts.append([seed, seed])
    text = ", ".join(f"{a}-{b}" if b - a >= 2 else ", ".join(map(str, range(a, b + 1))) for a, b in parts)
    return f"seed{'s' if len(seeds) > 1 else ''} {text}"


def seeds_on_envs(missing, planned):
    """'seeds 4-10 on every env', 'every seed on Hopper-v5 and seed 2 on Ant-v5, Swimmer-v5': the missing seeds
    {env: [seed]} against the planned ones, envs that miss the same seeds named together."""
    by_seeds = {}  # the envs missing each set of seeds, in the order they come
    for env, seeds in missing.items():
        whole = len(seeds) == len(planned[env]) and len(seeds) > 1
        by_seeds.setdefault("every seed" if whole else seed_list(seeds), []).append(env)
    return " and ".join(f"{seeds} on {'every env' if len(envs) == len(planned) > 1 else ', '.join(envs)}"
                       for seeds, envs in by_seeds.items())


def by_env(pairs):
    """{env: [seed]} of (env, seed) pairs, in their order."""
    out = {}
    for env, seed in pairs:
        out.setdefault(env, []).append(seed)
    return out


class GridStatus:
    """The planned runs of some experiments of a scale, against the runs under scale_dir:
    `missing` (planned, no finished run) and `stale` ((run, reason): made with other arguments or
    code not shown to compute the current code's numbers)."""

    def __init__(self, scale_dir, config, scale, experiments, gradient_noise=False):
        self.scale_dir, self.scale = pathlib.Path(scale_dir), scale
        self.planned = sorted({r for e in experiments for r in grid.experiment_runs(config, scale, e)})
        self.missing, self.stale = [], []
        # with gradient_noise, the same for the scale's gradient-noise measurements, as (env, seed) pairs
        self.noise_planned = grid.gradient_noise_runs(config, scale) if gradient_noise else []
        self.noise_missing, self.noise_stale = [], []
        for env, seed in self.noise_planned:
            state = grid.gradient_noise_state(config, scale, self.scale_dir, env, seed)
            if state == grid.MISSING:
                self.noise_missing.append((env, seed))
            elif state:
                self.noise_stale.append(((env, seed), state))
        for run in self.planned:
            meta_path = self.scale_dir / "runs" / run.variant / run.env / f"seed{run.seed}" / "run.json"
            if not meta_path.exists():
                self.missing.append(run)
                continue
            try:
                meta = json.loads(meta_path.read_text())
            except ValueError as e:
                raise RunContractError(f"{meta_path}: not JSON ({e})") from None
            reason = grid.stale_reason(config, scale, run, meta)
            if reason:
                self.stale.append((run, reason))

    def check(self, partial=False, allow_stale=False):
        """Raise RunContractError (one line) for missing runs unless partial, for stale ones unless allow_stale."""
        if self.missing and not partial:
            r = self.missing[0]
            raise RunContractError(f"{self.scale_dir}: {len(self.missing)} of the {len(self.planned)} runs the "
                                   f"{self.scale} grid plans are missing (first: {r.variant}/{r.env}/seed{r.seed}); "
                                   "run the workflow, or pass --partial for a report that lists them")
        if self.stale and not allow_stale:
            r, why = self.stale[0]
            raise RunContractError(f"{self.scale_dir}/runs/{r.variant}/{r.env}/seed{r.seed}: stale, {why} "
                                   f"({len(self.stale)} stale runs in all); rerun them with the workflow, or pass "
                                   "--allow-stale for a report that flags them")
        if self.noise_missing and not partial:
            env, seed = self.noise_missing[0]
            raise RunContractError(f"{self.scale_dir}/gradient_noise: {len(self.noise_missing)} of the "
                                   f"{len(self.noise_planned)} planned gradient-noise measurements are missing (first: "
                                   f"{env} seed {seed}); run the workflow, or pass --partial")
        if self.noise_stale and not allow_stale:
            (env, seed), why = self.noise_stale[0]
            raise RunContractError(f"{self.scale_dir}/gradient_noise/{env}/seed{seed}.csv: stale, {why} "
                                   f"({len(self.noise_stale)} stale measurements in all); rerun them with the "
                                   "workflow, or pass --allow-stale")
        return self

    def lines(self):
        """What a partial or flagged report says about these runs, one Markdown line per problem."""
        out = []
        if self.missing:
            out.append(f"**Partial:** {len(self.missing)} of the {len(self.planned)} planned runs are missing: "
                       + "; ".join(self._missing_by_variant()) + ".")
        if self.stale:
            out.append(f"**Stale:** {len(self.stale)} of the runs were made with other arguments than the config "
                       "gives, or by code not shown to compute what the current code computes (`snakemake` reruns "
                       "them): "
                       + self._by_reason(self.stale, "runs") + ".")
        if self.noise_missing:
            out.append(f"**Partial (gradient noise):** {len(self.noise_missing)} of the {len(self.noise_planned)} "
                       "measurements are missing: " + seeds_on_envs(*(by_env(pairs) for pairs in (self.noise_missing,
                                                                                      self.noise_planned))) + ".")
        if self.noise_stale:
            out.append(f"**Stale (gradient noise):** {len(self.noise_stale)} of the measurements were made with other "
                       "arguments or code than the config and the current code would use (`snakemake` remakes them): "
                       + self._by_reason(self.noise_stale, "measurements") + ".")
        return out

    @staticmethod
    def _by_reason(stale, noun):
        """'2 runs: why; 1 runs: another why': the (item, reason) pairs counted per reason, sha256s left out."""
        counts = collections.Counter(why.split(" (sha256")[0] for _, why in stale)
        return "; ".join(f"{n} {noun}: {why}" for why, n in counts.items())

    def _missing_by_variant(self):
        """One phrase per variant, short enough for a grid that is mostly missing: 'v (all 21 runs)', or
        'v: seeds 4-10 on every env', or 'v: every seed on Hopper-v5 and seeds 1, 3 on Walker2d-v5'."""
        planned, missing = {}, {}
        for r in self.planned:
            planned.setdefault(r.variant, {}).setdefault(r.env, []).append(r.seed)
        for r in self.missing:
            missing.setdefault(r.variant, {}).setdefault(r.env, []).append(r.seed)
        phrases = []
        for variant, envs in missing.items():
            n = sum(map(len, envs.values()))
            whole = n == sum(map(len, planned[variant].values()))
            phrases.append(f"{variant} (all {n} runs)" if whole else f"{variant}: {seeds_on_envs(envs, planned[variant])}")
        return phrases

    def found(self):
        """The planned (variant, env, seed) keys that have a finished run."""
        missing = set(self.missing)
        return {tuple(r) for r in self.planned if r not in missing}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m analysis.load", description=(
        "Check runs against the run contract and list them. PATH is one run folder (.../seed<k>), a runs/ "
        "folder, or a scale folder (results/<scale>); for a scale of the config, also which planned runs "
        "are missing or stale."))
    parser.add_argument("path", metavar="PATH")
    parser.add_argument("--config", default=str(grid.CONFIG), help="the grid's YAML file")
    parser.error = lambda message: sys.exit(f"error: {message} (python -m analysis.load --help)")  # one line
    args = parser.parse_args(argv)
    path = pathlib.Path(args.path)
    try:
        if not path.is_dir():
            raise RunContractError(f"{path}: no such folder")
        if (path / "run.json").exists() or RUN_DIR.fullmatch(path.name):
            key = run_key(path) if path.parent.parent.parent.name == "runs" else None
            meta, progress, episodes = load_run(path, key)
            print(f"{path}: a finished {meta['algo']} run, {meta['args']['env_id']} seed {meta['seed']}, "
                  f"{int(progress.global_step.iloc[-1]):,} steps, {len(episodes):,} episodes")
            return
        scale_dir = path.parent if path.name == "runs" else path
        runs, _, episodes = load_runs(scale_dir, allow_mixed_versions=True)
        print(runs.groupby(["variant", "env"]).seed.count().rename("seeds").to_string())
        print(f"{len(runs)} runs, {len(episodes)} episodes")
        config = grid.load(args.config)
        if scale_dir.name in config.get("scales", {}):
            grid.check(config)
            status = GridStatus(scale_dir, config, scale_dir.name, list(config["scales"][scale_dir.name]["experiments"]))
            print("\n".join(status.lines()) or f"every run the {scale_dir.name} grid plans is here and current")
    except (RunContractError, grid.ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)

if __name__ == "__main__":
    main()
