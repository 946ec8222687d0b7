"""The pipeline configuration (``config/*.yaml``): typed, defaulted and validated in one place.

One pydantic model per section holds its keys, their types, ranges and defaults:

* per task (``tasks.<task>``): ``data`` (options of ``astromorphic prepare``), ``model`` (sizes),
  ``attention`` (the astromorphic constants), ``train`` (optimisation and run-time settings) and
  ``resources`` (what a job asks the scheduler for; never part of a run's numbers);
* top level: ``report``, ``bench``, ``simulation``, ``sweep`` and the run lists (``seeds``, ``models``).

The model sizes, learning rates, batch sizes and epoch counts default to the paper's (SPEC.md section 3),
so an empty task section is the paper's set-up; the other defaults are our documented choices.

Every way a configuration enters goes through :func:`validate_config`: a YAML file (:func:`load_config`),
``--set KEY=VALUE`` overrides (:func:`apply_overrides`, validated with the file), the Python API
(``train_run`` calls :func:`validate_run`) and the workflow (``workflow/rules/common.smk``). Errors are
:class:`ConfigError` (a ``ValueError``) whose message starts with the dotted key, e.g.
``tasks.imdb.attention.alpha: must be <= 1, got 1.5``. Unknown keys are errors everywhere, integers
must be integers (``2.0`` is not an epoch count) and numbers written as ``1e-3`` (a string to YAML 1.1)
are read as numbers.

The JSON schema the workflow validates against (``astromorphic/schemas/config.schema.json``, package data)
is generated from these models: ``python -m astromorphic.config --write-schema`` rewrites it and a test
checks that the committed file equals the generated one.

Derived rules that several places need live here once: :func:`run_section` (which keys change a run's
numbers; the run fingerprint and the workflow's snapshots), :func:`models_for_task` (which presets run on
a task) and :func:`threshold` (a task's learning-speed threshold).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Optional

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from astromorphic.config.sections import (  # noqa: F401 (the task sections: part of this module's interface)
    TASK_MODELS,
    AttentionConfig,
    Augment,
    Cifar10Data,
    Cifar10Model,
    Cifar10Task,
    Cifar10Train,
    ImdbData,
    ImdbModel,
    ImdbTask,
    ImdbTrain,
    LMAttention,
    Resources,
    Tasks,
    TrainConfig,
    WikiText2Data,
    WikiText2Model,
    WikiText2Task,
    WikiText2Train,
    TaskConfig,
)
from astromorphic.config.types import (  # noqa: F401 (MAX_SEED, Seed, seed_arg: part of this module's interface)
    LM_TASKS,
    MAX_SEED,
    TASKS,
    Section,
    ModelName,
    NonNegInt,
    PosInt,
    Real,
    Seed,
    UniqueKeyLoader,
    unique_items,
    seed_arg,
)
from astromorphic.tasks import FIG4_PANELS, REGISTRY as TASK_REGISTRY
from astromorphic.run_names import format_model_name
from astromorphic.io import write_text

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.json"
# The presets every task trains by default (astromorphic.presets holds their definitions).
DEFAULT_MODELS = (
    "vanilla",
    "linearized",
    "astro",
    "astro-no-relpos",
    "astro-no-nonlin",
    "astro-no-feedback",
    "astro-gate-only",
    "no-attention",
)
DEFAULT_LM_EXTRA_MODELS = ("astro-leaky",)


class ConfigError(ValueError):
    """An invalid configuration; the message starts with the dotted key path."""


# ---------------------------------------------------------------------------------------------- value types
# ---------------------------------------------------------------------------------------------- sections
# (astromorphic.config.types: numbers, integers, seeds, preset names, the strict YAML reader, the section base;
# astromorphic.config.sections: the task sections)


# ---------------------------------------------------------------------------------------------- other sections


class ReportConfig(Section):
    """How the tables pick one number per run (reporting only: changing it retrains nothing)."""

    classifier_metric: Literal["final", "best"] = Field(
        "final", description="test accuracy at the last epoch, or at the epoch each run selected (best.selected_by: "
        "highest validation accuracy when the data have a validation split, else highest test accuracy, which is "
        "chosen on the test set and said so)"
    )
    lm_metric: Literal["best_valid", "final"] = Field(
        "best_valid", description="test perplexity at the epoch of the lowest validation perplexity, or the last"
    )
    threshold: Optional[Real(gt=0, le=1)] = Field(None, description="null = tasks.<task>.train.threshold")
    equivalence_margin: dict[Literal[TASKS], Real(gt=0)] = Field(
        default_factory=lambda: {t.name: t.equivalence_margin for t in TASK_REGISTRY},
        description="per task, the equivalence margin of the findings page's two one-sided tests: percentage points "
        "of accuracy for a classifier, a relative perplexity ratio for a language model (0.05: within a factor "
        "1.05, judged as ± ln 1.05 on the log scale); a task left out keeps its default",
    )
    speed_budget_steps: Optional[PosInt] = Field(
        None, description="the step budget of the learning-speed area under the curve; null = the largest step "
        "every run of the task reached"
    )
    speed_threshold_span: Real(gt=0, lt=1) = Field(
        0.10, description="the steps-to-threshold figure spans the task's threshold ± this (fraction of accuracy)"
    )
    speed_threshold_step: Real(gt=0, lt=1) = Field(0.01, description="the spacing of the figure's thresholds")
    cost_throughput: Optional[str] = Field(
        None, description="throughput CSV of `astromorphic bench throughput` for the report's cost table; null = none"
    )
    cost_sharing: Optional[str] = Field(
        None, description="CSV of workflow/scripts/gpu_share_check.sh: measured speed-up of runs sharing a GPU"
    )


class BenchConfig(Section):
    """The attention benchmark behind Fig. S2."""

    enabled: StrictBool = True
    n: Annotated[list[PosInt], Field(min_length=1)] = [128, 256, 512, 1024, 2048, 4096]
    device: Literal["cpu", "cuda"] = "cpu"
    repeats: PosInt = Field(3, description="timed runs per point (the minimum is kept)")
    max_seconds: Real(gt=0) = Field(120, description="skip larger N of a kind once one point took longer")
    resources: Resources = Field(default_factory=Resources)


class SimulationConfig(Section):
    """The neuron-astrocyte simulation behind Fig. 3 (astromorphic.neuroglia)."""

    enabled: StrictBool = True
    frequencies: Annotated[list[Real(gt=0)], Field(min_length=2)] = Field(
        default_factory=lambda: [float(f) for f in range(1, 11)], description="Hz, the paper's Fig. 3 range"
    )
    n_trains: PosInt = 5
    duration_s: Real(gt=0) = 90.0
    warmup_s: Real(ge=0) = Field(30.0, description="3 tau_AG; averages run over [warmup_s, duration_s]")
    seed: Seed = 0
    method: Literal["RK45", "RK23", "DOP853", "LSODA", "Radau", "BDF"] = Field("LSODA", description="stiff system")
    rtol: Real(gt=0) = 1.0e-3
    fit_column: Literal["ca_mean", "ca_steady"] = "ca_mean"
    n_boot: PosInt = 2000
    params: dict[str, Real()] = Field(default_factory=dict, description="SynapseParams overrides")
    resources: Resources = Field(default_factory=Resources)

    @model_validator(mode="after")
    def _warmup_before_end(self):
        if self.warmup_s >= self.duration_s:
            raise ValueError(f"warmup_s ({self.warmup_s}) must be shorter than duration_s ({self.duration_s})")
        return self


SWEEP_KEYS = ("m_scale", "m_scale_factor", "alpha", "tau")
MAX_NAME_BYTES = 255  # a file name on Linux and macOS file systems: a run folder <preset>@<key>=<value>


class SweepEntry(Section):
    key: Literal["m_scale", "m_scale_factor", "alpha", "tau"]
    values: Annotated[list[Real(gt=0)], Field(min_length=1), AfterValidator(unique_items)]
    models: Annotated[list[ModelName], Field(min_length=1), AfterValidator(unique_items)]

    @model_validator(mode="after")
    def _values_in_range(self):
        for value in self.values:  # the same bounds as tasks.<task>.attention.<key>
            try:
                AttentionConfig.model_validate({self.key: value})
            except ValidationError as exc:
                raise ValueError(f"{self.key} {describe_error(exc).split(': ', 1)[1]}") from None
        return self

    @model_validator(mode="after")
    def _presets_use_the_key(self):
        # deferred: the preset registry imports torch; the configuration is read without it (the workflow, the tables)
        from astromorphic.presets import attention_keys_used

        unaffected = [m for m in self.models if self.key not in attention_keys_used(m)]
        if unaffected:
            raise ValueError(f"models {unaffected} do not use {self.key}: their runs would equal the plain preset; "
                             "remove them from this entry")
        return self

    @model_validator(mode="after")
    def _names_fit_a_folder(self):
        for model in self.models:
            for value in self.values:
                name = format_model_name(model, {self.key: value})
                if len(name.encode()) > MAX_NAME_BYTES:
                    raise ValueError(f"{self.key} value {value!r}: the run folder {name[:40]}... is longer than "
                                     f"{MAX_NAME_BYTES} bytes; write the value shorter")
        return self


class SweepConfig(Section):
    """Attention constants swept one key at a time: results/runs/<task>/<model>@<key>=<value>/seed<k>/."""

    tasks: Annotated[list[Literal[TASKS]], AfterValidator(unique_items)] = []
    seeds: Optional[Annotated[list[Seed], Field(min_length=1), AfterValidator(unique_items)]] = Field(
        None, description="null = the top-level seeds"
    )
    grid: list[SweepEntry] = []


FIG4_VARIANTS = ("astro", "astro-no-relpos", "astro-no-nonlin", "linearized")


class AblationConfig(Section):
    """Extra runs that take one more mechanism away: the Fig. 4 variants without the absolute position
    embedding (run name ``<preset>@position_embedding=none``), since with it ``astro-no-relpos`` still sees
    positions (SPEC decision 10)."""

    no_position_embedding: StrictBool = Field(False, description="run the variants with position_embedding: none")
    tasks: Annotated[list[Literal[TASKS]], AfterValidator(unique_items)] = list(FIG4_PANELS)
    models: Annotated[list[ModelName], AfterValidator(unique_items)] = list(FIG4_VARIANTS)


class PipelineConfig(Section):
    """A whole configuration file."""

    label: str = Field("", description='printed on every table and figure (e.g. "quick synthetic")')
    synthetic: StrictBool = Field(False, description="the tasks use synthetic stand-in data")
    results_dir: str = Field("results", description="outputs of the library's stand-alone commands")
    data_dir: Optional[str] = Field(None, description="local copies in the official formats, one folder per task")
    records: Optional[str] = Field(
        None,
        description="folder of committed run records (<folder>/runs/<task>/<model>/seed<k>/: run.json, metrics.csv); "
        "a run whose finished record there matches the configuration is aggregated from it and not trained",
    )
    records_strict: StrictBool = Field(
        False, description="retrain runs whose record was made by other code (another code_hash) instead of using it"
    )
    seeds: Annotated[list[Seed], Field(min_length=1), AfterValidator(unique_items)] = [0, 1, 2]
    models: Annotated[list[ModelName], Field(min_length=1), AfterValidator(unique_items)] = list(DEFAULT_MODELS)
    lm_extra_models: Annotated[list[ModelName], AfterValidator(unique_items)] = Field(
        list(DEFAULT_LM_EXTRA_MODELS), description="presets trained on the language-modelling task only"
    )
    tasks: Tasks = Field(default_factory=lambda: Tasks(imdb={}, cifar10={}, wikitext2={}))
    report: ReportConfig = Field(default_factory=ReportConfig)
    bench: BenchConfig = Field(default_factory=BenchConfig)
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)
    sweep: SweepConfig = Field(default_factory=SweepConfig)
    ablation: AblationConfig = Field(default_factory=AblationConfig)

    @field_validator("tasks", mode="before")
    @classmethod
    def _tasks_mapping(cls, value: Any) -> Any:
        return {} if value is None else value

    @model_validator(mode="after")
    def _task_models_exist_for_their_task(self):
        # deferred: the preset registry imports torch; the configuration is read without it (the workflow, the tables)
        from astromorphic.presets import preset_names

        for task in TASKS:
            section = getattr(self.tasks, task, None)
            for name in (section.models or []) if section is not None else []:
                if name not in preset_names(task):
                    raise ValueError(f"tasks.{task}.models: {name!r} is not defined for {task} "
                                     f"(presets: {', '.join(preset_names(task))})")
        return self


# ---------------------------------------------------------------------------------------------- validation


def describe_error(error: ValidationError) -> str:
    """``key.path: what is wrong, got VALUE`` for the first error of a pydantic validation."""
    first = error.errors()[0]
    loc = [str(p) for p in first["loc"] if not (isinstance(p, str) and p in ("int", "float", "function-after"))]
    where = ".".join(loc) or "<config>"
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        return f"{where}: unknown key (check its spelling; see the schema for the known keys)"
    if first["type"] == "missing":
        return f"{where}: required"
    given = first.get("input")
    shown = "" if isinstance(given, dict) or "got" in msg else f", got {given!r}"
    return f"{where}: {msg}{shown}"


def validate_config(config: dict | None) -> dict:
    """The configuration checked and with every default filled in, as plain data; ``ConfigError`` names the key."""
    if config is not None and not isinstance(config, dict):
        raise ConfigError(f"<config>: must be a mapping, got {type(config).__name__}")
    try:
        model = PipelineConfig.model_validate(config or {})
    except ValidationError as exc:
        raise ConfigError(describe_error(exc)) from None
    out = model.model_dump(mode="python")
    out["tasks"] = {t: _plain(v) for t, v in out["tasks"].items() if v is not None}
    return _plain(out)


def _plain(value: Any) -> Any:
    """Tuples as lists, so that a dumped configuration reads back equal from YAML or JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def load_config(path: str | Path, overrides: list[str] | None = None) -> dict:
    """Read a YAML configuration, lay ``--set`` overrides over it and validate it (defaults filled in)."""
    return validate_config(apply_overrides(read_config_file(path), overrides or []))


def read_config_file(path: str | Path) -> dict:
    """The mapping a YAML configuration file holds, unvalidated; :class:`ConfigError` naming the file (and the line)
    when it cannot be read, is not YAML, writes a key twice in one mapping, or is not a mapping."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: YAML syntax error{where}: {problem}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: the configuration must be a mapping, got {type(raw).__name__}")
    return raw or {}


def parse_assignment(item: str) -> tuple[list[str], Any]:
    """``"tasks.imdb.train.lr=1e-4"`` -> (["tasks", "imdb", "train", "lr"], 0.0001); the value is read as YAML."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. tasks.imdb.train.lr=1e-4")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"--set {item!r}: the value is not valid YAML") from None
    return key.strip().split("."), value


def apply_overrides(config: dict, assignments: list[str]) -> dict:
    """``["tasks.imdb.train.lr=1e-4", ...]`` laid over ``config`` (a copy); validate the result afterwards."""
    out = copy.deepcopy(config)
    for item in assignments or []:
        parts, value = parse_assignment(item)
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {'.'.join(parts[: i + 1])} is not a mapping")
            node = child
        node[parts[-1]] = value
    return out


def resolve_task_config(config: dict | None, task: str) -> dict:
    """The task's ``data``, ``model``, ``attention``, ``train`` and ``resources`` with defaults filled in.

    A task the configuration does not name gets the paper's set-up.
    """
    if task not in TASKS:
        raise ConfigError(f"task {task!r} unknown; expected one of {', '.join(TASKS)}")
    given = ((config or {}).get("tasks") or {}).get(task)
    try:
        section = TASK_MODELS[task].model_validate(given or {})
    except ValidationError as exc:
        raise ConfigError(f"tasks.{task}.{describe_error(exc)}") from None
    return _plain(section.model_dump(mode="python"))


def validate_run(config: dict, task: str, model: str) -> dict:
    """Check that ``task``/``model`` can run under ``config``; return the resolved task section."""
    if task not in TASKS:
        raise ConfigError(f"task {task!r} unknown; expected one of {', '.join(TASKS)}")
    validated = validate_config(config)
    # deferred: the preset registry imports torch; the configuration is read without it (the workflow, the tables)
    from astromorphic.presets import preset_names, spec_for

    if model not in preset_names(task):
        known = preset_names(None)
        what = f"is not defined for task {task!r}" if model in known else "unknown"
        raise ConfigError(f"model {model!r} {what}; expected one of {', '.join(preset_names(task))}")
    cfg = validated["tasks"].get(task) or resolve_task_config({}, task)
    try:
        spec_for(model, cfg["attention"], cfg["model"]["d_model"])
    except ValueError as exc:
        raise ConfigError(f"tasks.{task}.attention: {exc}") from None
    return cfg


def require_device(cfg: dict, task: str) -> None:
    """Before a run or a measurement starts (not when a configuration is read: a login node without a GPU plans
    GPU runs): a configured CUDA device must exist here."""
    if cfg["train"]["device"] == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"tasks.{task}.train.device: 'cuda' but no CUDA device is available here; "
                              "set it to cpu or auto, or run on a machine with a GPU")


# ---------------------------------------------------------------------------------------------- derived rules

# Keys of a task section that change no number of a run. Reporting keys are read by the tables only;
# runtime keys say where and how fast a run goes (a checkpoint stays valid when they change; device and TF32
# change numbers at the rounding level of another device's arithmetic, and the run record stores both).
REPORTING_KEYS = {"train": ("threshold",)}
RUNTIME_KEYS = {"train": ("threads", "device", "sync_every", "tf32", "fill_uninitialized_memory")}


# Options added after runs were recorded, as (section, switch, governed keys...): while the switch is null, the
# switch and the keys it governs are left out of the run section, so a run that does not use them keeps its
# fingerprint. The learning curve measures and does not change what a run computes (it evaluates in evaluation
# mode and draws no random numbers); the language model's compacted output vocabulary and held-out text change
# the data, and are in the fingerprint whenever they are set; a compiled model (train.compile) rounds in fused
# kernels, so a compiled run has a fingerprint of its own. A validation split (data.valid_size) changes the
# training data and the selected epoch, early stopping (train.early_stopping) the epochs a run trains.
OPTIONAL_KEYS = (
    ("train", "curve_every_steps", "curve_samples"),
    ("train", "compile"),
    ("data", "compact_vocab"),
    ("data", "held_out"),
    ("data", "valid_size", "valid_seed"),
    ("train", "early_stopping"),
)


def run_section(task_cfg: dict, *, runtime: bool = True) -> dict:
    """The part of a resolved task section that a training run reads: no ``resources``, ``seeds`` or ``models``
    (scheduling), no reporting keys, and without the runtime keys when ``runtime`` is false (the fingerprint)."""
    out = {k: copy.deepcopy(v) for k, v in task_cfg.items() if k not in ("resources", "seeds", "models")}
    for section, switch, *governed in OPTIONAL_KEYS:
        if section in out and out[section].get(switch) is None:
            for name in (switch, *governed):
                out[section].pop(name, None)
    drop = [REPORTING_KEYS] + ([] if runtime else [RUNTIME_KEYS])
    for keys in drop:
        for section, names in keys.items():
            for name in names:
                out.get(section, {}).pop(name, None)
    return out


def models_for_task(config: dict, task: str) -> list[str]:
    """Plain presets trained on ``task``: ``tasks.<task>.models`` when set, else ``models``, plus
    ``lm_extra_models`` for the LM, those defined for it."""
    # deferred: the preset registry imports torch; the configuration is read without it (the workflow, the tables)
    from astromorphic.presets import preset_names

    task_models = (((config.get("tasks") or {}).get(task)) or {}).get("models")
    if task_models:
        return list(task_models)
    listed = list(config.get("models") or DEFAULT_MODELS)
    if task in LM_TASKS:
        listed += list(config.get("lm_extra_models") or [])
    valid = set(preset_names(task))
    return [m for m in dict.fromkeys(listed) if m in valid]


# Keys a run name may override (``astro@m_scale=32``, ``astro@position_embedding=none``) and their section.
RUN_NAME_KEYS = {**{key: "attention" for key in SWEEP_KEYS}, "position_embedding": "model"}


def seeds_for(config: dict, task: str) -> list[int]:
    """The seeds of ``task``'s runs: ``tasks.<task>.seeds``, else the top-level ``seeds``."""
    task_seeds = (((config.get("tasks") or {}).get(task)) or {}).get("seeds")
    return list(task_seeds or config.get("seeds") or PipelineConfig.model_fields["seeds"].default)


def ablation_models(config: dict, task: str) -> list[str]:
    """Run names of the ablation runs on ``task`` (``<preset>@position_embedding=none``)."""
    ablation = config.get("ablation") or {}
    if not ablation.get("no_position_embedding") or task not in ablation.get("tasks", []):
        return []
    # deferred: the preset registry imports torch; the configuration is read without it (the workflow, the tables)
    from astromorphic.presets import preset_names

    valid = set(preset_names(task))
    return [f"{m}@position_embedding=none" for m in ablation.get("models", []) if m in valid]


def with_run_name_overrides(config: dict, task: str, overrides: dict) -> dict:
    """``config`` (a copy) with the keys a run name overrides put into their sections of ``tasks.<task>``."""
    out = copy.deepcopy(config)
    task_section = out.setdefault("tasks", {}).setdefault(task, {}) or {}
    out["tasks"][task] = task_section
    for key, value in overrides.items():
        if key not in RUN_NAME_KEYS:
            raise ConfigError(f"run name: {key!r} cannot be overridden; expected one of {', '.join(RUN_NAME_KEYS)}")
        task_section.setdefault(RUN_NAME_KEYS[key], {})[key] = value
    return out


def threshold(config: dict, task: str) -> float:
    """The learning-speed threshold of ``task``: ``report.threshold``, else ``tasks.<task>.train.threshold``."""
    value = (config.get("report") or {}).get("threshold")
    if value is None:
        value = resolve_task_config(config, task)["train"]["threshold"]
    return float(value if value is not None else TrainConfig.model_fields["threshold"].default)


def train_seq_len(task_cfg: dict) -> int | None:
    """Sequence length the model sees in training: ``data.seq_len``, else ``model.max_len`` (LM and IMDB)."""
    seq_len = task_cfg.get("data", {}).get("seq_len")
    return int(seq_len) if seq_len is not None else task_cfg.get("model", {}).get("max_len")


# ---------------------------------------------------------------------------------------------- JSON schema


def json_schema() -> dict:
    """The JSON schema of a configuration file, generated from :class:`PipelineConfig`."""
    schema = PipelineConfig.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m astromorphic.config", description=__doc__.split("\n")[0])
    parser.add_argument("--write-schema", action="store_true", help=f"rewrite {SCHEMA_FILE.name} from the models")
    parser.add_argument("--check", metavar="CONFIG", help="validate a configuration file and print it resolved")
    args = parser.parse_args(argv)
    if args.write_schema:
        write_text(SCHEMA_FILE, schema_text())
        print(f"wrote {SCHEMA_FILE}")
    if args.check:
        try:
            print(yaml.safe_dump(load_config(args.check), sort_keys=False))
        except ConfigError as exc:
            print(f"error: {exc}")
            return 2
    return 0

