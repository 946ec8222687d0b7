"""The attention mechanisms: one record per ``AttentionSpec.kind``, and ``build_attention``.

Every other part of the package asks this registry about a kind (presets, Table II, the training record's
causal kernel, the attention benchmark and Fig. S2) instead of spelling the kind names itself, so that a new
mechanism is its module, its record here, its presets and a test (docs/architecture.md).

``build_attention(spec, d_model, n_heads, max_len, causal)`` returns the kind's module, built with the
keyword arguments its record derives from the spec; ``spec.leaky`` in a causal model makes a kind that
takes it write the whole sequence before reading (the ``astro-leaky`` diagnostic).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import nn

from astromorphic import kernels
from astromorphic.attention.causal import DEFAULT_CHUNK
from astromorphic.attention.checks import fail
from astromorphic.attention.modules import AstromorphicAttention, NoAttention, SoftmaxAttention


@dataclass(frozen=True)
class AttentionSpec:
    kind: str  # a name in ATTENTION_KINDS: "softmax" | "linearized" | "astromorphic" | "none"
    nonlinearity: bool = True  # sigmoid on H and alpha != 1   (astromorphic only)
    relative_position: bool = True  # H_astro term with learnable M  (astromorphic only)
    feedback: bool = True  # P_i = 1 / (phi(q_i) . g); off: 1 / (number of tokens written)
    alpha: float = 0.25
    m_scale: float = 1.0  # the divisor m inside the sigmoid, resolved by the caller
    tau: float = 16.0  # decay length of P_ij = exp(-|i-j|/tau)
    position: str = "exp"  # "exp" or "linear" (P_ij = |i-j|/N)
    leaky: bool = False  # diagnostic: a causal model whose attention writes the whole sequence first
    value_path: bool = True  # off: the sigmoid's argument set to 0, H = 1/2 (gate-only control; astromorphic)


@dataclass(frozen=True)
class AttentionKind:
    """One attention mechanism."""

    name: str  # AttentionSpec.kind, the benchmark's row label
    label: str  # display name (figure legends)
    module: type[nn.Module]  # module(d_model, n_heads, max_len, causal, **options(spec, chunk_size))
    options: Callable[[AttentionSpec, Optional[int]], dict[str, Any]]
    spec_fields: tuple[str, ...] = ()  # the AttentionSpec fields that change the module (the rest are ignored)
    linear_core: bool = False  # the phi-based Hebbian read of Eq. 17 (m applies; Table II's mechanisms)
    causal_kernel: bool = False  # its causal read may run a fused kernel (astromorphic.kernels)
    bench_preset: Optional[str] = None  # the preset the attention benchmark times (Fig. S2); None: not timed


def _linearized_options(spec: AttentionSpec, chunk_size: Optional[int]) -> dict[str, Any]:
    return {
        "kind": "linearized",
        "sigmoid": False,
        "alpha": 1.0,
        "relative_position": False,
        "feedback": True,
        "m_scale": spec.m_scale,
        "chunk_size": chunk_size,
    }


def _astromorphic_options(spec: AttentionSpec, chunk_size: Optional[int]) -> dict[str, Any]:
    return {
        "kind": "astromorphic",
        "sigmoid": spec.nonlinearity,
        "alpha": spec.alpha if spec.nonlinearity else 1.0,
        "relative_position": spec.relative_position,
        "feedback": spec.feedback,
        "m_scale": spec.m_scale,
        "tau": spec.tau,
        "position": spec.position,
        "chunk_size": chunk_size,
        "value_path": spec.value_path,
    }


def _no_options(spec: AttentionSpec, chunk_size: Optional[int]) -> dict[str, Any]:
    return {}


ATTENTION_REGISTRY: dict[str, AttentionKind] = {
    k.name: k
    for k in (
        AttentionKind("softmax", "softmax", SoftmaxAttention, _no_options, bench_preset="vanilla"),
        AttentionKind(
            "linearized",
            "linearized",
            AstromorphicAttention,
            _linearized_options,
            spec_fields=("m_scale",),
            linear_core=True,
            bench_preset="linearized",
        ),
        AttentionKind(
            "astromorphic",
            "astromorphic",
            AstromorphicAttention,
            _astromorphic_options,
            spec_fields=(
                "nonlinearity",
                "relative_position",
                "feedback",
                "alpha",
                "m_scale",
                "tau",
                "position",
                "leaky",
                "value_path",
            ),
            linear_core=True,
            causal_kernel=True,
            bench_preset="astro",
        ),
        AttentionKind("none", "no attention", NoAttention, _no_options),
    )
}
ATTENTION_KINDS = tuple(ATTENTION_REGISTRY)


def attention_kind(name: str) -> AttentionKind:
    """The registry record of kind ``name``."""
    if name not in ATTENTION_REGISTRY:
        raise fail("spec.kind", f"one of {ATTENTION_KINDS}", repr(name))
    return ATTENTION_REGISTRY[name]


def build_attention(
    spec: AttentionSpec,
    d_model: int,
    n_heads: int,
    max_len: int,
    causal: bool,
    *,
    chunk_size: Optional[int] = DEFAULT_CHUNK,
) -> nn.Module:
    """The attention module for ``spec``: forward(x (B, N, D), key_padding_mask) -> attention term (B, N, D)."""
    if not isinstance(spec, AttentionSpec):
        raise fail("spec", "an AttentionSpec", type(spec).__name__)
    kind = attention_kind(spec.kind)
    for name, value in (("d_model", d_model), ("n_heads", n_heads), ("max_len", max_len)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise fail(name, "a positive integer", repr(value))
    leaks = spec.leaky and "leaky" in kind.spec_fields
    return kind.module(d_model, n_heads, max_len, causal and not leaks, **kind.options(spec, chunk_size))


def causal_read_kernel(spec: AttentionSpec, device: torch.device) -> Optional[str]:
    """The causal read a causal model of ``spec`` runs (run records store it): None where it has none
    (softmax, no attention, the leaky diagnostic, the gate-only control), "torch" without the sigmoid or
    without a fused kernel, else the kernel the dispatch picks for the core's float32 (astromorphic.kernels)."""
    kind = ATTENTION_REGISTRY.get(getattr(spec, "kind", None))
    if kind is None or not kind.linear_core:
        return None
    if getattr(spec, "leaky", False) or not getattr(spec, "value_path", True):
        return None
    if not kind.causal_kernel or not spec.nonlinearity:
        return "torch"
    return kernels.select_causal_kernel(device, torch.float32)
