"""The three task models: IMDB encoder classifier, CIFAR-10 vision model, WikiText-2 decoder LM.

Every model is built from the same post-LN block (paper Eq. 18 / Algorithm 1)::

    y   = LayerNorm(x + Dropout(attn(x)))          # attn: any kind from astromorphic.attention
    out = LayerNorm(y + Dropout(FFN(y)))           # FFN: Linear(D, ffn_mult D), activation, Dropout, Linear

and any attention variant (``AttentionSpec``), so that the softmax, linearized, astromorphic and
no-attention models differ in the attention term only (iso-architecture).

Defaults follow the paper (SPEC.md section 3): IMDB D=128, 1 layer, 4 heads, 400 tokens; CIFAR-10 D=256,
8 layers, 8 heads, 3x3 conv stem, patch 2 (16 x 16 = 256 tokens); WikiText-2 D=768, 1 layer, 6 heads,
512 tokens. Every size is a ``model_cfg`` key, so tiny versions run in tests.

Decisions documented here (each a ``model_cfg`` key):

* ``activation``: GELU in the FFN (``"gelu"``, or ``"relu"``); the paper does not say.
* ``chunk_size`` (null = automatic): positions per chunk of the causal astromorphic attention (memory
  against speed; see astromorphic.attention).
* ``dropout`` (0.1): where the original Transformer puts it, on the sum of the token and position
  embeddings and on each sub-layer's output before its residual add (the attention term, unless the
  attention is the no-attention control, whose term is zero; the FFN output), plus before the classifier
  head / LM output layer (the paper's "LayerNorm + dropout before the output"). Not inside the FFN: see
  docs/decisions.md ("Dropout sites").
* ``position_embedding`` (``"learned"``, or ``"none"``): a learned absolute position embedding added to the
  token embedding, in every model and for every attention kind, so that the presets stay
  iso-architecture; the astromorphic attention adds its own relative position term inside the attention
  on top of it. ``"none"`` leaves positions to the attention alone (SPEC decision 10: the
  relative-position ablation is also run without it, since with it ``astro-no-relpos`` still sees
  positions).
* Embedding initialisation: token and position embeddings N(0, 0.02^2); linear layers keep PyTorch's
  default initialisation.
* IMDB: with ``data_info["embedding"]`` (a (V, E) tensor, GloVe 300-d), the token embedding is that table,
  frozen when ``freeze_embedding`` (true), followed by a learned Linear(E, D); otherwise a learned
  (V, D) embedding. Classification: mean over the real tokens (``key_padding_mask``) of the last block's
  output, Dropout, Linear(D, n_classes). Without a mask every token counts as real.
* CIFAR-10 (``image_size`` 32, ``patch`` 2, ``stem_channels`` 64): Conv3x3(3 -> stem_channels) + BatchNorm
  + GELU (the stem normalisation and activation are our choice), then a patch embedding
  Conv(stem_channels -> D, kernel = stride = patch), the encoder blocks, then GELU and the mean over the
  tokens ("nonlinearity and average pooling"), Dropout, Linear(D, n_classes).
* WikiText-2: one causal block, then LayerNorm + Dropout (the paper's "LayerNorm + dropout before the
  output") and a linear layer to the vocabulary, whose weight is tied to the token embedding when
  ``tie_weights`` (true, as in GPT-2; no bias then).

Input checks: tokens (int64, (B, N), 1 <= N <= max_len, ids below vocab_size), key_padding_mask and
images (shape, finite values) raise ValueError naming the argument and what was expected; activations
inside the model are not checked, so a diverging run shows NaN to the training loop instead of raising.
The value checks (id range, finite pixels) read the tensor's values, which synchronises a GPU: a training
run checks its whole dataset once (``astromorphic.data.batches``) and sets ``model.check_values = False``;
the shape and dtype checks stay on.

Probing: ``model.set_probe(True)`` makes every block record ``attn_ratio`` = ||attention term|| /
||block input|| (Frobenius norms over the real tokens of the whole batch) and turns on the attention's
``record_stats``; ``model.attention_probe()`` returns one dict per layer with ``attn_ratio`` and the
attention's ``last_stats`` (``value_sens`` = ||out(V) - out(V = 0)|| / ||out(V)|| for every attention
kind but none, and the sigmoid-argument mean and std for the linear-attention kinds).
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from astromorphic.attention import DEFAULT_CHUNK, AttentionSpec, build_attention, precompute_attention
from astromorphic.tasks import TASK_NAMES, get as get_task
from astromorphic.config import TASK_MODELS, ConfigError, describe_error

__all__ = [
    "TASKS",
    "Block",
    "TextClassifier",
    "VisionClassifier",
    "DecoderLM",
    "build_model",
    "resolve_model_cfg",
]

TASKS = TASK_NAMES

_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


def _fail(name: str, expected: str, got) -> ValueError:
    return ValueError(f"{name}: expected {expected}, got {got}")


def _check_tokens(tokens, max_len: int, vocab_size: int, values: bool = True) -> None:
    if not isinstance(tokens, Tensor) or tokens.dtype != torch.int64 or tokens.dim() != 2:
        got = f"{tokens.dtype} shape {tuple(tokens.shape)}" if isinstance(tokens, Tensor) else type(tokens).__name__
        raise _fail("tokens", "an int64 tensor of shape (B, N)", got)
    n = tokens.shape[1]
    if n < 1 or n > max_len:
        raise _fail("tokens", f"sequence length 1 <= N <= max_len={max_len}", f"N={n}")
    if values and tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab_size):
        raise _fail(
            "tokens", f"ids in [0, vocab_size={vocab_size})", f"ids in [{int(tokens.min())}, {int(tokens.max())}]"
        )


def _check_mask(mask, tokens: Tensor) -> None:
    if mask is None:
        return
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != tuple(tokens.shape):
        got = f"{mask.dtype} shape {tuple(mask.shape)}" if isinstance(mask, Tensor) else type(mask).__name__
        raise _fail("key_padding_mask", f"a bool tensor of shape (B, N) = {tuple(tokens.shape)}", got)


class Block(nn.Module):
    """Post-LN block: y = LN(x + attn(x)); out = LN(y + FFN(y))."""

    def __init__(
        self,
        spec: AttentionSpec,
        d_model: int,
        n_heads: int,
        ffn_mult: int,
        dropout: float,
        max_len: int,
        causal: bool,
        activation: str = "gelu",
        chunk_size: Optional[int] = DEFAULT_CHUNK,
    ):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise _fail("activation", f"one of {tuple(_ACTIVATIONS)}", repr(activation))
        self.attn = build_attention(spec, d_model, n_heads, max_len, causal, chunk_size=chunk_size)
        self.ln1 = nn.LayerNorm(d_model)
        self.ln2 = nn.LayerNorm(d_model)
        hidden = int(ffn_mult * d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, hidden), _ACTIVATIONS[activation](), nn.Linear(hidden, d_model))
        self.drop = nn.Dropout(dropout)
        self.attn_is_zero = getattr(self.attn, "kind", None) == "none"  # dropout of a zero term is zero
        self.probe = False
        self.last_probe: dict[str, float] = {}

    def forward(
        self, x: Tensor, key_padding_mask: Optional[Tensor] = None, precomputed: Optional[Tensor] = None
    ) -> Tensor:
        """``precomputed``: the attention's entry of ``precompute_attention`` (None: it computes its own)."""
        a = self.attn(x, key_padding_mask, precomputed)
        if self.probe:
            self.last_probe = {"attn_ratio": _norm_ratio(a, x, key_padding_mask), **dict(self.attn.last_stats)}
        y = self.ln1(x if self.attn_is_zero else x + self.drop(a))
        return self.ln2(y + self.drop(self.ffn(y)))


@torch.no_grad()
def _norm_ratio(a: Tensor, x: Tensor, mask: Optional[Tensor]) -> float:
    if mask is not None:
        keep = mask.unsqueeze(-1).to(a.dtype)
        a, x = a * keep, x * keep
    den = float(torch.linalg.vector_norm(x.float()))
    return float(torch.linalg.vector_norm(a.float())) / den if den > 0 else 0.0


class _BlockStack(nn.Module):
    """Shared parts: the blocks, the probe API, the position embedding."""

    def _init_stack(self, spec: AttentionSpec, cfg: dict, causal: bool) -> None:
        self.spec = spec
        self.d_model = cfg["d_model"]
        self.max_len = cfg["max_len"]
        self.blocks = nn.ModuleList(
            Block(
                spec,
                cfg["d_model"],
                cfg["n_heads"],
                cfg["ffn_mult"],
                cfg["dropout"],
                cfg["max_len"],
                causal,
                cfg["activation"],
                cfg["chunk_size"],
            )
            for _ in range(cfg["n_layers"])
        )
        if cfg["position_embedding"] == "learned":
            self.pos = nn.Parameter(torch.randn(cfg["max_len"], cfg["d_model"]) * 0.02)
        else:
            self.register_parameter("pos", None)
        self.embed_drop = nn.Dropout(cfg["dropout"])
        self.check_values = True  # see the module docstring: a training run checks its data once instead

    def _add_positions(self, x: Tensor) -> Tensor:
        if self.pos is not None:
            x = x + self.pos[: x.shape[1]]
        return self.embed_drop(x)

    def _run_blocks(self, x: Tensor, key_padding_mask: Optional[Tensor] = None) -> Tensor:
        # what the layers' attentions can share (the relative-position activities) in one call per forward
        shared = precompute_attention([block.attn for block in self.blocks], x.shape[1])
        for block, precomputed in zip(self.blocks, shared):
            x = block(x, key_padding_mask, precomputed)
        return x

    def set_probe(self, on: bool = True) -> None:
        for block in self.blocks:
            block.probe = bool(on)
            block.attn.record_stats = bool(on)
            if not on:
                block.last_probe = {}

    def attention_probe(self) -> list[dict[str, float]]:
        """Per-layer dicts from the last forward with probing on: attn_ratio plus the attention's stats."""
        return [dict(block.last_probe) for block in self.blocks]


class TextClassifier(_BlockStack):
    """IMDB encoder classifier: tokens (B, N) int64, key_padding_mask (B, N) bool -> logits (B, n_classes)."""

    @classmethod
    def from_data(cls, spec: AttentionSpec, cfg: dict, data_info: dict) -> "TextClassifier":
        return cls(spec, cfg, vocab_size=_positive_int(data_info, "vocab_size"),
                   n_classes=_positive_int(data_info, "n_classes"), embedding=data_info.get("embedding"),
                   pad_id=data_info.get("pad_id"))

    def __init__(self, spec: AttentionSpec, cfg: dict, vocab_size: int, n_classes: int, embedding=None, pad_id=None):
        super().__init__()
        self.vocab_size = vocab_size
        if embedding is not None:
            if not isinstance(embedding, Tensor) or embedding.dim() != 2 or embedding.shape[0] != vocab_size:
                got = tuple(embedding.shape) if isinstance(embedding, Tensor) else type(embedding).__name__
                raise _fail("data_info['embedding']", f"a (vocab_size={vocab_size}, E) tensor", got)
            self.embed = nn.Embedding.from_pretrained(
                embedding.float().clone(), freeze=bool(cfg.get("freeze_embedding", True)), padding_idx=pad_id
            )
            self.embed_proj: nn.Module = nn.Linear(embedding.shape[1], cfg["d_model"])
        else:
            self.embed = nn.Embedding(vocab_size, cfg["d_model"], padding_idx=pad_id)
            nn.init.normal_(self.embed.weight, std=0.02)
            if pad_id is not None:
                with torch.no_grad():
                    self.embed.weight[pad_id].zero_()
            self.embed_proj = nn.Identity()
        self._init_stack(spec, cfg, causal=False)
        self.head_drop = nn.Dropout(cfg["dropout"])
        self.head = nn.Linear(cfg["d_model"], n_classes)

    def forward(self, tokens: Tensor, key_padding_mask: Optional[Tensor] = None) -> Tensor:
        _check_tokens(tokens, self.max_len, self.vocab_size, self.check_values)
        _check_mask(key_padding_mask, tokens)
        x = self._add_positions(self.embed_proj(self.embed(tokens)))
        x = self._run_blocks(x, key_padding_mask)
        if key_padding_mask is None:
            pooled = x.mean(dim=1)
        else:
            keep = key_padding_mask.unsqueeze(-1).to(x.dtype)
            pooled = (x * keep).sum(dim=1) / keep.sum(dim=1).clamp_min(1.0)
        return self.head(self.head_drop(pooled))


class VisionClassifier(_BlockStack):
    """CIFAR-10 model: images (B, 3, S, S) float, normalised -> logits (B, n_classes)."""

    @classmethod
    def from_data(cls, spec: AttentionSpec, cfg: dict, data_info: dict) -> "VisionClassifier":
        return cls(spec, cfg, n_classes=int(data_info.get("n_classes", 10)))

    def __init__(self, spec: AttentionSpec, cfg: dict, n_classes: int):
        super().__init__()
        size, patch = cfg["image_size"], cfg["patch"]
        if size % patch:
            raise _fail("patch", f"a divisor of image_size={size}", patch)
        self.image_size = size
        self.n_tokens = (size // patch) ** 2
        if cfg["max_len"] < self.n_tokens:
            raise _fail("max_len", f">= the number of patches (image_size/patch)^2 = {self.n_tokens}", cfg["max_len"])
        c = cfg["stem_channels"]
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c), nn.GELU())
        self.patchify = nn.Conv2d(c, cfg["d_model"], kernel_size=patch, stride=patch)
        self._init_stack(spec, cfg, causal=False)
        self.head_drop = nn.Dropout(cfg["dropout"])
        self.head = nn.Linear(cfg["d_model"], n_classes)

    def forward(self, images: Tensor) -> Tensor:
        s = self.image_size
        if not isinstance(images, Tensor) or not images.is_floating_point() or tuple(images.shape[1:]) != (3, s, s):
            got = f"{images.dtype} shape {tuple(images.shape)}" if isinstance(images, Tensor) else type(images).__name__
            raise _fail("images", f"a float tensor of shape (B, 3, {s}, {s})", got)
        if self.check_values and not bool(torch.isfinite(images).all()):
            raise _fail("images", "finite values", "NaN or infinite entries")
        x = self.patchify(self.stem(images)).flatten(2).transpose(1, 2)  # (B, tokens, D)
        x = self._run_blocks(self._add_positions(x))
        return self.head(self.head_drop(F.gelu(x).mean(dim=1)))


class DecoderLM(_BlockStack):
    """WikiText-2 causal LM: tokens (B, N) int64 -> logits (B, N, vocab)."""

    @classmethod
    def from_data(cls, spec: AttentionSpec, cfg: dict, data_info: dict) -> "DecoderLM":
        if spec.leaky and spec.kind != "astromorphic":
            raise _fail("spec.leaky", "only with kind 'astromorphic'", f"kind {spec.kind!r}")
        return cls(spec, cfg, vocab_size=_positive_int(data_info, "vocab_size"))

    def __init__(self, spec: AttentionSpec, cfg: dict, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, cfg["d_model"])
        nn.init.normal_(self.embed.weight, std=0.02)
        self._init_stack(spec, cfg, causal=True)
        self.final_ln = nn.LayerNorm(cfg["d_model"])
        self.final_drop = nn.Dropout(cfg["dropout"])
        self.tie_weights = bool(cfg["tie_weights"])
        self.lm_head = nn.Linear(cfg["d_model"], vocab_size, bias=not self.tie_weights)
        if self.tie_weights:
            self.lm_head.weight = self.embed.weight

    def forward(self, tokens: Tensor) -> Tensor:
        _check_tokens(tokens, self.max_len, self.vocab_size, self.check_values)
        x = self._run_blocks(self._add_positions(self.embed(tokens)))
        return self.lm_head(self.final_drop(self.final_ln(x)))


def resolve_model_cfg(task: str, model_cfg: Optional[dict]) -> dict:
    """The model section of ``task`` (astromorphic.config: the paper's sizes as defaults) overridden by ``model_cfg``.

    Unknown keys and bad values are a ValueError naming the key.
    """
    from pydantic import ValidationError

    if task not in TASK_MODELS:
        raise _fail("task", f"one of {TASKS}", repr(task))
    section = TASK_MODELS[task].model_fields["model"].annotation
    try:
        return section.model_validate(dict(model_cfg or {})).model_dump()
    except ValidationError as exc:
        raise ConfigError(f"model_cfg.{describe_error(exc)}") from None


def _positive_int(data_info: dict, key: str) -> int:
    value = data_info.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(f"data_info['{key}']", "a positive integer", repr(value))
    return value


def build_model(task: str, spec: AttentionSpec, model_cfg: Optional[dict], data_info: Optional[dict]) -> nn.Module:
    """The model for ``task`` with attention ``spec``; see the module docstring for the defaults."""
    if not isinstance(spec, AttentionSpec):
        raise _fail("spec", "an AttentionSpec", type(spec).__name__)
    cfg = resolve_model_cfg(task, model_cfg)
    model_class = globals()[get_task(task).model_class]  # the registry names each task's class
    return model_class.from_data(spec, cfg, dict(data_info or {}))
