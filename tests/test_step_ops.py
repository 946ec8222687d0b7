"""Operator calls of one training step (forward, backward, gradient norm, fused AdamW) of the paper's CIFAR-10
model (config/paper.yaml: d_model 256, 8 layers, 8 heads, 256 patches), counted on the CPU by the profiler.

The eager GPU step is bound by kernel launches, so every top-level operator call (an aten event with no
aten ancestor) counts. The linear-attention presets issue at most RATIO_BOUND[preset] times the calls of the
softmax model (docs/decisions.md, "Operator calls of a training step")."""

from __future__ import annotations

import collections

import pytest
import torch

from astromorphic.config import validate_config, validate_run
from astromorphic.training import build_run_model

# The bound per preset: 1.2 of the issue (docs/decisions.md).
RATIO_BOUND = {
    "linearized": 1.2,
    "astro": 1.2,
    "astro-no-relpos": 1.2,
    "astro-no-nonlin": 1.2,
    "astro-no-feedback": 1.2,
    "astro-gate-only": 1.2,
}


def top_level_ops(preset: str, batch: int = 2) -> collections.Counter:
    """aten operator calls of one training step with no aten operator above them, by name."""
    cfg = validate_run(validate_config(None), "cifar10", preset)
    torch.manual_seed(0)
    net, _ = build_run_model("cifar10", preset, cfg, {"vocab_size": 1000, "n_classes": 10, "pad_id": 0})
    net.check_values = False
    net.train()
    params = list(net.parameters())
    opt = torch.optim.AdamW(params, fused=True)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
        opt.step()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the count does not depend on it; the test leaves the other cores alone
    try:
        step()  # the optimizer's state is created in the first step
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            step()
    finally:
        torch.set_num_threads(threads)
    counts: collections.Counter = collections.Counter()
    for event in prof.events():
        if not event.name.startswith("aten::"):
            continue
        parent = event.cpu_parent
        while parent is not None and not parent.name.startswith("aten::"):
            parent = parent.cpu_parent
        if parent is None:
            counts[event.name] += 1
    return counts


@pytest.fixture(scope="module")
def vanilla_ops() -> int:
    return sum(top_level_ops("vanilla").values())


@pytest.mark.parametrize("preset", list(RATIO_BOUND))
def test_training_step_operator_calls(preset, vanilla_ops):
    ops = sum(top_level_ops(preset).values())
    print(f"{preset}: {ops} operator calls, vanilla {vanilla_ops}, ratio {ops / vanilla_ops:.3f}")
    assert ops <= RATIO_BOUND[preset] * vanilla_ops
