"""The model registry: preset name -> attention spec, and which paper mechanisms each uses (Table II).

Presets (``PRESETS``):

=====================  ==========================================================================
vanilla                softmax attention (torch SDPA) in the same post-LN block (iso-architecture)
linearized             Kozachkov et al. [18]: no sigmoid, alpha = 1, no relative position, feedback on
astro                  astromorphic: sigmoid + alpha, relative position, feedback
astro-no-relpos        nonlinearity, no relative position
astro-no-nonlin        relative position, no nonlinearity (no sigmoid, alpha = 1)
astro-no-feedback      P_i = 1 / (sum_j phi(q_i)_j n_i^alpha), a key-independent normaliser, instead of 1 / C_i
astro-leaky            (LM only, diagnostic) astro whose attention writes the whole sequence before reading
astro-gate-only        control: astro with the value path cut (sigmoid argument 0, H = 1/2; g and P kept)
no-attention           the attention term set to zero; embedding, residual, LayerNorm, FFN, head unchanged
=====================  ==========================================================================

The four Fig. 4 variants are ``astro``, ``astro-no-relpos``, ``astro-no-nonlin`` and ``linearized``.
``astro-gate-only`` (SPEC decision 9) shows what is left of ``astro`` when V is not written at all: the
per-token gate 0.5 sum_j phi(q_i)_j / (phi(q_i) . g_i); W_astro has nothing to act on, so it has no M.

Resolution of the attention config (``spec_for``): ``m_scale`` = ``attention_cfg["m_scale"]`` when given,
else ``attention_cfg["m_scale_factor"] * d_model`` (SPEC decision 1; the paper's 500 D or 100 D);
``alpha``, ``tau``, ``position`` from the config (defaults 0.25, 16.0, "exp"). Presets without the
nonlinearity force alpha = 1.

Table II is derived from the resolved specs (``table2_rows``), never typed by hand: a mechanism is marked
used when the preset's attention actually computes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from astromorphic.attention import POSITION_KINDS, AttentionSpec, attention_kind
from astromorphic.tasks import LM_TASKS, TASK_NAMES

__all__ = [
    "Preset",
    "PRESETS",
    "MECHANISMS",
    "ATTENTION_CFG_KEYS",
    "spec_for",
    "get_preset",
    "preset_names",
    "mechanisms_of",
    "equations_of",
    "table2_rows",
]

ALL_TASKS = TASK_NAMES
ATTENTION_CFG_KEYS = ("alpha", "m_scale", "m_scale_factor", "tau", "position")

# (key, label, paper equations) of each mechanism shown in Table II.
MECHANISMS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("softmax_attention", "softmax attention", ()),
    ("value_path", "value path (Hebbian write of V)", ()),
    ("neuron_hebbian", "neuron Hebbian write phi(K)^T V", ("Eq. 9",)),
    ("astrocyte_relative_position", "astrocyte Hebbian write with relative position", ("Eq. 10", "Eq. 12")),
    ("nonlinear_hebbian", "nonlinear (sigmoid) Hebbian weight", ("Eq. 11",)),
    ("presynaptic_plasticity", "presynaptic plasticity g = (sum phi(k))^alpha, alpha != 1", ("Eq. 13", "Eq. 14")),
    ("calcium_feedback", "calcium response C = phi(q) . g and feedback P = 1/C", ("Eq. 15", "Eq. 16")),
)


def _fail(name: str, expected: str, got) -> ValueError:
    return ValueError(f"{name}: expected {expected}, got {got}")


@dataclass(frozen=True)
class Preset:
    """One model variant: a fixed attention kind and switches; numbers come from the attention config."""

    name: str
    description: str
    kind: str
    nonlinearity: bool = True
    relative_position: bool = True
    feedback: bool = True
    leaky: bool = False
    tasks: tuple[str, ...] = ALL_TASKS
    value_path: bool = True

    def spec_for(
        self, attention_cfg: Optional[Mapping[str, Any]] = None, d_model: Optional[int] = None
    ) -> AttentionSpec:
        cfg = dict(attention_cfg or {})
        unknown = sorted(set(cfg) - set(ATTENTION_CFG_KEYS))
        if unknown:
            raise _fail("attention_cfg", f"keys among {list(ATTENTION_CFG_KEYS)}", f"unknown keys {unknown}")
        m_scale = cfg.get("m_scale")
        if m_scale is None:
            factor = cfg.get("m_scale_factor")
            if factor is None or d_model is None:
                raise _fail(
                    "attention_cfg",
                    "'m_scale', or 'm_scale_factor' together with d_model",
                    f"m_scale_factor={factor!r}, d_model={d_model!r}",
                )
            m_scale = float(factor) * int(d_model)
        m_scale = float(m_scale)
        if not m_scale > 0:
            raise _fail("m_scale", "a number > 0", m_scale)
        alpha = float(cfg.get("alpha", 0.25))
        if not alpha > 0:
            raise _fail("alpha", "a number > 0", alpha)
        tau = float(cfg.get("tau", 16.0))
        if not tau > 0:
            raise _fail("tau", "a number > 0", tau)
        position = cfg.get("position", "exp")
        if position not in POSITION_KINDS:
            raise _fail("position", "'exp' or 'linear'", repr(position))
        kind = attention_kind(self.kind)
        linear_core = kind.linear_core
        nonlinearity = self.nonlinearity and linear_core
        value_path = self.value_path or "value_path" not in kind.spec_fields
        return AttentionSpec(
            kind=self.kind,
            nonlinearity=nonlinearity,
            relative_position=self.relative_position and linear_core and value_path,
            feedback=self.feedback and linear_core,
            alpha=alpha if nonlinearity else 1.0,
            m_scale=m_scale,
            tau=tau,
            position=position,
            leaky=self.leaky,
            value_path=value_path,
        )

    @property
    def equations(self) -> tuple[str, ...]:
        return equations_of(self.spec_for({"m_scale": 1.0}))


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("vanilla", "softmax attention Transformer (iso-architecture baseline)", "softmax", False, False, False),
        Preset("linearized", "Linearized Transformer of Kozachkov et al. [18]", "linearized", False, False, True),
        Preset("astro", "Astromorphic Transformer: nonlinearity + relative position + feedback", "astromorphic"),
        Preset("astro-no-relpos", "astromorphic, nonlinearity without relative position", "astromorphic", True, False),
        Preset("astro-no-nonlin", "astromorphic, relative position without nonlinearity", "astromorphic", False, True),
        Preset(
            "astro-no-feedback",
            "astromorphic without the presynaptic feedback (key-independent normaliser)",
            "astromorphic",
            True,
            True,
            False,
        ),
        Preset(
            "astro-leaky",
            "diagnostic: astromorphic LM whose attention writes the whole sequence before reading (leaks)",
            "astromorphic",
            leaky=True,
            tasks=LM_TASKS,
        ),
        Preset(
            "astro-gate-only",
            "control: astromorphic with the value path cut (sigmoid argument 0, H = 1/2; g and feedback kept)",
            "astromorphic",
            relative_position=False,
            value_path=False,
        ),
        Preset("no-attention", "control: attention term set to zero", "none", False, False, False),
    )
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise _fail("preset", f"one of {list(PRESETS)}", repr(name))
    return PRESETS[name]


def spec_for(
    preset_name: str, attention_cfg: Optional[Mapping[str, Any]] = None, d_model: Optional[int] = None
) -> AttentionSpec:
    """The AttentionSpec of preset ``preset_name`` under ``attention_cfg`` (m_scale resolved with d_model)."""
    return get_preset(preset_name).spec_for(attention_cfg, d_model)


def attention_keys_used(name: str) -> set[str]:
    """The attention keys (``tasks.<task>.attention``) that change preset ``name``'s model: ``m_scale`` and
    ``m_scale_factor`` for a linear core, ``alpha`` with the nonlinearity, ``tau`` and ``position`` with the
    relative position; none for softmax attention and no attention. A sweep of another key trains the plain
    preset again."""
    spec = get_preset(name).spec_for({"m_scale": 1.0})
    if not attention_kind(spec.kind).linear_core:
        return set()
    keys = {"m_scale", "m_scale_factor"}
    if spec.nonlinearity:
        keys.add("alpha")
    if spec.relative_position:
        keys |= {"tau", "position"}
    return keys


def preset_names(task: Optional[str] = None) -> list[str]:
    """All preset names, or those that apply to ``task``."""
    if task is not None and task not in ALL_TASKS:
        raise _fail("task", f"one of {ALL_TASKS}", repr(task))
    return [name for name, p in PRESETS.items() if task is None or task in p.tasks]


def mechanisms_of(spec: AttentionSpec) -> dict[str, bool]:
    """Which Table II mechanisms an attention spec computes.

    Without the value path nothing is written (S = 0): no neuron or astrocyte write; the sigmoid is still
    applied (to 0, H = 1/2) and alpha, g and the feedback are unchanged.
    """
    linear_core = attention_kind(spec.kind).linear_core
    writes = linear_core and spec.value_path
    return {
        "softmax_attention": spec.kind == "softmax",
        "value_path": writes,
        "neuron_hebbian": writes,
        "astrocyte_relative_position": writes and spec.relative_position,
        "nonlinear_hebbian": linear_core and spec.nonlinearity,
        "presynaptic_plasticity": linear_core and spec.feedback and spec.alpha != 1.0,
        "calcium_feedback": linear_core and spec.feedback,
    }


def equations_of(spec: AttentionSpec) -> tuple[str, ...]:
    """Paper equations an attention spec uses; Eq. 17 (read) for every linear core, Eq. 18 (block) always."""
    used = mechanisms_of(spec)
    eqs: set[str] = set()
    for key, _, equations in MECHANISMS:
        if used[key]:
            eqs.update(equations)
    if attention_kind(spec.kind).linear_core:
        eqs.add("Eq. 17")
        if spec.feedback:
            eqs.add("Eq. 13")  # the presynaptic sum g enters the calcium response even with alpha = 1
    eqs.add("Eq. 18")
    return tuple(sorted(eqs, key=lambda e: int(e.split()[-1])))


def table2_rows(task: Optional[str] = None) -> list[dict[str, Any]]:
    """Table II: one dict per preset with preset, description, equations, tasks and one bool per mechanism."""
    rows = []
    for name in preset_names(task):
        preset = PRESETS[name]
        spec = preset.spec_for({"m_scale": 1.0})
        row: dict[str, Any] = {"preset": name, "description": preset.description}
        row.update(mechanisms_of(spec))
        row["equations"] = ", ".join(equations_of(spec))
        row["tasks"] = ", ".join(preset.tasks)
        rows.append(row)
    return rows
