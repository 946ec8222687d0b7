"""One training epoch of a run (astromorphic.training): the step loop, which never waits for the device.

Each step's loss (times its units) and gradient norm stay on the device in float64 and are read back every
``train.sync_every`` steps and at the end of the epoch; the epoch's ``train_loss`` and ``grad_norm`` are then
summed on the host in step order. A non-finite loss or norm stops the epoch at the step where it first occurred.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from astromorphic.training.evaluation import autocast
from astromorphic.runs import fmt_cell

DEFAULT_SYNC_EVERY_CUDA = 50  # train.sync_every when null on CUDA: steps between reads of the losses


def train_epoch(run: Any, epoch: int, inject, step_delay: float, show_progress: bool) -> dict:
    """One pass over the training batches; stops at the first non-finite loss or gradient norm.

    The step never waits for the device: each step's loss and gradient norm stay on it (float64) and are
    read every ``train.sync_every`` steps and at the end of the epoch (default: every step on the CPU, where
    reading costs nothing, and every 50 on CUDA). A non-finite value found there stops the run and is reported
    at the step where it first occurred; with ``sync_every`` 1 the run stops before that step's update.
    """
    from tqdm import tqdm

    net, data, optimizer, device = run.net, run.data, run.optimizer, run.device
    net.train()
    clip = run.train.get("grad_clip")
    params = [p for p in net.parameters() if p.requires_grad]
    n_steps = data.n_train_batches()
    sync_every = int(run.train.get("sync_every") or (1 if device.type == "cpu" else DEFAULT_SYNC_EVERY_CUDA))
    losses = torch.zeros(n_steps, dtype=torch.float64, device=device)  # loss x units of each step
    norms = torch.zeros(n_steps, dtype=torch.float64, device=device)
    counts: list[int] = []  # units of each step (known on the host)
    bar = tqdm(total=n_steps, desc=f"epoch {epoch}", unit="batch", disable=not show_progress, leave=False,
               dynamic_ncols=True)  # fmt: skip
    checked = 0  # steps whose values were read back and found finite
    curve_s = 0.0  # time spent on learning-curve points (not training time)
    diverged, lr = None, optimizer.param_groups[0]["lr"]
    t0 = time.perf_counter()
    with bar:
        for step, batch in enumerate(data.train_batches(run.data_gen)):
            lr = optimizer.param_groups[0]["lr"]
            optimizer.zero_grad(set_to_none=True)
            with autocast(device, run.dtype):
                logits = run.step_net(*batch.inputs)
            loss = data.loss(logits, batch.targets)
            if inject is not None and inject == (epoch, step):
                loss = loss * float("nan")  # testing hook: a non-finite loss on demand
            n = data.units(batch)
            counts.append(n)
            losses[step] = loss.detach().double() * n
            if sync_every == 1 and not math.isfinite(float(losses[step])):
                diverged = _divergence(step, "loss", float(losses[step]) / n)
                break
            loss.backward()
            norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
            norms[step] = norm.double()
            if sync_every == 1 and not math.isfinite(float(norms[step])):
                diverged = _divergence(step, "grad_norm", float(norms[step]))
                break
            if clip:
                torch.nn.utils.clip_grads_with_norm_(params, float(clip), norm)
            optimizer.step()
            run.scheduler.step()
            done = (epoch - 1) * run.steps_per_epoch + step + 1  # optimiser steps of the run so far
            if run.curve_every and done % run.curve_every == 0:
                curve_s += run.add_curve_point(done)
            if sync_every > 1 and (step + 1) % sync_every == 0:
                diverged = _first_nonfinite(losses, norms, counts, checked, step + 1)
                checked = step + 1
                if diverged is not None:
                    break
            if show_progress:
                if sync_every == 1 or checked == step + 1:  # the loss is on the host only then
                    bar.set_postfix(loss=f"{float(losses[step]) / n:.4f}", refresh=False)
                bar.update(1)
            if step_delay:
                time.sleep(step_delay)
    steps = len(counts)
    if diverged is None and sync_every > 1 and checked < steps:
        diverged = _first_nonfinite(losses, norms, counts, checked, steps)
    if diverged is not None:
        steps = diverged["step"]  # the completed steps before it
    return {"diverged": diverged, **_epoch_means(losses, norms, counts, steps), "lr": lr,
            "train_s": time.perf_counter() - t0 - curve_s}  # fmt: skip


def _epoch_means(losses: torch.Tensor, norms: torch.Tensor, counts: list[int], steps: int) -> dict:
    """The epoch's loss per unit and mean gradient norm over its first ``steps`` steps, summed on the host in
    step order (as the epoch ran), from one read of the device."""
    loss_values, norm_values = torch.stack([losses[:steps], norms[:steps]]).tolist()
    units = sum(counts[:steps])
    loss_sum = norm_sum = 0.0
    for value, norm_value in zip(loss_values, norm_values):
        loss_sum, norm_sum = loss_sum + value, norm_sum + norm_value
    return {"loss": loss_sum / units if units else None, "grad_norm": norm_sum / steps if steps else None,
            "units": units}  # fmt: skip


def _divergence(step: int, quantity: str, value: float) -> dict:
    return {"step": step, "quantity": quantity, "value": fmt_cell(value)}


def _first_nonfinite(losses: torch.Tensor, norms: torch.Tensor, counts: list[int], start: int, stop: int):
    """The first of steps [start, stop) whose loss or gradient norm is not finite (one read of the device)."""
    window = torch.stack([losses[start:stop], norms[start:stop]]).cpu()
    bad = (~torch.isfinite(window)).any(dim=0).nonzero()
    if bad.numel() == 0:
        return None
    i = int(bad[0])
    loss_value = float(window[0, i]) / counts[start + i]
    if not math.isfinite(loss_value):
        return _divergence(start + i, "loss", loss_value)
    return _divergence(start + i, "grad_norm", float(window[1, i]))
