# Configuration: validated and completed by astromorphic.config (the same typed models the library and
# every command use), then checked against the JSON schema generated from them; helpers that turn it
# into file lists and per-rule parameters. No rule of its own lives here.
import copy
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

import yaml

from astromorphic.config import (
    SCHEMA_FILE,
    ablation_models,
    ConfigError,
    models_for_task,
    read_config_file,
    resolve_task_config,
    run_section,
    seeds_for,
    threshold,
    validate_config,
)
from astromorphic.bench.cost import planned_runs
from astromorphic.io import write_text
from astromorphic.runs.records import plan_runs, plan_summary
from astromorphic.runs import code_hash, data_code_hash
from astromorphic.run_names import format_model_name
from astromorphic.runs.identity import modules_hash
from astromorphic.tables import available_tables
from astromorphic.tasks import FIG4_PANELS, LM_TASKS, TASK_NAMES, get as task_record, in_order

# The configuration with every default filled in; an invalid one stops here, naming the key. Snakemake reads the
# configuration files itself (a key written twice keeps the last): each is read again, strictly, first.
try:
    for _path in workflow.configfiles:
        read_config_file(_path)
    _resolved = validate_config(dict(config))
except ConfigError as error:
    raise WorkflowError(f"Invalid configuration: {error}") from None
config.clear()
config.update(_resolved)
validate(config, schema=str(SCHEMA_FILE), set_default=False)

# Jobs call the `astromorphic` command of the environment snakemake runs in, activated or not.
shell.prefix(
    f'set -euo pipefail; export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"; '
)

TASK_ORDER = TASK_NAMES
TASKS = in_order(config["tasks"])


wildcard_constraints:
    task="|".join(TASK_ORDER),
    model=r"[A-Za-z0-9-]+(@[A-Za-z_]+=[^/@=]+)*",
    seed=r"\d+",
    panel="|".join(FIG4_PANELS.values()),
    device="cpu|cuda",
    module=r"[A-Za-z0-9_.+]+",


# ------------------------------------------------------------------------------------ runs


def models_for(task):
    """Plain presets trained on ``task``."""
    return models_for_task(config, task)


def run_keys(task=None):
    """(task, model, seed) of every run of the configuration (astromorphic.bench.cost.planned_runs: models x seeds,
    the LM's extra models, the ablation variants and the sweep)."""
    return planned_runs(config, task)


def run_dir(task, model, seed):
    return f"results/runs/{task}/{model}/seed{seed}"


def run_dirs(task=None):
    return [run_dir(*key) for key in run_keys(task)]


# ------------------------------------------------------------------------------------ committed records

# Which runs a committed record stands for (config key `records`; astromorphic.runs.records.plan_runs): those are
# aggregated from the record and never trained here, and a task none of whose runs trains prepares no data.
# The hash of the code that determines each task's runs, computed once (the same package the jobs import).
CODE_HASHES = {t: code_hash(t) for t in TASKS}
# The hash of the code that prepares each task's data (astromorphic.runs.data_code_hash): its prepare job follows it.
DATA_CODE_HASHES = {t: data_code_hash(t) for t in TASKS}
RUN_PLAN = plan_runs(config, run_keys(), CODE_HASHES)
if config["records"]:
    print(plan_summary(RUN_PLAN, config["records"]), file=sys.stderr)


def aggregated_run_dirs():
    """Per run, the folder aggregation reads: the committed record standing for it, else the run trained here."""
    return [
        str(RUN_PLAN[key].record) if RUN_PLAN[key].record else run_dir(*key)
        for key in run_keys()
    ]


def verification_file():
    """<records>/verification.json when `astromorphic records verify` wrote one (records.csv reads it)."""
    path = Path(config["records"] or "") / "verification.json"
    return [str(path)] if config["records"] and path.is_file() else []


def trained_run_dirs(task=None):
    """The runs that train in this workflow (no committed record stands for them)."""
    return [run_dir(*key) for key in run_keys(task) if RUN_PLAN[key].record is None]


def prepared_tasks():
    """Tasks with at least one run to train: only their data are prepared."""
    return [t for t in TASKS if trained_run_dirs(t)]


# ------------------------------------------------------------------------------------ code inputs


def module_sources(*modules):
    """The code input of the rules whose commands run ``modules`` (results/configs/code/modules/<name>.txt), which
    holds the identity of those modules and every package module they import, directly or through each other
    (astromorphic.runs.identity.modules_hash: syntax trees without docstrings, the kernels' C++ without comments).
    Rule module_code_snapshot rewrites it when that identity changes (a params rerun trigger), so that editing
    any code the command runs reruns the rule, a module added later counts at once, and a comment or a
    reformatting reruns nothing."""
    name = "+".join(m.removeprefix("astromorphic.") for m in modules)
    if name not in MODULE_CODE_HASHES:
        MODULE_CODE_HASHES[name] = modules_hash(modules)
    return f"results/configs/code/modules/{name}.txt"


MODULE_CODE_HASHES = {}  # snapshot name -> identity of the code (module_sources), filled as the rules ask


# ------------------------------------------------------------------------------------ configuration snapshots


def task_config(task):
    return resolve_task_config(config, task)


def data_options(task):
    """tasks.<task>.data, with the source found in data_dir/<task> when a local data folder is given
    (astromorphic.data.source_from_dir; a split_map it proposes applies unless the configuration sets one).
    """
    data = copy.deepcopy(task_config(task)["data"])
    if config["data_dir"]:
        from astromorphic.data import DataError, source_from_dir

        try:
            found = source_from_dir(task, Path(config["data_dir"]) / task)
        except DataError as error:
            raise WorkflowError(f"data_dir: {error}") from None
        data.update(
            {k: v for k, v in found.items() if k == "source" or data.get(k) is None}
        )
    return data


def canonical(value):
    """``value`` with every mapping's keys sorted, so that reordering a configuration file changes no
    parameter (snakemake compares params by their text) and no snapshot."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def config_snapshot(name):
    return canonical(_config_snapshot(name))


def _config_snapshot(name):
    """What results/configs/<name>.yaml holds; a job reruns when this changes (params rerun trigger).

    train/<task>: what a training run reads (astromorphic.config.run_section): no reporting or
    scheduling keys, so that changing those retrains nothing. The cosmetic keys (``label``, ``report``) are only
    in ``all``, which the tables, figures and findings page read: renaming a configuration redraws what shows
    the name and prepares, simulates and trains nothing.
    """
    head = {"synthetic": config["synthetic"]}
    kind, _, task = name.partition("/")
    if kind == "train":
        return {**head, "tasks": {task: run_section(task_config(task))}}
    if kind == "data":
        return {**head, "tasks": {task: {"data": data_options(task)}}}
    if name == "simulation":
        section = {
            k: v
            for k, v in config["simulation"].items()
            if k not in ("enabled", "resources")
        }
        return {**head, "simulation": section}
    if name == "all":
        out = copy.deepcopy(config)
        out["tasks"] = {t: task_config(t) for t in TASKS}
        return out
    raise ValueError(f"no configuration snapshot named {name!r}")


def write_snapshot(path, snapshot, log):
    """Write results/configs/<name>.yaml (atomically); the commands read it with --config."""
    text = SNAPSHOT_HEADER + yaml.dump(snapshot, Dumper=_NoAliasDumper, sort_keys=False)
    write_text(path, text)
    write_text(log, f"wrote {path}\n")


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(
        self, data
    ):  # shared objects written out in full, never as &anchors
        return True


SNAPSHOT_HEADER = (
    "# Written by the workflow from the configuration that ran (defaults filled in); do not edit.\n"
    "# Run configurations leave out the reporting and scheduling keys, so that changing those retrains nothing.\n"
)


def write_code_snapshot(path, digest, log):
    write_text(path, CODE_HEADER + f"code_hash: {digest}\n")
    write_text(log, f"wrote {path}\n")


MODULE_CODE_HEADER = (
    "# Written by the workflow: the identity of the code a reporting command runs (module_sources in\n"
    "# workflow/rules/common.smk); the rules that read it run again when it changes. Do not edit.\n"
)


def write_data_code_snapshot(path, digest, log):
    write_text(path, DATA_CODE_HEADER + f"data_code_hash: {digest}\n")
    write_text(log, f"wrote {path}\n")


DATA_CODE_HEADER = (
    "# Written by the workflow: the hash of the source files that prepare this task's data\n"
    "# (astromorphic.runs.data_code_hash); the data are prepared again when it changes. Do not edit.\n"
)


CODE_HEADER = (
    "# Written by the workflow: the hash of the source files that determine a training run of this task\n"
    "# (astromorphic.runs.code_hash); every run of the task retrains when it changes. Do not edit.\n"
)


def task_resources(task, key):
    return task_config(task)["resources"][key]


def section_resources(section, key):
    return config[section]["resources"][key]


# ------------------------------------------------------------------------------------ GPUs

# Locally a GPU is GPU_SHARES shares: a job that holds a whole GPU asks for all of them, a training run of a task
# with runs_per_gpu: k for GPU_SHARES // k (`snakemake --resources gpu_share=100` per GPU of the machine).
GPU_SHARES = 100


def train_gpu_share(task):
    gpu, share = task_resources(task, "gpu"), task_resources(task, "runs_per_gpu")
    return gpu * GPU_SHARES // share


def train_gres(task):
    """SLURM: the GPUs of a training job, as a gres string: a group job of runs sharing a GPU asks for it once
    (Snakemake sums a group's numeric resources but keeps a string that all its jobs share)."""
    gpu = task_resources(task, "gpu")
    return f"gpu:{gpu}" if gpu else ""


def train_group(task):
    """Training runs of a task with runs_per_gpu > 1 form the group train_<task> (one SLURM job per runs_per_gpu
    runs, in parallel on one GPU); others are not grouped."""
    return f"train_{task}" if task_resources(task, "runs_per_gpu") > 1 else None


# How many jobs one group job takes comes from the command line only (Snakemake replaces the workflow's group
# settings after reading it): `--group-components train_<task>=<runs_per_gpu>`, which `astromorphic bench cost
# --slurm` prints. Without it, each run of a grouped task is a group job of one. Locally, groups are ignored.


# ------------------------------------------------------------------------------------ outputs


def table_outputs(ext):
    return [f"results/tables/{name}.{ext}" for name in available_tables(config)]


def figure_stems():
    stems = [f"figures/fig4{FIG4_PANELS[t]}_{t}" for t in TASKS if t in FIG4_PANELS]
    if any(t in LM_TASKS for t in TASKS):
        stems.append(PAGE_FIGURES["lm"])
    stems.append("figures/controls_attention")
    stems.append(PAGE_FIGURES["forest"])
    stems += [PAGE_FIGURES[f"speed_{t}"] for t in SPEED_TASKS]
    if config["bench"]["enabled"]:
        stems.append(f"figures/figS2_attention_{config['bench']['device']}")
    if config["simulation"]["enabled"]:
        stems.append("figures/fig3_calcium")
    for task in config["sweep"]["tasks"]:
        for key in sorted({entry["key"] for entry in config["sweep"]["grid"]}):
            stems.append(f"figures/sweep_{task}_{key}")
    return stems


def findings_inputs():
    """The tables the findings page reads; records.csv when runs come from committed records."""
    tables = table_outputs("csv") + ["results/tables/runs.csv", "results/tables/learning_curves.csv"]
    tables.append("results/tables/runs_summary.csv")
    return tables + (["results/tables/records.csv"] if config["records"] else [])


# The figures the findings page can show, by the name its notebook asks for (astromorphic.findings.FIGURE_ALT):
# the forest plot, the language model's curves, and the steps-to-threshold figure of each task with the paper's
# learning-speed pairs.
SPEED_TASKS = [t for t in TASKS if task_record(t).speedup_pairs]
PAGE_FIGURES = {"forest": "figures/forest_claims", "lm": "figures/lm_perplexity",
                **{f"speed_{t}": f"figures/speed_thresholds_{t}" for t in SPEED_TASKS}}


def findings_figures():
    """The page's figures (name -> PNG) among those this configuration makes (figure_stems)."""
    made = set(figure_stems())
    return {name: f"{stem}.png" for name, stem in PAGE_FIGURES.items() if stem in made}


def findings_figure_copies():
    """The copies of the page's figures beside it (findings.md links to them by file name)."""
    return [f"results/findings/{Path(png).name}" for png in findings_figures().values()]


def findings_figure_args():
    """The page's figures as `astromorphic findings --figure NAME=PATH` arguments."""
    return " ".join(f"--figure {name}={shlex.quote(png)}" for name, png in findings_figures().items())


def final_outputs():
    """Tables, figures, the findings page, and the record of every run trained here (so that a deleted run
    directory is trained again; committed records are inputs, not outputs)."""
    outs = [f"{run}/run.json" for run in trained_run_dirs()]
    for ext in ("csv", "md", "tex", "html"):
        outs += table_outputs(ext)
    for stem in figure_stems():
        outs += [f"{stem}.png", f"{stem}.pdf"]
    outs += ["results/findings/findings.md", "results/findings/findings.html", "results/findings/claims.csv"]
    if config["report"]["cost_throughput"]:
        outs += ["results/tables/cost.csv", "results/tables/cost.md"]
    return outs
