"""The generic trainer on a real (tiny) Task: learning, checkpoints, resume, metrics, best selection."""
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from emotrt.runtime.errors import ConfigError
from emotrt.training.checkpoint import load_checkpoint, read_config
from emotrt.training.recipe import recipe_from_dict
from emotrt.training.trainer import STATE, train


class Regression:
    """Fit y = x·w with a linear layer: a complete Task in a dozen lines."""

    name = "toy"

    def __init__(self):
        self.w = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])

    def build_model(self):
        return torch.nn.Linear(4, 1)

    def train_batches(self, seed):
        g = torch.Generator().manual_seed(seed)
        while True:
            x = torch.randn(16, 4, generator=g)
            yield {"x": x, "y": x @ self.w}

    def loss(self, model, batch):
        loss = torch.nn.functional.mse_loss(model(batch["x"]), batch["y"])
        return loss, {"mse": loss.item()}

    def validate(self, model):
        x = torch.randn(64, 4, generator=torch.Generator().manual_seed(7))
        mse = float(torch.nn.functional.mse_loss(model(x), x @ self.w))
        return {"score": -mse, "mse": mse}

    def checkpoint_config(self, model):
        return {"family": "toy_linear", "inputs": 4}


class FixedBatches(Regression):
    """The same batch every step, so a resumed run must match a straight one exactly."""

    def train_batches(self, seed):
        batch = next(super().train_batches(0))
        while True:
            yield batch


def _recipe(out, *overrides):
    base = {"task": "toy", "train": {"out": str(out), "steps": 60, "epoch_steps": 20, "lr": 0.2, "log_every": 10}}
    return recipe_from_dict(base, list(overrides))


def _lines(out, split):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
            if json.loads(line)["split"] == split]


def test_trains_logs_and_keeps_the_best(tmp_path):
    result = train(Regression(), _recipe(tmp_path), progress=False)
    assert result.step == 60 and not result.stopped_early
    valid = _lines(tmp_path, "valid")
    assert [v["step"] for v in valid] == [20, 40, 60]
    assert valid[-1]["mse"] < min(0.1, valid[0]["mse"])  # the target weights have norm 3.8
    assert [t["step"] for t in _lines(tmp_path, "train")] == [10, 20, 30, 40, 50, 60]
    best = read_config(tmp_path / "best")
    assert best["training"]["best_score"] == max(v["score"] for v in valid)
    assert best["family"] == "toy_linear" and best["training"]["recipe"]["train"]["steps"] == 60
    assert (tmp_path / STATE).is_file()


def test_time_limit_stops_and_rerun_resumes_to_the_same_weights(tmp_path):
    straight = tmp_path / "straight"
    train(FixedBatches(), _recipe(straight, "train.steps=30"), progress=False)
    pieces = tmp_path / "pieces"
    first = train(FixedBatches(), _recipe(pieces, "train.steps=30", "train.max_minutes=1e-9"), progress=False)
    assert first.stopped_early and first.step == 1
    assert read_config(pieces / "last")["training"]["step"] == 1
    second = train(FixedBatches(), _recipe(pieces, "train.steps=30"), progress=False)
    assert second.resumed_from == 1 and second.step == 30
    # Optimizer moments, LR schedule and RNG all resumed: identical to the uninterrupted run.
    _, a = load_checkpoint(straight / "last")
    _, b = load_checkpoint(pieces / "last")
    assert torch.allclose(a["weight"], b["weight"], atol=1e-6)


def test_stop_step_pauses_a_run_that_resumes_with_other_data_settings(tmp_path):
    first = train(FixedBatches(), _recipe(tmp_path, "train.steps=30", "train.stop_step=12"), progress=False)
    assert first.stopped_early and first.step == 12
    again = train(FixedBatches(), _recipe(tmp_path, "train.steps=30", "train.stop_step=12"), progress=False)
    assert again.stopped_early and again.step == 12  # rerunning the finished phase trains nothing
    second = train(FixedBatches(), _recipe(tmp_path, "train.steps=30"), progress=False)
    assert second.resumed_from == 12 and second.step == 30 and not second.stopped_early


def test_same_seed_same_result(tmp_path):
    train(Regression(), _recipe(tmp_path / "a", "train.steps=10"), progress=False)
    train(Regression(), _recipe(tmp_path / "b", "train.steps=10"), progress=False)
    assert torch.equal(load_checkpoint(tmp_path / "a" / "last")[1]["weight"],
                       load_checkpoint(tmp_path / "b" / "last")[1]["weight"])


def test_interrupt_saves_the_last_completed_step(tmp_path):
    class Interrupted(Regression):
        calls = 0

        def loss(self, model, batch):
            Interrupted.calls += 1
            if Interrupted.calls == 4:
                raise KeyboardInterrupt
            return super().loss(model, batch)

    with pytest.raises(KeyboardInterrupt):
        train(Interrupted(), _recipe(tmp_path), progress=False)
    assert read_config(tmp_path / "last")["training"]["step"] == 3
    assert torch.load(str(tmp_path / STATE), weights_only=True)["step"] == 3


def test_resuming_another_task_is_an_error(tmp_path):
    train(Regression(), _recipe(tmp_path, "train.steps=2"), progress=False)
    other = recipe_from_dict({"task": "tse", "train": {"out": str(tmp_path), "steps": 4}})
    with pytest.raises(ConfigError, match="holds a 'toy' run"):
        train(Regression(), other, progress=False)


@pytest.mark.slow
def test_two_process_torchrun_keeps_ranks_in_sync(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(textwrap.dedent("""
        import sys
        sys.path.insert(0, {tests!r})
        import torch
        from test_trainer import Regression, _recipe
        from emotrt.training.trainer import train
        result = train(Regression(), _recipe({out!r}, "train.steps=6", "train.epoch_steps=3"), progress=False)
        torch.save(result.model.state_dict(), {out!r} + "/rank%d.pt" % result.rank)
        import torch.distributed as dist
        assert not dist.is_initialized()  # the run left the process group it made, both ranks together
    """).format(tests=os.path.dirname(__file__), out=str(tmp_path / "run")))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[:3000]  # the workers' own messages come first
    assert len(_lines(tmp_path / "run", "valid")) == 2  # only rank 0 writes
    # Each rank saw its own data; averaged gradients keep the replicas identical.
    ranks = [torch.load(str(tmp_path / "run" / "rank{}.pt".format(r)), weights_only=True) for r in (0, 1)]
    assert torch.equal(ranks[0]["weight"], ranks[1]["weight"])
    assert torch.equal(ranks[0]["weight"], load_checkpoint(tmp_path / "run" / "last")[1]["weight"])
