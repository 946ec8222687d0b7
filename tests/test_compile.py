"""The compiled training step (``train.compile``) and deterministic mode's memory fill
(``train.fill_uninitialized_memory``) on the CPU.

* A compiled model gives the eager model's outputs and gradients within float32 rounding (the fused kernels
  add in another order): max |difference| <= 1e-5 absolute + 1e-5 relative, on one training batch with dropout on
  (the compiled model draws the eager generator's dropout masks).
* A compiled run is deterministic (the same seed twice gives identical metrics) and resumes from its
  checkpoint to the numbers of an uninterrupted compiled run.
* With the memory fill off, every run gives bit for bit the numbers it gives with the fill on: the code never
  reads memory it did not write (docs/decisions.md).
"""

from __future__ import annotations

import pytest
import torch

from astromorphic import training
from astromorphic.config import validate_run
from astromorphic.data import load_prepared
from astromorphic.data.batches import make_task_data
from astromorphic.runs import read_metrics
from astromorphic.training import build_run_model, compiled_model, train_run
from test_training import data_dirs, strip_time, tiny_config, tiny_task  # noqa: F401 (data_dirs: a fixture)

ATOL = RTOL = 1e-5


def _one_batch_grads(net, step_net, data, batch, seed: int):
    """Outputs of ``step_net`` (the model or its compiled form) on one batch, and the gradients of ``net``."""
    net.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # the dropout masks
    out = step_net(*batch.inputs)
    data.loss(out, batch.targets).backward()
    return out.detach(), {name: p.grad.detach().clone() for name, p in net.named_parameters() if p.grad is not None}


@pytest.mark.slow
@pytest.mark.parametrize("task", ["imdb", "wikitext2"])
def test_compiled_model_equals_eager_within_rounding(task, data_dirs):  # noqa: F811
    cfg = validate_run({"label": "t", "synthetic": True, "tasks": {task: tiny_task(task)}}, task, "astro")
    splits, manifest = load_prepared(data_dirs[task])
    data = make_task_data(task, splits, manifest, cfg)
    torch.manual_seed(0)
    net, _ = build_run_model(task, "astro", cfg, data.model_info())
    net.check_values = False
    net.train()
    batch = next(iter(data.train_batches(torch.Generator().manual_seed(1))))
    eager_out, eager_grads = _one_batch_grads(net, net, data, batch, seed=5)
    compiled = compiled_model(net, "default")
    assert compiled is not net and compiled_model(net, None) is net
    out, grads = _one_batch_grads(net, compiled, data, batch, seed=5)
    torch.testing.assert_close(out, eager_out, atol=ATOL, rtol=RTOL)
    assert grads.keys() == eager_grads.keys() and grads
    for name, grad in grads.items():
        torch.testing.assert_close(grad, eager_grads[name], atol=ATOL, rtol=RTOL, msg=name)
    # dropout on: a different draw would differ far beyond rounding
    _, other = _one_batch_grads(net, compiled, data, batch, seed=6)
    assert any(not torch.allclose(other[n], g, atol=ATOL, rtol=RTOL) for n, g in grads.items())


class _Stop(Exception):
    pass


@pytest.mark.slow
def test_a_compiled_run_is_deterministic_resumes_and_says_it_was_compiled(data_dirs, tmp_path, monkeypatch):  # noqa: F811
    config = tiny_config("imdb", epochs=2, compile="default")
    first = train_run("imdb", "astro", 3, config, tmp_path / "a", data_dirs["imdb"])
    assert first["status"] == "finished"
    assert first["config"]["train"]["compile"] == "default" and first["precision"]["compile"] == "default"
    train_run("imdb", "astro", 3, config, tmp_path / "b", data_dirs["imdb"])
    assert strip_time(tmp_path / "b" / "metrics.csv") == strip_time(tmp_path / "a" / "metrics.csv")

    # Stopped after epoch 1, then run again: resumes from the checkpoint to the same numbers.
    real_epoch = training.TrainingRun.epoch

    def stop_in_epoch_2(self, epoch, *args):
        if epoch == 2:
            raise _Stop
        return real_epoch(self, epoch, *args)

    monkeypatch.setattr(training.TrainingRun, "epoch", stop_in_epoch_2)
    with pytest.raises(_Stop):
        train_run("imdb", "astro", 3, config, tmp_path / "c", data_dirs["imdb"])
    assert len(read_metrics(tmp_path / "c" / "metrics.csv")) == 2  # epochs 0 and 1
    monkeypatch.setattr(training.TrainingRun, "epoch", real_epoch)
    resumed = train_run("imdb", "astro", 3, config, tmp_path / "c", data_dirs["imdb"])
    assert resumed["resumed_from_epochs"] == [1]
    assert strip_time(tmp_path / "c" / "metrics.csv") == strip_time(tmp_path / "a" / "metrics.csv")
    # A compiled run is a run of its own: the eager run of the same seed has another fingerprint.
    eager = train_run("imdb", "astro", 3, tiny_config("imdb", epochs=2), tmp_path / "d", data_dirs["imdb"])
    assert eager["fingerprint"] != first["fingerprint"]


@pytest.mark.parametrize(
    "task, model",
    [("imdb", "astro"), ("imdb", "vanilla"), ("imdb", "linearized"), ("cifar10", "astro"), ("wikitext2", "astro")],
)
def test_the_memory_fill_changes_no_number(task, model, data_dirs, tmp_path):  # noqa: F811
    runs = {}
    for fill in (True, False):
        out = tmp_path / f"fill-{fill}"
        record = train_run(task, model, 1, tiny_config(task, epochs=2, fill_uninitialized_memory=fill), out,
                           data_dirs[task])  # fmt: skip
        assert record["precision"]["fill_uninitialized_memory"] is fill
        runs[fill] = (record, strip_time(out / "metrics.csv"))
    assert runs[True][1] == runs[False][1]
    # a runtime key: the two runs are the same run
    assert runs[True][0]["fingerprint"] == runs[False][0]["fingerprint"]
    assert torch.utils.deterministic.fill_uninitialized_memory is True  # the process-wide setting came back
