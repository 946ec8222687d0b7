"""Attention: softmax, linearized (Kozachkov et al. [18]) and astromorphic, bidirectional and strictly causal.

The package, by layer (each module imports only the ones above it):

* ``checks``: input checks (one ValueError naming the argument).
* ``causal``: the chunk-wise causal reads, with the recomputing autograd Function ``CausalSigmoidRead``
  (the PyTorch reference of the fused kernels in ``astromorphic.kernels``) and the chunk length.
* ``fused``: the bidirectional core as one autograd Function with a hand-written backward
  (``BidirectionalCore``: the fewest operator calls per training step; the eager GPU step is bound by
  kernel launches).
* ``functional``: the functional core ``astromorphic_attention`` (Eq. 9-17), ``softmax_attention``,
  ``value_sensitivity``.
* ``relpos``: the relative-position activity W_astro (Eq. 12).
* ``modules``: the attention modules behind one interface (``forward(x, key_padding_mask, precomputed)``),
  and ``precompute_attention``: what the modules of a layer stack can share, computed once per forward.
* ``registry``: ``AttentionSpec``, the record of every attention mechanism (``ATTENTION_REGISTRY``) and
  ``build_attention``.

The names below are the package's interface; import them from ``astromorphic.attention``.
"""

from astromorphic.attention.causal import CPU_CHUNK, DEFAULT_CHUNK
from astromorphic.attention.functional import (
    astromorphic_attention,
    feature_map,
    softmax_attention,
    value_sensitivity,
)
from astromorphic.attention.modules import (
    M_INIT_STD,
    AstromorphicAttention,
    NoAttention,
    ProjectedAttention,
    SoftmaxAttention,
    precompute_attention,
)
from astromorphic.attention.registry import (
    ATTENTION_KINDS,
    ATTENTION_REGISTRY,
    AttentionKind,
    AttentionSpec,
    attention_kind,
    build_attention,
    causal_read_kernel,
)
from astromorphic.attention.relpos import (
    DENSE_MAX_N,
    POSITION_KINDS,
    relative_position_activity,
    relative_position_matrix,
)

__all__ = [
    "AttentionSpec",
    "AttentionKind",
    "ATTENTION_KINDS",
    "ATTENTION_REGISTRY",
    "POSITION_KINDS",
    "DENSE_MAX_N",
    "DEFAULT_CHUNK",
    "CPU_CHUNK",
    "M_INIT_STD",
    "feature_map",
    "astromorphic_attention",
    "relative_position_activity",
    "relative_position_matrix",
    "softmax_attention",
    "value_sensitivity",
    "attention_kind",
    "build_attention",
    "precompute_attention",
    "causal_read_kernel",
    "ProjectedAttention",
    "SoftmaxAttention",
    "AstromorphicAttention",
    "NoAttention",
]
