"""The task sections of the configuration (``tasks.<task>``): data, model, attention, train and resources, one
pydantic model each, with the paper's values as the defaults of each task (SPEC.md section 3). The rest of the
configuration, its loading and validation, and the rules derived from it: :mod:`astromorphic.config`, which
re-exports every name of this module."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Optional

from pydantic import AfterValidator, Field, StrictBool, field_validator, model_validator

from astromorphic import tasks as task_registry
from astromorphic.config.types import (  # noqa: F401
    TASKS,
    ModelName,
    NonNegInt,
    PosInt,
    Real,
    Seed,
    Section,
    unique_items,
)


# ---------------------------------------------------------------------------------------------- task: data


class _DataOptions(Section):
    """Options of ``astromorphic prepare`` (astromorphic.data). None = the default for the chosen source:
    ``REAL`` for downloads and local copies, ``REAL`` updated by ``SYNTHETIC`` for the stand-ins."""

    REAL: ClassVar[dict[str, Any]] = {}
    SYNTHETIC: ClassVar[dict[str, Any]] = {}

    source: Optional[str] = Field(None, description="synthetic, a download (hf, torchvision) or KIND:FOLDER")
    seed: Optional[Seed] = Field(None, description="synthetic generators and random subsets")
    n_train: Optional[PosInt] = None
    n_test: Optional[PosInt] = None
    network_timeout: Optional[Real(gt=0)] = Field(None, description="seconds to wait for a download host")

    @classmethod
    def defaults_for(cls, source_kind: str) -> dict[str, Any]:
        """Every option's value for a source kind when the configuration leaves it out (or null)."""
        out = {name: None for name in cls.model_fields if name != "source"}
        out.update({"seed": 0, "network_timeout": 10.0})
        out.update(cls.REAL)
        if source_kind == "synthetic":
            out.update(cls.SYNTHETIC)
        return out


class _ClassifierData(_DataOptions):
    """Options of the classifiers' data: a validation split held out of the training data."""

    valid_size: Optional[PosInt] = Field(
        None, description="validation examples held out of the training split (class-balanced; IMDB: whole movies); "
        "null = no validation split (selection on the test split)"
    )
    valid_seed: Optional[Seed] = Field(None, description="the draw of the validation split; null = 0")


class ImdbData(_ClassifierData):
    REAL: ClassVar[dict[str, Any]] = {
        "seq_len": 400,
        "truncation": "head",  # keep the first seq_len tokens ("tail": the last)
        "padding": "right",
        "min_freq": 2,  # vocabulary: words seen at least this often in the training split
        "max_vocab": 30000,  # vocabulary cap, the two special tokens included; 0: no cap
        "glove_dim": 300,
        "hf_dataset": "stanfordnlp/imdb",
        "hf_revision": "e6281661ce1c48d982bc483cf8a173c1bbeb5d31",
    }
    SYNTHETIC: ClassVar[dict[str, Any]] = {
        "seq_len": 64, "n_train": 2000, "n_test": 1000, "vocab_size": 200, "min_freq": 1, "max_vocab": 0,
    }  # fmt: skip

    seq_len: Optional[PosInt] = None
    truncation: Optional[Literal["head", "tail"]] = None
    padding: Optional[Literal["right", "left"]] = None
    lowercase: Optional[StrictBool] = Field(None, description="null: lower-case unless GloVe vectors are used")
    min_freq: Optional[PosInt] = None
    max_vocab: Optional[NonNegInt] = None
    glove: Optional[str] = Field(None, description="GloVe vectors (.txt, .zip or .gz)")
    glove_dim: Optional[PosInt] = None
    vocab_size: Optional[PosInt] = Field(None, description="synthetic only: words of the generator")
    hf_dataset: Optional[str] = None
    hf_revision: Optional[str] = None
    hf_cache_dir: Optional[str] = None

    @field_validator("vocab_size")
    @classmethod
    def _generator_fills_it(cls, value):
        # deferred: importing the data package imports this configuration (its models check the data options)
        from astromorphic.data.synthetic import IMDB_VOCAB_RANGE

        low, high = IMDB_VOCAB_RANGE
        if value is not None and not low <= value <= high:
            raise ValueError(f"the synthetic generator fills {low}..{high} words, got {value}")
        return value


class Cifar10Data(_ClassifierData):
    REAL: ClassVar[dict[str, Any]] = {"download": True, "verify_md5": True}
    SYNTHETIC: ClassVar[dict[str, Any]] = {"n_train": 2000, "n_test": 1000}

    root: Optional[str] = Field(None, description="torchvision download folder; null: ~/.cache/astromorphic")
    download: Optional[StrictBool] = None
    verify_md5: Optional[StrictBool] = None


class WikiText2Data(_DataOptions):
    REAL: ClassVar[dict[str, Any]] = {
        "tokenizer": "auto",
        "bpe_vocab_size": 8192,
        "bpe_min_frequency": 2,
        "hf_dataset": "Salesforce/wikitext",
        "hf_config": "wikitext-2-raw-v1",
        "hf_revision": "b08601e04326c79dfdd32d625aee71d232d685c3",
    }
    SYNTHETIC: ClassVar[dict[str, Any]] = {
        "tokenizer": "word", "bpe_vocab_size": 512, "n_train": 100_000, "n_valid": 10_000, "n_test": 10_000,
    }  # fmt: skip

    tokenizer: Optional[Literal["auto", "gpt2", "bpe", "word"]] = None
    bpe_vocab_size: Optional[PosInt] = None
    bpe_min_frequency: Optional[PosInt] = None
    gpt2_tokenizer_file: Optional[str] = None
    gpt2_dir: Optional[str] = Field(None, description="folder with the released GPT-2 encoder.json and vocab.bpe")
    split_map: Optional[dict[Literal["train", "valid", "test"], Literal["train", "valid", "test"]]] = Field(
        None, description="e.g. {train: valid} when wiki.train.tokens is missing (then not held out)"
    )
    held_out: Optional[Real(gt=0, lt=1)] = Field(
        None, description="with split_map: the fraction of the copied split's words (whole articles at its end) "
        "kept out of the copy, e.g. {train: valid} with 0.1 trains on the first 90 % of the validation text"
    )
    compact_vocab: Optional[StrictBool] = Field(
        None, description="output layer over the tokens of the training text plus one unknown-token id"
    )
    n_valid: Optional[PosInt] = None
    seq_len: Optional[PosInt] = Field(None, description="recorded only: training cuts the streams into windows")
    hf_dataset: Optional[str] = None
    hf_config: Optional[str] = None
    hf_revision: Optional[str] = None
    hf_cache_dir: Optional[str] = None


# ---------------------------------------------------------------------------------------------- task: model


class _ModelSection(Section):
    """Architecture (astromorphic.models). Post-LN blocks of attention + FFN (Eq. 18)."""

    d_model: PosInt
    n_layers: PosInt
    n_heads: PosInt
    max_len: PosInt = Field(description="positions the model can take (absolute and relative position)")
    ffn_mult: Real(gt=0) = 4
    dropout: Real(ge=0, lt=1) = 0.1
    activation: Literal["gelu", "relu"] = "gelu"
    position_embedding: Literal["learned", "none"] = Field(
        "learned", description="absolute position embedding added to the tokens: learned, or none"
    )
    chunk_size: Optional[PosInt] = Field(None, description="causal attention chunk; null = automatic")

    @model_validator(mode="after")
    def _heads_divide_width(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        return self


class ImdbModel(_ModelSection):
    d_model: PosInt = 128
    n_layers: PosInt = 1
    n_heads: PosInt = 4
    max_len: PosInt = 400
    freeze_embedding: StrictBool = Field(True, description="keep GloVe vectors fixed (when the data have them)")


class Cifar10Model(_ModelSection):
    d_model: PosInt = 256
    n_layers: PosInt = 8
    n_heads: PosInt = 8
    max_len: PosInt = 256
    patch: PosInt = 2
    stem_channels: PosInt = 64
    image_size: PosInt = 32

    @model_validator(mode="after")
    def _patches_fit(self):
        n_patches = (self.image_size // self.patch) ** 2
        if n_patches > self.max_len:
            raise ValueError(f"patch ({self.patch}) gives {n_patches} patches, more than max_len ({self.max_len})")
        return self


class WikiText2Model(_ModelSection):
    d_model: PosInt = 768
    n_layers: PosInt = 1
    n_heads: PosInt = 6
    max_len: PosInt = 512
    tie_weights: StrictBool = Field(True, description="output layer shares the embedding (as in GPT-2)")


# ---------------------------------------------------------------------------------------------- task: attention


class AttentionConfig(Section):
    """The astromorphic constants (astromorphic.presets resolves them into an AttentionSpec)."""

    alpha: Real(gt=0, le=1) = Field(0.25, description="presynaptic exponent (Eq. 14)")
    m_scale_factor: Real(gt=0) = Field(500.0, description="m = m_scale_factor * d_model unless m_scale is set")
    m_scale: Optional[Real(gt=0)] = Field(None, description="m itself; null = m_scale_factor * d_model")
    tau: Real(gt=0) = Field(16.0, description="decay length of the relative-position matrix P")
    position: Literal["exp", "linear"] = "exp"


class LMAttention(AttentionConfig):
    m_scale_factor: Real(gt=0) = 100.0


# ---------------------------------------------------------------------------------------------- task: train


class Augment(Section):
    """CIFAR-10 training augmentation; ``{}`` switches it off."""

    random_crop_padding: NonNegInt = 0
    hflip: StrictBool = False


class TrainConfig(Section):
    """Optimisation (AdamW) and run-time settings of ``astromorphic train``."""

    lr: Real(gt=0) = 1.0e-3
    batch_size: PosInt = 32
    epochs: PosInt = 10
    weight_decay: Real(ge=0) = 0.01
    betas: tuple[Real(ge=0, lt=1), Real(ge=0, lt=1)] = (0.9, 0.999)
    eps: Real(gt=0) = 1.0e-8
    schedule: Literal["constant", "cosine"] = "constant"
    warmup_epochs: Real(ge=0) = Field(0.0, description="linear warm-up in epochs (may be fractional) ...")
    warmup_steps: Optional[NonNegInt] = Field(None, description="... or in optimiser steps (wins when set)")
    min_lr_ratio: Real(ge=0, le=1) = Field(0.0, description="cosine floor, as a fraction of lr")
    grad_clip: Optional[Real(gt=0)] = Field(None, description="max global gradient norm; null = off")
    threads: Optional[PosInt] = Field(None, description="torch threads; null = resources.threads")
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    dtype: Literal["float32", "bfloat16"] = Field("float32", description="autocast precision of the model")
    tf32: StrictBool = Field(True, description="CUDA: TensorFloat-32 matrix products in float32 (ignored on CPU)")
    compile: Optional[Literal["default", "reduce-overhead", "max-autotune"]] = Field(
        None, description="torch.compile the model's training forward with this mode; null = eager (the default)"
    )
    fill_uninitialized_memory: StrictBool = Field(
        True, description="deterministic mode fills new tensors (NaN); off saves a fill per tensor, same numbers"
    )
    sync_every: Optional[PosInt] = Field(
        None, description="read losses and gradient norms back every n steps; null: 1 on the CPU, 50 on CUDA"
    )
    eval_batch_size: Optional[PosInt] = Field(None, description="null = batch_size")
    early_stopping: Optional[PosInt] = Field(
        None, description="with a validation split: stop when valid_acc has not improved for this many epochs "
        "(epochs is then the maximum); null = off"
    )
    curve_every_steps: Optional[PosInt] = Field(
        None, description="learning curve: evaluate on a fixed held-out subset (the validation split when there is "
        "one) every n optimiser steps; null = off"
    )
    curve_samples: PosInt = Field(
        1000, description="learning curve: examples of the fixed subset (LM: windows of the validation split)"
    )
    threshold: Optional[Real(gt=0, le=1)] = Field(0.85, description="learning-speed threshold (tables only)")
    max_train_batches: Optional[PosInt] = Field(None, description="cap on optimiser steps per epoch")
    max_eval_samples: Optional[PosInt] = Field(None, description="classifiers: evaluate the first n only")
    max_eval_tokens: Optional[PosInt] = Field(None, description="LM: evaluate the first n tokens only")
    probe_samples: PosInt = Field(8, description="fixed batch of the attention probe")
    audit_samples: PosInt = Field(2, description="LM causality audit: windows")
    audit_tol: Real(ge=0) = Field(1.0e-5, description="LM causality audit: largest logit change counted causal")


class ImdbTrain(TrainConfig):
    lr: Real(gt=0) = 1.0e-5
    batch_size: PosInt = 64
    epochs: PosInt = 120


class Cifar10Train(TrainConfig):
    lr: Real(gt=0) = 1.0e-3
    batch_size: PosInt = 32
    epochs: PosInt = 250
    augment: Augment = Field(default_factory=lambda: Augment(random_crop_padding=4, hflip=True))


class WikiText2Train(TrainConfig):
    lr: Real(gt=0) = 1.0e-5
    batch_size: PosInt = 24
    epochs: PosInt = 50
    probe_samples: PosInt = 4


class Resources(Section):
    """Scheduling only (local cores, SLURM request); never part of a run's numbers."""

    threads: PosInt = 1
    mem_mb: PosInt = 2000
    runtime: PosInt = Field(30, description="minutes")
    gpu: NonNegInt = 0
    runs_per_gpu: PosInt = Field(
        1, description="training runs that share one GPU, in parallel (on SLURM: one job, one allocation); with "
        "gpu: 0, training runs per SLURM job"
    )


# ---------------------------------------------------------------------------------------------- tasks


class TaskConfig(Section):
    seeds: Optional[Annotated[list[Seed], Field(min_length=1), AfterValidator(unique_items)]] = Field(
        None, description="seeds of this task's runs; null = the top-level seeds (scheduling: not part of a run)"
    )
    models: Optional[Annotated[list[ModelName], Field(min_length=1), AfterValidator(unique_items)]] = Field(
        None, description="presets trained on this task; null = the top-level models (and lm_extra_models for the "
        "language model) (scheduling: not part of a run)"
    )
    data: _DataOptions
    model: _ModelSection
    attention: AttentionConfig = Field(default_factory=AttentionConfig)
    train: TrainConfig
    resources: Resources = Field(default_factory=Resources)

    @model_validator(mode="after")
    def _fill_and_cross_check(self):
        train = self.train
        if train.threads is None:
            train.threads = self.resources.threads
        if train.eval_batch_size is None:
            train.eval_batch_size = train.batch_size
        if train.early_stopping is not None and getattr(self.data, "valid_size", 0) is None:
            raise ValueError("train.early_stopping stops on the validation accuracy: set data.valid_size (a "
                             "validation split) or leave early_stopping null")
        if hasattr(self.data, "seq_len"):
            if self.data.seq_len is None:  # the model's length unless the data say otherwise (paper: equal)
                self.data.seq_len = self.model.max_len
            if self.data.seq_len > self.model.max_len:
                raise ValueError(f"data.seq_len ({self.data.seq_len}) exceeds model.max_len ({self.model.max_len})")
        return self


class ImdbTask(TaskConfig):
    data: ImdbData = Field(default_factory=ImdbData)
    model: ImdbModel = Field(default_factory=ImdbModel)
    train: ImdbTrain = Field(default_factory=ImdbTrain)


class Cifar10Task(TaskConfig):
    data: Cifar10Data = Field(default_factory=Cifar10Data)
    model: Cifar10Model = Field(default_factory=Cifar10Model)
    train: Cifar10Train = Field(default_factory=Cifar10Train)


class WikiText2Task(TaskConfig):
    data: WikiText2Data = Field(default_factory=WikiText2Data)
    model: WikiText2Model = Field(default_factory=WikiText2Model)
    attention: LMAttention = Field(default_factory=LMAttention)
    train: WikiText2Train = Field(default_factory=WikiText2Train)


# tasks.<name> -> its section class, named by the registry
TASK_MODELS: dict[str, type[TaskConfig]] = {t.name: globals()[t.config_section] for t in task_registry.REGISTRY}


class Tasks(Section):
    """The tasks to run: each one named is run, its missing keys filled from the paper."""

    imdb: Optional[ImdbTask] = None
    cifar10: Optional[Cifar10Task] = None
    wikitext2: Optional[WikiText2Task] = None

    @model_validator(mode="before")
    @classmethod
    def _named_means_run(cls, value: Any) -> Any:
        if isinstance(value, dict):  # `imdb:` with nothing after it (None) still names the task
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _at_least_one(self):
        if not any(getattr(self, t) is not None for t in TASKS):
            raise ValueError("name at least one task (imdb, cifar10, wikitext2)")
        return self
