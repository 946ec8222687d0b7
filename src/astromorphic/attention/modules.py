"""The attention modules: ``forward(x, key_padding_mask)`` gives the attention term (B, N, D) only, never
the residual. Every module but ``NoAttention`` has input projections W_Q, W_K, W_V (D -> D, split into heads
of width D / n_heads) and an output projection W_O (D -> D), in :class:`ProjectedAttention`; a subclass
supplies ``attend(q, k, v, key_padding_mask)``, the per-head core on (B, H, N, d) tensors (the attention
benchmark times it alone). The output projection is our choice for concatenating the heads; it keeps the
astromorphic and linearized models iso-architecture with the softmax baseline. Kinds (built from an
``AttentionSpec`` by ``build_attention``, ``attention.registry``):

* ``softmax``: ``torch.nn.functional.scaled_dot_product_attention`` (scale 1/sqrt(d_k)).
* ``linearized``: the core with sigmoid off, alpha = 1, no relative position, feedback on (Katharopoulos
  linear attention with phi = elu + 1, divided by m).
* ``astromorphic``: switches ``nonlinearity`` (sigmoid, and alpha as given; off: no sigmoid, alpha = 1),
  ``relative_position`` (a learnable M of shape (n_heads, d_k, max_len) per layer; P and D are built over
  all max_len positions and a sequence of length N <= max_len uses the first N columns of W_astro),
  ``feedback`` and ``value_path`` (off: no M, since W_astro only enters the cut sigmoid argument).
  M is initialised from N(0, 0.02^2): small, so that W_astro = phi(a) starts close to 1 everywhere and
  the astrocyte term starts as a plain sum of the values. P of Eq. 12 is the non-persistent buffer
  ``decay`` (built once; not in the state dict). The bidirectional module runs its core on the
  (B, N, H, d) views of the projections through ``BidirectionalCore`` (``attention.fused``).
* ``none``: the no-attention control; returns zeros, has no parameters.

``precompute_attention(modules, n)`` gives each module of a layer stack what its forward may take as
``precomputed``: the bidirectional astromorphic modules' rows W_astro / m, computed for all layers that share
P in one call (M concatenated along the heads; the eager GPU step is bound by operator launches).

``spec.leaky`` in a causal model makes the astromorphic attention write the whole sequence before reading
(the ``astro-leaky`` diagnostic). Modules check shapes and lengths, but not activations for NaN/inf
(``module.check_finite = True`` turns that on): a diverging run must reach the training loop's divergence
check as NaN rather than stop with an exception. ``module.record_stats = True`` stores ``module.last_stats``:
for softmax and the linear-attention kinds ``value_sens`` = ||out(V) - out(V = 0)|| / ||out(V)|| (the
attention term before W_O recomputed with V = 0; Frobenius norms over the real tokens of the batch;
``value_sensitivity``), and for the linear-attention kinds the mean and standard deviation over all entries
of the sigmoid argument S / m of the full-sequence write state (recorded whether or not the sigmoid is
applied; 0 without the value path).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from astromorphic.attention.causal import DEFAULT_CHUNK
from astromorphic.attention.checks import check_chunk, check_mask, check_positive_number, check_tensor, fail
from astromorphic.attention.functional import (
    as_dtype,
    astromorphic_attention,
    autocast_off,
    feature_map,
    softmax_attention,
    value_sensitivity,
)
from astromorphic.attention.fused import CoreSwitches, bidirectional_core
from astromorphic.attention.relpos import (
    DENSE_MAX_N,
    ConcatHeads,
    POSITION_KINDS,
    position_activity,
    relative_position_activity,
    relative_position_matrix,
)

M_INIT_STD = 0.02


class ProjectedAttention(nn.Module):
    """Input projections W_Q, W_K, W_V and output projection W_O around a per-head attention core."""

    kind = "base"

    def __init__(self, d_model: int, n_heads: int, max_len: int, causal: bool):
        super().__init__()
        if d_model % n_heads:
            raise fail("n_heads", f"a divisor of d_model={d_model}", n_heads)
        self.d_model, self.n_heads, self.max_len, self.causal = d_model, n_heads, max_len, causal
        self.d_head = d_model // n_heads
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model)
        self.w_v = nn.Linear(d_model, d_model)
        self.w_o = nn.Linear(d_model, d_model)
        self.record_stats = False
        self.last_stats: dict[str, float] = {}

    def _heads(self, x: Tensor, proj: nn.Linear) -> Tensor:
        b, n, _ = x.shape
        return proj(x).view(b, n, self.n_heads, self.d_head).transpose(1, 2)

    def _check_input(self, x: Tensor, key_padding_mask: Optional[Tensor]) -> None:
        check_tensor("x", x, 3, "(B, N, d_model)")
        if x.shape[-1] != self.d_model:
            raise fail("x", f"last dimension d_model={self.d_model}", f"shape {tuple(x.shape)}")
        if x.shape[1] > self.max_len:
            raise fail("x", f"sequence length N <= max_len={self.max_len}", f"N={x.shape[1]}")
        if key_padding_mask is not None:
            check_mask(key_padding_mask, x.shape[0], x.shape[1])

    def forward(
        self, x: Tensor, key_padding_mask: Optional[Tensor] = None, precomputed: Optional[Tensor] = None
    ) -> Tensor:
        """``precomputed``: this module's entry of ``precompute_attention`` (None: computed here)."""
        self._check_input(x, key_padding_mask)
        q, k, v = self._heads(x, self.w_q), self._heads(x, self.w_k), self._heads(x, self.w_v)
        out = self._core(q, k, v, key_padding_mask)  # (B, H, N, d_head)
        b, _, n, _ = out.shape
        return self.w_o(out.transpose(1, 2).reshape(b, n, self.d_model))

    def _core(self, q, k, v, key_padding_mask):
        out = self.attend(q, k, v, key_padding_mask)
        if self.record_stats:
            self.last_stats = self._probe_stats(q, k, v, key_padding_mask, out)
        return out

    def attend(self, q, k, v, key_padding_mask):  # pragma: no cover - abstract
        raise NotImplementedError

    def _attend_zero_values(self, q, k, v, key_padding_mask):
        """The attention term with V = 0."""
        return self.attend(q, k, torch.zeros_like(v), key_padding_mask)

    @torch.no_grad()
    def _probe_stats(self, q, k, v, key_padding_mask, out) -> dict[str, float]:
        """``value_sens``: the attention term recomputed with V = 0 against the real one."""
        zero = self._attend_zero_values(q, k, v, key_padding_mask)
        return {"value_sens": value_sensitivity(out, zero, key_padding_mask)}


class SoftmaxAttention(ProjectedAttention):
    kind = "softmax"

    def attend(self, q, k, v, key_padding_mask):
        return softmax_attention(q, k, v, causal=self.causal, key_padding_mask=key_padding_mask)


class AstromorphicAttention(ProjectedAttention):
    """The astromorphic core (also the linearized kind, with its switches fixed)."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        max_len: int,
        causal: bool,
        *,
        kind: str = "astromorphic",
        sigmoid: bool = True,
        alpha: float = 0.25,
        relative_position: bool = True,
        feedback: bool = True,
        m_scale: float = 1.0,
        tau: float = 16.0,
        position: str = "exp",
        chunk_size: Optional[int] = DEFAULT_CHUNK,
        value_path: bool = True,
    ):
        super().__init__(d_model, n_heads, max_len, causal)
        self.kind = kind
        self.sigmoid = bool(sigmoid)
        self.value_path = bool(value_path)
        self.alpha = check_positive_number("alpha", alpha)
        self.feedback = bool(feedback)
        self.m_scale = check_positive_number("m_scale", m_scale)
        if position not in POSITION_KINDS:
            raise fail("position", f"one of {POSITION_KINDS}", repr(position))
        self.position = position
        self.tau = check_positive_number("tau", tau) if position == "exp" else float(tau)
        self.chunk_size = check_chunk(chunk_size)
        # Activations are not checked for NaN/inf (a diverging run must reach the training loop's
        # divergence check rather than raise); set True to check them (it synchronises a GPU).
        self.check_finite = False
        decay = None
        if relative_position and self.value_path:  # without the value path W_astro would be unused
            self.M = nn.Parameter(torch.randn(n_heads, self.d_head, max_len) * M_INIT_STD)
            if max_len <= max(DENSE_MAX_N.values()):  # P is formed densely on some device
                decay = relative_position_matrix(max_len, self.tau, position)
        else:
            self.register_parameter("M", None)
        # P of Eq. 12 depends on the positions only: built once, moved and cast with the module, and not
        # part of the state dict (checkpoints stay as they were)
        self.register_buffer("decay", decay, persistent=False)

    def _apply(self, fn, recurse=True):
        # a cast buffer would hold the old dtype's rounding of P: rebuild it in the new one (float32 for
        # half modules, the precision relative_position_activity computes in), so it equals a fresh P
        super()._apply(fn, recurse)
        if self.decay is not None:
            half = self.decay.dtype in (torch.float16, torch.bfloat16)
            dtype = torch.float32 if half else self.decay.dtype
            self.decay = relative_position_matrix(
                self.max_len, self.tau, self.position, device=self.decay.device, dtype=dtype
            )
        return self

    def extra_repr(self) -> str:
        return (
            f"kind={self.kind}, causal={self.causal}, sigmoid={self.sigmoid}, alpha={self.alpha}, "
            f"relative_position={self.M is not None}, feedback={self.feedback}, m_scale={self.m_scale}, "
            f"tau={self.tau}, position={self.position}, value_path={self.value_path}"
        )

    def astro_activity(self, n: int) -> Optional[Tensor]:
        """W_astro for the first n positions, or None without relative position.

        D = M P M^T is built on all max_len positions and the first n columns are kept, so column t does
        not depend on n (prefix consistency, SPEC decision 7). It depends on M only (positions, not
        tokens): one (H, d_k, max_len) x (max_len, max_len) product (or the O(max_len) scan) per forward.
        """
        if self.M is None:
            return None
        return relative_position_activity(
            self.M, self.tau, position=self.position, validate=self.check_finite, n=n, decay=self.decay
        )

    def shared_activity_key(self, n: int) -> Optional[tuple]:
        """What decides this module's rows W_astro / m for n positions besides M (P and the scale), or None
        when it computes them itself: without M, in the causal model, the probe and the checked mode."""
        if self.M is None or self.causal or self.record_stats or self.check_finite or not 1 <= n <= self.max_len:
            return None
        m = self.M
        decay = None if self.decay is None else (self.decay.dtype, self.decay.device)
        return (tuple(m.shape), m.dtype, m.device, self.max_len, self.tau, self.position, self.m_scale, decay, n)

    def position_rows(self, m: Tensor, n: int) -> Tensor:
        """W_astro / m as (n, H', d_k) rows for M of shape (H', d_k, max_len) (this module's M, or several
        modules' M stacked along the heads), in the compute dtype, with this module's P."""
        compute = torch.float32 if m.dtype in (torch.float16, torch.bfloat16) else m.dtype
        with autocast_off(m.device.type):
            m = as_dtype(m, compute)
            return position_activity(m, self.tau, self.position, "auto", n, 1.0 / self.m_scale, "nhj", self.decay)

    def forward(
        self, x: Tensor, key_padding_mask: Optional[Tensor] = None, precomputed: Optional[Tensor] = None
    ) -> Tensor:
        """The bidirectional core runs on the (B, N, H, d) views of the projections (no transposes) through
        ``BidirectionalCore``; the causal model, the probe and the checked mode take the general path.
        ``precomputed``: this module's rows W_astro / m from ``precompute_attention`` (None: computed here)."""
        if self.causal or self.record_stats or self.check_finite:
            return super().forward(x, key_padding_mask)
        self._check_input(x, key_padding_mask)
        b, n, _ = x.shape
        heads = (b, n, self.n_heads, self.d_head)
        q, k, v = self.w_q(x).view(heads), self.w_k(x).view(heads), self.w_v(x).view(heads)
        out_dtype = q.dtype
        compute = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
        rows = precomputed
        if rows is None and self.M is not None:  # W_astro / m as (N, H, d_k) rows
            rows = self.position_rows(self.M, n)
        with autocast_off(x.device.type):
            q, k, v = as_dtype(q, compute), as_dtype(k, compute), as_dtype(v, compute)
            rows = None if rows is None else as_dtype(rows, compute)
            real = None if key_padding_mask is None else key_padding_mask[:, :, None, None].to(compute)
            switches = CoreSwitches("bnh", self.m_scale, self.alpha, self.sigmoid, self.feedback, self.value_path)
            out = bidirectional_core(q, k, v, rows, real, switches)
        return self.w_o(as_dtype(out, out_dtype).reshape(b, n, self.d_model))

    def attend(self, q, k, v, key_padding_mask, value_path: Optional[bool] = None):
        return astromorphic_attention(
            q,
            k,
            v,
            w_astro=self.astro_activity(q.shape[-2]),
            alpha=self.alpha,
            sigmoid=self.sigmoid,
            feedback=self.feedback,
            causal=self.causal,
            m_scale=self.m_scale,
            key_padding_mask=key_padding_mask,
            chunk_size=self.chunk_size,
            validate=self.check_finite,
            value_path=self.value_path if value_path is None else value_path,
        )

    def _attend_zero_values(self, q, k, v, key_padding_mask):
        """V = 0 makes S = 0 (both write terms are linear in V): exactly the gate-only read, no state needed."""
        return self.attend(q, k, v, key_padding_mask, value_path=False)

    @torch.no_grad()
    def _probe_stats(self, q, k, v, key_padding_mask, out) -> dict[str, float]:
        stats = super()._probe_stats(q, k, v, key_padding_mask, out)
        stats.update(self._write_stats(k, v, self.astro_activity(q.shape[-2]), key_padding_mask))
        return stats

    @torch.no_grad()
    def _write_stats(self, k, v, w_astro, key_padding_mask) -> dict[str, float]:
        """Mean and std of the sigmoid argument S / m of the full-sequence write state (0 when the
        value path is cut: the gate-only control sets the argument to 0)."""
        if not self.value_path:
            return {"sigmoid_arg_mean": 0.0, "sigmoid_arg_std": 0.0}
        k = feature_map(k.float())
        v = v.float()
        if w_astro is not None:
            k = k + w_astro.float().transpose(-1, -2).unsqueeze(0)
        if key_padding_mask is not None:
            v = v * key_padding_mask.float()[:, None, :, None]
        arg = (k.transpose(-1, -2) @ v) / self.m_scale
        return {"sigmoid_arg_mean": float(arg.mean()), "sigmoid_arg_std": float(arg.std(unbiased=False))}


class NoAttention(nn.Module):
    """The no-attention control: the attention term is zero; no parameters."""

    kind = "none"

    def __init__(self, d_model: int, n_heads: int, max_len: int, causal: bool):
        super().__init__()
        self.d_model, self.n_heads, self.max_len, self.causal = d_model, n_heads, max_len, causal
        self.record_stats = False
        self.last_stats: dict[str, float] = {}

    def forward(
        self, x: Tensor, key_padding_mask: Optional[Tensor] = None, precomputed: Optional[Tensor] = None
    ) -> Tensor:
        check_tensor("x", x, 3, "(B, N, d_model)")
        if x.shape[-1] != self.d_model:
            raise fail("x", f"last dimension d_model={self.d_model}", f"shape {tuple(x.shape)}")
        if x.shape[1] > self.max_len:
            raise fail("x", f"sequence length N <= max_len={self.max_len}", f"N={x.shape[1]}")
        return torch.zeros_like(x)


def precompute_attention(modules: Sequence[nn.Module], n: int) -> list[Optional[Tensor]]:
    """For each attention module, what its forward takes as ``precomputed`` for a sequence of n positions,
    or None (it computes everything itself).

    The relative-position rows W_astro / m of a bidirectional astromorphic module depend on its M only, never
    on the tokens. Modules with the same ``shared_activity_key`` (M's shape, dtype and device, max_len, tau,
    position and m_scale: the same P and scale) get theirs from one call on their M stacked along the heads,
    each its slice: the activity's operators run once per forward instead of once per layer (the eager GPU
    step is bound by operator launches). The result equals the per-module computation within rounding.
    """
    out: list[Optional[Tensor]] = [None] * len(modules)
    groups: dict[tuple, list[int]] = {}
    for i, module in enumerate(modules):
        key = module.shared_activity_key(n) if isinstance(module, AstromorphicAttention) else None
        if key is not None:
            groups.setdefault(key, []).append(i)
    for members in groups.values():
        if len(members) < 2:  # nothing to share: the module computes its rows itself
            continue
        # one operator each way: the M concatenated along the heads, the rows split back into layers
        stacked = ConcatHeads.apply(*(modules[i].M for i in members))  # (layers * H, d_k, max_len)
        rows = modules[members[0]].position_rows(stacked, n)  # (n, layers * H, d_k)
        for i, layer_rows in zip(members, rows.split(modules[members[0]].n_heads, dim=1)):
            out[i] = layer_rows
    return out
