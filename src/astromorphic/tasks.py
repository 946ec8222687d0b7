"""The registry of tasks: one frozen record per task, in canonical order (the order of every table, figure and
configuration listing), naming everything that differs between tasks.

This module imports nothing from the package (standard library only), so that anything, the configuration
and the workflow included, can read it without an import cycle. Classes are named by string and resolved by
the module that owns them (:mod:`astromorphic.models`, :mod:`astromorphic.data.batches`,
:mod:`astromorphic.config.sections`); ``tests/test_tasks.py`` checks that every name resolves.

Adding a task: see the checklist "Adding a task" in ``docs/architecture.md``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    name: str  # the key in configurations, run folders (results/runs/<name>/) and tables
    display_name: str  # in table rows and figure titles
    data_module: str  # dotted path of the module that prepares the task's data (its ``prepare``)
    task_data: str  # class in astromorphic.data.batches: batches, loss, metrics, probe batch of a run
    model_class: str  # class in astromorphic.models
    config_section: str  # pydantic class in astromorphic.config.sections: the section ``tasks.<name>``
    language_model: bool  # causal LM: perplexities, causality audit, ``lm_extra_models``, LM curves figure
    selection_metric: str  # the metrics.csv column that picks a run's ``best`` epoch (from epoch 1)
    selection_higher_is_better: bool  # best = the highest value of selection_metric (else the lowest)
    # With a validation split (data.valid_size), the column that picks ``best`` and that early stopping watches
    # instead (same direction); None: selection_metric is already measured on held-out data (the LM's).
    valid_selection_metric: str | None
    metric: str  # the reported test metric (Table I, controls, sweep): a metrics.csv column
    supplementary_table: str  # the table of its hyper-parameters (tableS1, ...)
    fig4_panel: str | None  # Fig. 4 panel letter of its learning curves; None: no panel
    cost_unit: str  # what throughput counts: "samples" or "tokens"
    paper_train_units: int  # cost_unit per training epoch at paper scale (projected run times)
    paper_eval_units: int  # cost_unit per evaluation at paper scale
    speedup_pairs: tuple[tuple[str, str], ...]  # (fast, slow) presets of the paper's learning-speed statements
    # The default equivalence margin of the findings page (report.equivalence_margin): percentage points of
    # accuracy for a classifier; for a language model a relative perplexity ratio (0.05: within a factor 1.05)
    equivalence_margin: float
    data_keys: tuple[str, ...] = ()  # run.json keys shown in its supplementary table besides the config's
    evaluated_splits: tuple[str, ...] = ("test",)  # the splits its runs evaluate (data provenance line); a
    # classifier prepared with a validation split evaluates it too (the prepared data's manifest says so)
    n_classes: int | None = None  # classifiers: the number of classes (speed tests on random inputs)
    default_vocab_size: int | None = None  # token inputs: vocabulary of speed tests when the data name none
    fixed_seq_len: int | None = None  # inputs that are not token windows: the sequence length the model sees

    @property
    def tokenized(self) -> bool:
        """Whether its inputs are tokens (a tokenizer to report)."""
        return "data_used.tokenizer" in self.data_keys

    @property
    def metric_unit(self) -> str:
        """The unit a difference of :attr:`metric` is reported in."""
        return "perplexity" if self.language_model else "accuracy (pp)"


# The paper's speed-up statements: (fast, slow) pairs of the Fig. 4 variants.
_FIG4_SPEEDUPS = (("astro", "linearized"), ("astro", "astro-no-relpos"), ("astro-no-relpos", "linearized"))

REGISTRY: tuple[Task, ...] = (
    Task(
        name="imdb", display_name="IMDB", data_module="astromorphic.data.imdb", task_data="TextData",
        model_class="TextClassifier", config_section="ImdbTask", language_model=False,
        selection_metric="test_acc", selection_higher_is_better=True, valid_selection_metric="valid_acc",
        metric="test_acc", supplementary_table="tableS1", fig4_panel="a", cost_unit="samples",
        paper_train_units=25_000, paper_eval_units=25_000, speedup_pairs=_FIG4_SPEEDUPS,
        equivalence_margin=1.0,
        data_keys=("data_used.embedding", "data_used.tokenizer"), n_classes=2, default_vocab_size=20_000,
    ),
    Task(
        name="cifar10", display_name="CIFAR-10", data_module="astromorphic.data.cifar10", task_data="ImageData",
        model_class="VisionClassifier", config_section="Cifar10Task", language_model=False,
        selection_metric="test_acc", selection_higher_is_better=True, valid_selection_metric="valid_acc",
        metric="test_acc", supplementary_table="tableS2", fig4_panel="b", cost_unit="samples",
        paper_train_units=50_000, paper_eval_units=10_000, speedup_pairs=_FIG4_SPEEDUPS,
        equivalence_margin=2.0,
        data_keys=("data_used.embedding",), n_classes=10, fixed_seq_len=256,  # 16 x 16 patches
    ),
    Task(
        # Token counts of the word-level release; GPT-2 tokens of the raw text are about 15 % more.
        name="wikitext2", display_name="WikiText-2", data_module="astromorphic.data.wikitext2", task_data="LMData",
        model_class="DecoderLM", config_section="WikiText2Task", language_model=True,
        selection_metric="valid_ppl", selection_higher_is_better=False, valid_selection_metric=None,
        metric="test_ppl",
        supplementary_table="tableS3", fig4_panel=None, cost_unit="tokens",
        paper_train_units=2_088_628, paper_eval_units=217_646 + 245_569, speedup_pairs=(),
        equivalence_margin=0.05,
        data_keys=("data_used.embedding", "data_used.tokenizer"), evaluated_splits=("valid", "test"),
        default_vocab_size=50_257,  # GPT-2's
    ),
)

TASK_NAMES: tuple[str, ...] = tuple(t.name for t in REGISTRY)  # canonical order
BY_NAME: dict[str, Task] = {t.name: t for t in REGISTRY}
DISPLAY_NAMES: dict[str, str] = {t.name: t.display_name for t in REGISTRY}
LM_TASKS: tuple[str, ...] = tuple(t.name for t in REGISTRY if t.language_model)
CLASSIFIERS: tuple[str, ...] = tuple(t.name for t in REGISTRY if not t.language_model)
FIG4_PANELS: dict[str, str] = {t.name: t.fig4_panel for t in REGISTRY if t.fig4_panel}
SUPPLEMENTARY_TABLES: dict[str, str] = {t.supplementary_table: t.name for t in REGISTRY}  # table name -> task


def get(name: str) -> Task:
    """The record of task ``name``; a ValueError naming the known tasks otherwise."""
    try:
        return BY_NAME[name]
    except (KeyError, TypeError):
        raise ValueError(f"task {name!r} unknown; expected one of {', '.join(TASK_NAMES)}") from None


def in_order(names) -> list[str]:
    """The known task names among ``names``, in canonical order."""
    present = set(names)
    return [t for t in TASK_NAMES if t in present]
