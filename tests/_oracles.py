"""Reference computations that tests compare the library against; they are not part of the package.

:func:`per_token_attention` is the write/read network of Fig. 2 (Eq. 8-17), run token by token: a second,
literal implementation of ``astromorphic.attention.astromorphic_attention`` (the matrix form).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _phi(x: np.ndarray) -> np.ndarray:
    """elu(x) + 1."""
    return np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0.0)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _reciprocal(x: np.ndarray) -> np.ndarray:
    """1 / x, and 0 where x is 0."""
    return np.where(x != 0, 1.0 / np.where(x != 0, x, 1.0), 0.0)


def _as_numpy(x: Any, dtype: Any = np.float64) -> np.ndarray | None:
    if x is None:
        return None
    if type(x).__module__.startswith("torch"):
        x = x.detach().to("cpu")
        return x.double().numpy() if dtype is np.float64 else x.numpy().astype(dtype)
    return np.asarray(x, dtype=dtype)


class _WriteReadNetwork:
    """The weights of Fig. 2 for every (batch, head): H_neuron, H_astro, the presynaptic trace and the number of
    tokens written so far."""

    def __init__(self, k: np.ndarray, v: np.ndarray, w_astro: np.ndarray | None, mask: np.ndarray) -> None:
        b, h, _, dk = k.shape
        dv = v.shape[-1]
        self.pk, self.v, self.w, self.mask = _phi(k), v, w_astro, mask
        self.h_neuron = np.zeros((b, h, dk, dv))
        self.h_astro = np.zeros((b, h, dk, dv))
        self.trace = np.zeros((b, h, dk))
        self.written = np.zeros(b)

    def write(self, t: int) -> None:
        """Token t: Eq. 9 (Hebbian neuronal weight), Eq. 10 (astrocytic weight), Eq. 13 (presynaptic trace);
        a padded token writes nothing and is not counted."""
        real = self.mask[:, t].astype(np.float64)[:, None, None, None]  # (B, 1, 1, 1): 0 for a padded token
        self.h_neuron += real * (self.pk[:, :, t, :, None] * self.v[:, :, t, None, :])
        if self.w is not None:
            self.h_astro += real * (self.w[None, :, :, t, None] * self.v[:, :, t, None, :])
        self.trace += real[..., 0] * self.pk[:, :, t, :]
        self.written += self.mask[:, t]

    def state(self, sigmoid: bool, m_scale: float, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """H = sigmoid((H_neuron + H_astro) / m) (Eq. 11; no sigmoid when sigmoid=False) and g = s ** alpha (Eq. 14)."""
        pre = (self.h_neuron + self.h_astro) / m_scale
        self.alpha = alpha  # the no-feedback normaliser uses it too
        return (_sigmoid(pre) if sigmoid else pre), self.trace**alpha

    def read(self, phi_q: np.ndarray, hebb: np.ndarray, g: np.ndarray, feedback: bool) -> np.ndarray:
        """Query phi(q_i) (B, H, d_k): C_i = phi(q_i) . g (Eq. 15), out_i = P_i phi(q_i)^T H with P_i = 1 / C_i
        (Eq. 16-17), or without feedback the key-free normaliser 1 / (sum_j phi(q_i)_j * n_i ** alpha), n_i the
        tokens written (docs/decisions.md); P_i = 0 where its denominator is 0."""
        lval = np.einsum("bhk,bhkv->bhv", phi_q, hebb)
        if feedback:
            scale = _reciprocal(np.einsum("bhk,bhk->bh", phi_q, g))
        else:
            scale = _reciprocal(phi_q.sum(-1) * (self.written[:, None] ** self.alpha))
        return lval * scale[..., None]


def per_token_attention(
    q: Any,
    k: Any,
    v: Any,
    *,
    w_astro: Any = None,
    alpha: float = 0.25,
    sigmoid: bool = True,
    feedback: bool = True,
    causal: bool = False,
    m_scale: float = 1.0,
    key_padding_mask: Any = None,
) -> Any:
    """The write/read network of Fig. 2 (Eq. 8-17), one token at a time, in float64.

    q, k: (B, H, N, d_k); v: (B, H, N, d_v); w_astro: (H, d_k, N) or None (no astrocytic term);
    key_padding_mask: (B, N) bool, True = real token, or None.  Same semantics as
    ``astromorphic.attention.astromorphic_attention`` (the matrix form), computed the way the network would
    (see :class:`_WriteReadNetwork`). Bidirectional: all N tokens are written before any query is read. Causal:
    token t is written, then query t is read, so query t sees exactly the tokens s <= t (and the sigmoid acts on
    that prefix state).

    Returns the same type as ``q`` (a torch tensor in q's dtype and device, or a numpy array).
    """
    qn, kn, vn, wn = _as_numpy(q), _as_numpy(k), _as_numpy(v), _as_numpy(w_astro)
    mask = _as_numpy(key_padding_mask, bool)
    b, h, n, dk = qn.shape
    if kn.shape != (b, h, n, dk) or vn.shape[:3] != (b, h, n):
        raise ValueError(f"shape mismatch: q {qn.shape}, k {kn.shape}, v {vn.shape}")
    if wn is not None and wn.shape != (h, dk, n):
        raise ValueError(f"w_astro must be (H, d_k, N) = ({h}, {dk}, {n}), got {wn.shape}")
    if mask is not None and mask.shape != (b, n):
        raise ValueError(f"key_padding_mask must be (B, N) = ({b}, {n}), got {mask.shape}")
    net = _WriteReadNetwork(kn, vn, wn, np.ones((b, n), dtype=bool) if mask is None else mask)
    pq = _phi(qn)
    out = np.zeros((b, h, n, vn.shape[-1]))
    if causal:
        for t in range(n):
            net.write(t)
            out[:, :, t, :] = net.read(pq[:, :, t, :], *net.state(sigmoid, m_scale, alpha), feedback)
    else:
        for t in range(n):
            net.write(t)
        hebb, g = net.state(sigmoid, m_scale, alpha)
        for i in range(n):
            out[:, :, i, :] = net.read(pq[:, :, i, :], hebb, g, feedback)
    if type(q).__module__.startswith("torch"):
        import torch

        return torch.from_numpy(out).to(dtype=q.dtype, device=q.device)
    return out
