"""The experiment grid: validate experiments/config.yaml and expand it into runs.

Used by the Snakefile (experiments/rules/common.smk), by analysis/ and by the tests; it needs
no Snakemake. Validation happens before any job is planned and stops at the first problem
with one line naming the config key (ConfigError).
"""
import copy
import dataclasses
import functools
import importlib.util
import json
import pathlib
import re
import shlex
import tempfile
from typing import NamedTuple

import gymnasium as gym
import jsonschema
import run_contract
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFIG = ROOT / "experiments" / "config.yaml"
SCHEMA = ROOT / "experiments" / "config.schema.yaml"
CODE_VERSIONS = ROOT / "experiments" / "code_versions.yaml"
ALGO_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")  # an algorithm is algorithms/<name>.py, nothing else
WORKFLOW_ARGS = {"env_id", "seed", "total_timesteps", "out", "threads", "overwrite", "compress"}  # set per job
NOT_RUN_ARGS = {"out", "overwrite", "compress"}  # where and how the files are written, not what is computed
# the experiments that get a figure, a table and a report section, in the report's order (random is their anchor)
ANALYSED = ("baselines", "gae_lambda", "ppo_objectives", "time_limits", "algorithms")


class ConfigError(ValueError):
    """A problem in the config, as 'key.path: what is wrong'."""


class Run(NamedTuple):
    variant: str
    env: str
    seed: int


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load, except that a key repeated in one mapping is an error (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(f"{key_node.start_mark.name}, line {key_node.start_mark.line + 1}: "
                                  f"duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep)


def load(path=CONFIG):
    with open(path) as f:
        return yaml.load(f, Loader=UniqueKeyLoader)


def from_cli(path, json_text=None):
    """The config a CLI was given: JSON text (the workflow's merged config) or a YAML file."""
    return json.loads(json_text) if json_text else load(path)


def algorithm_path(algo):
    """algorithms/<algo>.py, for a name of lowercase letters, digits and _ that names a file directly in
    algorithms/ (never a path, never the run contract): names from a config or a run.json are data."""
    path = ROOT / "algorithms" / f"{algo}.py"
    if not isinstance(algo, str) or not ALGO_NAME.fullmatch(algo) or algo == "run_contract" or not path.is_file():
        raise ConfigError(f"algo: no algorithm file algorithms/{algo}.py (a name of a-z, 0-9 and _)")
    return path


@functools.cache
def algorithm(algo):
    """The algorithm file as a module (imported by path: each file is standalone but for run_contract)."""
    spec = importlib.util.spec_from_file_location(f"grid_{algo}", algorithm_path(algo))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scale_config(config, scale):
    """The part of the config that one scale's runs and analyses depend on (so that editing another
    scale, a variant this scale does not use, or the order jobs start in (priority, start_first) does not make
    Snakemake redo this scale's analyses)."""
    used = sorted({r.variant for r in runs(config, scale)})
    own = {k: x for k, x in config["scales"][scale].items() if k != "start_first"}
    return {"scale": scale, "experiments": config["experiments"], "scales": {scale: own},
            "variants": {v: {k: x for k, x in config["variants"][v].items() if k != "priority"} for v in used}}


def experiment_variants(config, scale, experiment):
    """The experiment's variants at a scale: the scale's `variants` list (a subset of the experiment's and the
    scale's own `add_variants`, in the order given), else the experiment's list and then `add_variants`.
    A variant in `add_variants` runs at that scale only."""
    chosen = config["scales"][scale]["experiments"].get(experiment, {})
    if "variants" in chosen:
        return list(chosen["variants"])
    return config["experiments"][experiment]["variants"] + chosen.get("add_variants", [])


def experiment_runs(config, scale, experiment):
    chosen = config["scales"][scale]["experiments"].get(experiment)
    if not chosen or experiment == "random":
        return []
    return [Run(v, env, seed) for v in experiment_variants(config, scale, experiment)
            for env in chosen["envs"] for seed in chosen["seeds"]]


SCALE_FOLDERS = {"runs", "random", "gradient_noise", "tables", "figures", "logs", "benchmarks", "stale"}


def subset(config, scale, name):
    """The config as a report from part of a scale's runs sees it: every experiment keeps only the seeds and envs
    of `scales.<scale>.subsets.<name>` (results/<scale>/<name>/; e.g. the paper scale's first 3 seeds, kept for
    comparison once it has 10). An experiment left with no seed or env is dropped."""
    subsets = config["scales"][scale].get("subsets", {})
    if name not in subsets:
        raise ConfigError(f"scales.{scale}.subsets: no subset {name!r} (the config names "
                          f"{', '.join(sorted(subsets)) or 'none'})")
    spec, config = subsets[name], copy.deepcopy(config)
    sc = config["scales"][scale]
    del sc["subsets"]
    for exp, chosen in list(sc["experiments"].items()):
        chosen["seeds"] = [s for s in chosen["seeds"] if s in spec.get("seeds", chosen["seeds"])]
        chosen["envs"] = [e for e in chosen["envs"] if e in spec.get("envs", chosen["envs"])]
        if not chosen["seeds"] or not chosen["envs"]:
            del sc["experiments"][exp]
    kept = {env for chosen in sc["experiments"].values() for env in chosen["envs"]}
    if "env_steps" in sc:
        sc["env_steps"] = {env: n for env, n in sc["env_steps"].items() if env in kept}
    return config


def train_seeds(config, scale):
    """The seeds of every training run of a scale, in order: its training experiments all name the same
    (grid.check), since one job trains a variant × env's seeds together."""
    lists = [chosen["seeds"] for exp, chosen in config["scales"][scale]["experiments"].items() if exp != "random"]
    return sorted(set(lists[0])) if lists else []


def runs(config, scale):
    """Every training run of a scale, each once however many experiments share it."""
    return sorted({r for exp in config["experiments"] for r in experiment_runs(config, scale, exp)})


def env_order(config, scale):
    """The scale's envs in the order its experiments first name them (config order)."""
    order = []
    for chosen in config["scales"][scale]["experiments"].values():
        order += [env for env in chosen["envs"] if env not in order]
    return order


def start_order(config, scale):
    """The order envs start in within one job priority: the scale's `start_first` envs, then the others in
    env_order. A scale names its cheapest envs there (classic control: a PPO seed costs under a core-minute,
    against about two on MuJoCo), so that a partial grid answers the most for the compute it has had."""
    first = config["scales"][scale].get("start_first", [])
    return list(first) + [env for env in env_order(config, scale) if env not in first]


def train_priority(config, scale, variant, env):
    """A training job's start order among ready jobs, higher first: the variant's config priority (default 0),
    capped by the priority of the experiments that plan this variant on this env (the highest of them counts;
    an experiment without one caps nothing), then env by env in start_order. The cap keeps a variant that an early
    experiment shares with a later one from running early on the later one's envs (PPO-clip ε = 0.2 on Ant-v5
    is the algorithm comparison's, not Table 1's). Table 1 normalises each env by its best setting, so a partial
    grid is readable env by env; an interleaved one is readable only when complete. The env's share stays below
    1, so it never crosses an integer priority. Orders jobs, never changes one."""
    own = config["variants"][variant].get("priority", 0)
    capped = [min(own, config["experiments"][name].get("priority", own)) for name, chosen
              in config["scales"][scale]["experiments"].items()
              if env in chosen["envs"] and variant in experiment_variants(config, scale, name)]
    order = start_order(config, scale)
    return max(capped, default=own) - order.index(env) / len(order)


def random_envs(config, scale):
    exps = config["scales"][scale]["experiments"]
    return sorted({env for name in exps for env in exps[name]["envs"]})


def gradient_noise_runs(config, scale):
    """The (env, seed) pairs at which experiments/gradient_noise.py measures VPG's gradient noise: the
    baselines experiment's, where the scale asks for the measurement."""
    chosen = config["scales"][scale]["experiments"].get("baselines")
    if "gradient_noise" not in config["scales"][scale] or not chosen:
        return []
    return [(env, seed) for env in chosen["envs"] for seed in chosen["seeds"]]


def gradient_noise_args(config, scale, env):
    """experiments/gradient_noise.py's arguments at this scale beyond env, seed and out, as its provenance
    record (<out>.json) stores them: vpg.py's flags are the vpg_gae variant's, on one thread."""
    measured = config["scales"][scale]["gradient_noise"]
    return {"warmup_batches": measured["warmup_batches"], "batches": measured["batches"],
            "vpg_flags": ["--threads", "1", *shlex.split(cli_args(config, scale, "vpg_gae", env))]}


def gradient_noise_cli(config, scale, env):
    """The same arguments as gradient_noise.py's command line: its own flags, then -- and vpg.py's."""
    a = gradient_noise_args(config, scale, env)
    return shlex.join(["--warmup-batches", str(a["warmup_batches"]), "--batches", str(a["batches"]), "--", *a["vpg_flags"]])


MISSING = "missing"


def gradient_noise_state(config, scale, scale_dir, env, seed):
    """MISSING when the measurement's CSV is not under scale_dir; else why it is stale (its record, the .json
    beside it, read by gradient_noise_stale_reason); else None: made by this config and code."""
    csv_path = pathlib.Path(scale_dir, "gradient_noise", env, f"seed{seed}.csv")
    if not csv_path.exists():
        return MISSING
    record_path = csv_path.with_suffix(".json")
    try:
        record = json.loads(record_path.read_text()) if record_path.exists() else None
    except ValueError:
        return "its provenance record is not JSON"
    return gradient_noise_stale_reason(config, scale, env, record)


def gradient_noise_stale_reason(config, scale, env, record):
    """Why a gradient-noise measurement (its provenance record, or None if it has none) is not the one this
    config and code would make, or None: the first argument that differs, else another vpg.py or
    gradient_noise.py (sha256), as for a run (stale_reason)."""
    if record is None:
        return "no provenance record (the .json beside the .csv)"
    for key, want in gradient_noise_args(config, scale, env).items():
        if record.get(key) != want:
            return f"argument {key}: the measurement has {record.get(key)!r}, the config and code give {want!r}"
    made_by = record.get("vpg_code_sha256") or record.get("vpg_sha256")
    if reason := code_reason("vpg", made_by):
        return reason
    if reason := code_reason("gradient_noise", record.get("script_sha256")):
        return reason
    return None


def steps(config, scale, env):
    return config["scales"][scale].get("env_steps", {}).get(env, config["scales"][scale]["steps"])


def run_args(config, scale, variant, env):
    """The algorithm's arguments for one run, with the key each came from (for error messages)."""
    spec = config["variants"][variant]
    layers = [(f"scales.{scale}.algo_args.{spec['algo']}", config["scales"][scale].get("algo_args", {}).get(spec["algo"], {})),
              (f"variants.{variant}.args", spec["args"]),
              (f"variants.{variant}.env_args.{env}", spec.get("env_args", {}).get(env, {}))]
    merged, source = {}, {}
    for key, layer in layers:
        for name, value in layer.items():
            merged[name], source[name] = value, f"{key}.{name}"
    return merged, source


def cli_args(config, scale, variant, env):
    """The run's command-line flags beyond env, seed, steps and out, in a stable order."""
    flags = []
    for name, value in sorted(run_args(config, scale, variant, env)[0].items()):
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + flag[2:])
        elif value is not None:
            flags.append(f"{flag} {value}")
    return " ".join(flags)


def expected_args(config, scale, run):
    """The resolved arguments (run.json's "args" bar NOT_RUN_ARGS) that this config and the current
    algorithm file give the run: defaults, regime (ppo.py --regime) and overrides filled in."""
    module = algorithm(config["variants"][run.variant]["algo"])
    args = module.Args(env_id=run.env, seed=run.seed, total_timesteps=steps(config, scale, run.env), threads=1,
                       **run_args(config, scale, run.variant, run.env)[0])
    if hasattr(module, "resolve"):
        args = module.resolve(args)
    return {k: v for k, v in dataclasses.asdict(args).items() if k not in NOT_RUN_ARGS}


TIME_LIMITS = ("bootstrapped", "terminal")  # how a variant's runs treat an episode cut by the time limit


def time_limit_cells(config, scale):
    """The time_limits experiment's 2 × 2 at a scale: {(regime, 'bootstrapped' | 'terminal'): variant}, in the
    order ppo2, ppo1 × bootstrapped, terminal, each read from the variant's resolved arguments (so a variant that
    sets bootstrap_truncation explicitly lands where its runs will). ConfigError unless its variants are PPO
    variants that fill each of the four cells exactly once."""
    chosen = config["scales"][scale]["experiments"]["time_limits"]
    key = (f"scales.{scale}.experiments.time_limits.variants" if "variants" in chosen
           else "experiments.time_limits.variants")
    module = algorithm("ppo")
    cells = {}
    for variant in experiment_variants(config, scale, "time_limits"):
        if config["variants"][variant]["algo"] != "ppo":
            raise ConfigError(f"{key}: {variant} is not a PPO variant (the experiment crosses ppo.py's --regime with "
                              "its --bootstrap-truncation)")
        args = expected_args(config, scale, Run(variant, chosen["envs"][0], chosen["seeds"][0]))
        cell = (args["regime"], TIME_LIMITS[not args["bootstrap_truncation"]])
        if cell in cells:
            raise ConfigError(f"{key}: {cells[cell]} and {variant} are both the {cell[0]} regime with the time limit "
                              f"{cell[1]}; the experiment needs each regime × time limit once")
        cells[cell] = variant
    wanted = [(regime, limit) for regime in module.REGIME_NAMES for limit in TIME_LIMITS]
    if missing := [c for c in wanted if c not in cells]:
        raise ConfigError(f"{key}: no variant for " + ", ".join(f"the {r} regime with the time limit {t}"
                                                                for r, t in missing))
    return {c: cells[c] for c in wanted}


file_sha256 = functools.cache(run_contract.file_sha256)


def script_sha256(algo):
    return file_sha256(ROOT / "algorithms" / f"{algo}.py")


# ---------------------------------------------------------------- staleness follows numbers (docs/DESIGN.md §6)
def code_versions():
    """experiments/code_versions.yaml: per algorithm (and gradient_noise), the fingerprints shown to compute
    the numbers of its reference commit, and how its runs' arguments read now. Read again whenever the file
    changes: a workflow running for hours must see a fingerprint recorded meanwhile, or it would take every
    run of that algorithm for stale and retrain it."""
    stat = CODE_VERSIONS.stat()
    return _code_versions(str(CODE_VERSIONS), stat.st_mtime_ns, stat.st_size)


@functools.cache
def _code_versions(path, mtime_ns, size):
    return yaml.safe_load(pathlib.Path(path).read_text())


code_versions.cache_clear = _code_versions.cache_clear


def fingerprint_now(name):
    """The current code's fingerprint: an algorithm file with the run contract, or gradient_noise.py alone."""
    if name == "gradient_noise":
        return file_sha256(ROOT / "experiments" / "gradient_noise.py")
    return run_contract.code_fingerprint(algorithm_path(name))


def run_fingerprint(meta):
    """The code fingerprint a run.json records (script_sha256 alone before run_contract.py existed)."""
    return meta.get("code_sha256") or meta.get("script_sha256")


def code_reason(name, made_by, cpu=None):
    """None when code with fingerprint `made_by` computes the same numbers as the current code (both in one
    entry of code_versions.yaml, and on `cpu`, the CPU model that made the run, not told apart by its
    `differs_on`), else why not."""
    entry = code_versions().get(name)
    now = fingerprint_now(name)
    file = "gradient_noise.py" if name == "gradient_noise" else f"{name}.py with run_contract.py"
    if entry is None:  # an algorithm with no entry (a new file): its runs are current while its code is unchanged
        return None if made_by == now else f"made by other code (fingerprint {str(made_by)[:12]}), not {file} as it is now"
    if now not in entry["fingerprints"]:
        return (f"the current {file} (fingerprint {now[:12]}) is not recorded as computing the numbers of "
                f"{entry.get('reference', 'any earlier code')}: run python -m experiments.equivalence --record")
    if not same_numbers(name, made_by, now):
        return f"made by other code (fingerprint {str(made_by)[:12]}), not shown to compute what {file} computes now"
    if not same_numbers(name, made_by, now, cpu):
        return (f"made on an {cpu} by code {str(made_by)[:12]}, which computes other numbers there than {file} "
                f"now (experiments/code_versions.yaml, differs_on)")
    return None


def same_numbers(name, a, b, cpu=None):
    """Whether code fingerprints a and b compute the same numbers: the same code, or both listed under `name`
    and, on CPU model `cpu`, both or neither among those its `differs_on` lists as differing there."""
    entry = code_versions().get(name, {})
    if a == b:
        return True
    differ = set(entry.get("differs_on", {}).get(cpu, {}).get("fingerprints", ()))
    return {a, b} <= entry.get("fingerprints", {}).keys() and (a in differ) == (b in differ)


def current_args(algo, args):
    """A run.json's arguments under today's names: code_versions.yaml's renamed_args, each {was: {...}, now:
    {...}}, replace the arguments an earlier file recorded (all of `was`, with those values) by `now`."""
    args = dict(args)
    for rename in code_versions().get(algo, {}).get("renamed_args", []):
        if all(k in args and args[k] == v for k, v in rename["was"].items()):
            for k in rename["was"]:
                del args[k]
            args.update(rename["now"])
    return args


def stale_reason(config, scale, run, meta):
    """Why a finished run (its run.json as `meta`) is not the run this config and code would make, or None:
    the first argument that differs (under today's names), else code not shown to compute the same numbers."""
    algo = config["variants"][run.variant]["algo"]
    expected = expected_args(config, scale, run)
    recorded = {k: v for k, v in current_args(algo, meta.get("args", {})).items() if k not in NOT_RUN_ARGS}
    for key in sorted(expected.keys() | recorded.keys()):
        if key not in recorded or key not in expected or recorded[key] != expected[key]:
            have = repr(recorded[key]) if key in recorded else "no such argument"
            want = repr(expected[key]) if key in expected else "no such argument"
            return f"argument {key}: the run has {have}, the config and code give {want}"
    return code_reason(algo, run_fingerprint(meta), meta.get("cpu"))


def _type_ok(field, value):
    if value is None:
        return field.default is None
    if field.type is bool:
        return isinstance(value, bool)
    if field.type is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if field.type is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, field.type)


MAX_CONFIG_VALUES = 100_000  # far above any real grid; a YAML alias bomb expands past it at once


def bounded(config, limit=MAX_CONFIG_VALUES):
    """ConfigError when the config, with every YAML alias expanded, holds more than `limit` values: aliases
    are shared when loaded, but checking or printing the config would expand them (a 403-byte file can
    stand for billions of values)."""
    stack, seen = [config], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > limit:
            raise ConfigError(f"(top level): the config expands to more than {limit:,} values (nested YAML "
                              "aliases?); refused before it is checked")
        if isinstance(node, dict):
            stack += node.values()
        elif isinstance(node, list):
            stack += node


def whole(value):
    return isinstance(value, int) and not isinstance(value, bool)


def check(config):
    """Raise ConfigError on the first problem: size, schema, names, arguments, ranges, env ids, and
    per-env settings for envs that nothing runs."""
    bounded(config)
    schema = yaml.safe_load(SCHEMA.read_text())
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(config))
    if error is not None:
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ConfigError(f"{key}: {error.message}")
    if "gradient_noise" in config["variants"]:  # the measurements' stale markers live at stale/gradient_noise/
        raise ConfigError("variants.gradient_noise: a reserved name (the gradient-noise measurements'); choose another")
    for name, exp in config["experiments"].items():
        for i, variant in enumerate(exp["variants"]):
            if variant not in config["variants"]:
                raise ConfigError(f"experiments.{name}.variants[{i}]: unknown variant {variant!r}")
    for variant, spec in config["variants"].items():
        try:
            algorithm_path(spec["algo"])
        except ConfigError:
            raise ConfigError(f"variants.{variant}.algo: no algorithm file algorithms/{spec['algo']}.py") from None
        fields = {f.name: f for f in dataclasses.fields(algorithm(spec["algo"]).Args)}
        for key, layer in [("args", spec["args"])] + [(f"env_args.{e}", a) for e, a in spec.get("env_args", {}).items()]:
            for name, value in layer.items():
                where = f"variants.{variant}.{key}.{name}"
                if name in WORKFLOW_ARGS:
                    raise ConfigError(f"{where}: set by the workflow, not by a variant")
                if name not in fields:
                    raise ConfigError(f"{where}: {spec['algo']}.py has no argument --{name.replace('_', '-')}")
                if not _type_ok(fields[name], value):
                    raise ConfigError(f"{where}: expected {fields[name].type.__name__}, got {value!r}")
    for scale, sc in config["scales"].items():
        counts = [("steps", sc["steps"]), ("random_episodes", sc["random_episodes"])]
        counts += [(f"env_steps.{env}", n) for env, n in sc.get("env_steps", {}).items()]
        counts += [(f"gradient_noise.{k}", n) for k, n in sc.get("gradient_noise", {}).items()]
        counts += [(f"experiments.{e}.seeds[{i}]", n) for e, c in sc["experiments"].items() for i, n in enumerate(c["seeds"])]
        for key, n in counts:
            if not whole(n):
                raise ConfigError(f"scales.{scale}.{key}: expected a whole number, got {n!r}")
        training = [(e, c["seeds"]) for e, c in sc["experiments"].items() if e != "random"]
        for exp, seeds in training:
            if len(set(seeds)) != len(seeds) or set(seeds) != set(training[0][1]):
                raise ConfigError(f"scales.{scale}.experiments.{exp}.seeds: {seeds} against {training[0][1]} of "
                                  f"{training[0][0]}: a scale's experiments train the same seeds, each once (one job "
                                  "trains a variant × env's seeds together)")
        envs_run = {env for chosen in sc["experiments"].values() for env in chosen["envs"]}
        named = [(f"start_first[{i}]", env) for i, env in enumerate(sc.get("start_first", []))]
        named += [(f"env_steps.{env}", env) for env in sc.get("env_steps", {})]
        for key, env in named:  # no setting for an env nothing at this scale runs
            if env not in envs_run:
                raise ConfigError(f"scales.{scale}.{key}: no experiment of this scale runs {env} "
                                  f"(it runs {', '.join(sorted(envs_run))})")
        for exp, chosen in sc["experiments"].items():
            listed, added = config["experiments"][exp]["variants"], chosen.get("add_variants", [])
            for key in ("variants", "add_variants"):
                for i, variant in enumerate(chosen.get(key, [])):
                    if key == "variants" and variant not in listed + added:
                        raise ConfigError(f"scales.{scale}.experiments.{exp}.variants[{i}]: {variant!r} is not one of "
                                          f"experiments.{exp}.variants (to run it at this scale only, name it in "
                                          "this scale's add_variants too)")
                    if key == "add_variants" and variant in listed:
                        raise ConfigError(f"scales.{scale}.experiments.{exp}.add_variants[{i}]: {variant!r} is already "
                                          f"in experiments.{exp}.variants")
        for algo, layer in sc.get("algo_args", {}).items():
            try:
                algorithm_path(algo)
            except ConfigError:
                raise ConfigError(f"scales.{scale}.algo_args.{algo}: no algorithm file algorithms/{algo}.py") from None
            fields = {f.name: f for f in dataclasses.fields(algorithm(algo).Args)}
            for name, value in layer.items():
                if name in WORKFLOW_ARGS or name not in fields or not _type_ok(fields[name], value):
                    raise ConfigError(f"scales.{scale}.algo_args.{algo}.{name}: not a settable {algo}.py argument "
                                      f"of this type ({value!r})")
        for exp, chosen in sc["experiments"].items():
            for i, env in enumerate(chosen["envs"]):
                if env not in gym.registry:
                    raise ConfigError(f"scales.{scale}.experiments.{exp}.envs[{i}]: unknown environment {env!r}")
            for key in ("variants", "add_variants"):
                for i, variant in enumerate(chosen.get(key, [])):
                    if variant not in config["variants"]:
                        raise ConfigError(f"scales.{scale}.experiments.{exp}.{key}[{i}]: unknown variant {variant!r}")
        for name, spec in sc.get("subsets", {}).items():
            if name in SCALE_FOLDERS:
                raise ConfigError(f"scales.{scale}.subsets.{name}: a folder results/{scale}/ already holds "
                                  f"({', '.join(sorted(SCALE_FOLDERS))}); choose another name")
            for key, chosen in (("seeds", {s for c in sc["experiments"].values() for s in c["seeds"]}),
                                ("envs", {e for c in sc["experiments"].values() for e in c["envs"]})):
                for i, item in enumerate(spec.get(key, [])):
                    if item not in chosen:
                        raise ConfigError(f"scales.{scale}.subsets.{name}.{key}[{i}]: {item!r} is not one of the "
                                          f"scale's {key}")
        if "time_limits" in sc["experiments"]:
            time_limit_cells(config, scale)
        _check_ranges(config, scale)
    runs_on = {variant: set() for variant in config["variants"]}
    for scale in config["scales"]:
        for run in runs(config, scale):
            runs_on[run.variant].add(run.env)
    for variant, spec in config["variants"].items():
        for env in spec.get("env_args", {}):
            if env not in runs_on[variant]:
                raise ConfigError(f"variants.{variant}.env_args.{env}: {variant} runs on {env} at no scale "
                                  "(a misspelt env would silently leave the variant at its defaults)")


def _check_ranges(config, scale):
    """Each (variant, env) of the scale through its algorithm's own validate(): ranges, batch sizes."""
    seen = set()
    with tempfile.TemporaryDirectory() as out:
        for run in runs(config, scale):
            if (run.variant, run.env) in seen:
                continue
            seen.add((run.variant, run.env))
            module = algorithm(config["variants"][run.variant]["algo"])
            args, source = run_args(config, scale, run.variant, run.env)
            try:
                module.validate(module.Args(env_id=run.env, total_timesteps=steps(config, scale, run.env), out=out, **args))
            except module.UsageError as e:
                flag = str(e).split(":", 1)[0].lstrip("-").replace("-", "_")
                key = source.get(flag, f"scales.{scale}.steps" if flag == "total_timesteps" else f"scales.{scale}")
                raise ConfigError(f"{key}: {e}") from None
