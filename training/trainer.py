"""The generic training loop: any :class:`emotrt.training.task.Task` (TSE, SER, joint).

The trainer owns what is common: seeding, AdamW with warm-up and cosine decay, gradient
clipping, resumable checkpoints, metrics as JSONL (TensorBoard too when installed), a rich
progress bar, validation every ``epoch_steps`` with best-checkpoint selection, and data
parallelism over ``torchrun`` processes. The task owns the model, data and losses.

Run directory (``[train] out``)::

    last/                 checkpoint (config.json + model.safetensors), written atomically
    last.trainer.pt       optimizer, scheduler and RNG state beside it (same step), for resuming
    best/                 checkpoint with the highest validation ``score``
    metrics.jsonl         one JSON line per logged train interval and per validation

Rerunning the same recipe resumes from ``last``. The data stream restarts from
``task.train_batches(seed + step)``, so a resumed run is deterministic given where it resumed.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple

import torch

from emotrt.runtime.atomic import atomic_file, make_dirs
from emotrt.runtime.errors import ConfigError
from emotrt.training.checkpoint import load_checkpoint, read_config, save_checkpoint
from emotrt.training.recipe import Recipe, TrainConfig
from emotrt.training.task import Task

log = logging.getLogger(__name__)

LAST, BEST, STATE, METRICS = "last", "best", "last.trainer.pt", "metrics.jsonl"


@dataclass
class TrainResult:
    """What a training run ended with."""

    out: Path
    step: int
    best_score: Optional[float]
    valid: Dict[str, float] = field(default_factory=dict)
    resumed_from: int = 0
    stopped_early: bool = False
    model: Any = None  # the trained model (last step, not best)
    rank: int = 0  # this process's rank in a torchrun job


@dataclass
class _Dist:
    """This process's place in a torchrun job (world 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def close(self, ok: bool) -> None:
        """Leave the process group this run created. After a run that ended well the ranks leave together:
        a rank exiting while another still holds its gloo connections can abort that one (SIGABRT). After an
        error, no barrier: the other ranks may never reach it, and torchrun stops them."""
        if not self.owns_group:
            return
        import torch.distributed as dist

        if ok:
            dist.barrier()
        dist.destroy_process_group()


def _init_distributed() -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist(device=torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if cuda else "gloo")
    return _Dist(rank=dist.get_rank(), world=world, device=torch.device("cuda", local) if cuda else torch.device("cpu"),
                 owns_group=owns)


def _average_gradients(model: torch.nn.Module, world: int) -> None:
    """All-reduce gradients across ranks.

    Done by hand rather than with ``DistributedDataParallel`` so tasks may call any model
    method in their loss (``enroll`` then ``forward``), which DDP's forward hooks do not see.
    """
    import torch.distributed as dist

    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def _schedule(cfg: TrainConfig):
    """LR multiplier per step: linear warm-up, then cosine decay to ``min_lr``."""

    def factor(step: int) -> float:
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        span = max(1, cfg.steps - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        floor = cfg.min_lr / cfg.lr
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def _to_device(batch: Dict[str, Any], device: torch.device) -> Dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


class _Metrics:
    """metrics.jsonl, plus TensorBoard scalars when the tensorboard package is installed."""

    def __init__(self, out: Path, enabled: bool) -> None:
        self.path = out / METRICS
        self.enabled = enabled
        self.board = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.debug("tensorboard not installed: metrics go to %s only", self.path)
            else:
                self.board = SummaryWriter(str(out / "tensorboard"))

    def write(self, split: str, step: int, values: Dict[str, float]) -> None:
        if not self.enabled:
            return
        line = dict(values, split=split, step=step, time=round(time.time(), 3))
        with self.path.open("a") as fh:
            fh.write(json.dumps(line, sort_keys=True) + "\n")
        if self.board is not None:
            for key, value in values.items():
                self.board.add_scalar("{}/{}".format(split, key), value, step)

    def close(self) -> None:
        if self.board is not None:
            self.board.close()


@dataclass
class _Checkpoints:
    """The run's checkpoint writer: ``last/`` (with the resume state beside it) and ``best/``; main rank only."""

    out: Path
    task: Task
    model: torch.nn.Module
    optimizer: Any
    scheduler: Any
    recipe: Recipe
    enabled: bool = True

    def save(self, step: int, best: Optional[float], name: str = LAST) -> None:
        if not self.enabled:
            return
        config = dict(self.task.checkpoint_config(self.model))
        config["training"] = {
            "task": self.recipe.task,
            "step": step,
            "best_score": best,
            "seed": self.recipe.train.seed,
            "recipe": dict(self.recipe.raw),
            "recipe_file": self.recipe.source,
            "torch": torch.__version__,
            "saved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        save_checkpoint(self.out / name, self.model.state_dict(), config)
        export = getattr(self.task, "export_checkpoints", None)
        if export is not None:
            export(self.model, self.out / name, config["training"])
        if name != LAST:
            return
        state = {
            "step": step,
            "best_score": best,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        with atomic_file(self.out / STATE) as tmp:
            torch.save(state, tmp)


def _resume(out: Path, task: Task, model: torch.nn.Module, optimizer, scheduler, recipe: Recipe):
    """(step, best score) restored from ``out/last``, or (0, None) for a fresh run."""
    if not (out / LAST).is_dir():
        return 0, None
    config = read_config(out / LAST)
    done_task = config.get("training", {}).get("task")
    if done_task != recipe.task:
        raise ConfigError("{} holds a {!r} run, not {!r}".format(out, done_task, recipe.task),
                          hint="--set train.out=<a new directory>")
    _, weights = load_checkpoint(out / LAST)
    model.load_state_dict(weights)
    step = int(config["training"]["step"])
    best = config["training"].get("best_score")
    state_path = out / STATE
    state = torch.load(str(state_path), weights_only=True) if state_path.is_file() else None
    if state is not None and state["step"] == step:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
    else:
        log.warning("%s does not match last/ (step %s); resuming weights with a fresh optimizer", state_path, step)
        for _ in range(step):
            scheduler.step()
    return step, best


def _batches(task: Task, seed: int, device: torch.device) -> Iterator[Dict[str, Any]]:
    for batch in task.train_batches(seed):
        yield _to_device(batch, device)


class _Interval:
    """Running means of the step values between two train log lines, and the step rate."""

    def __init__(self) -> None:
        self.sums: Dict[str, float] = {}
        self.steps = 0
        self.start = time.monotonic()

    def add(self, values: Dict[str, float]) -> None:
        self.steps += 1
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value)

    def summary(self) -> Tuple[Dict[str, float], float]:
        rate = self.steps / max(1e-9, time.monotonic() - self.start)
        return {k: v / self.steps for k, v in self.sums.items()}, rate


def _step(task: Task, model: torch.nn.Module, optimizer: Any, scheduler: Any, batch: Dict[str, Any],
          cfg: TrainConfig, dist: _Dist) -> Dict[str, float]:
    """One optimisation step; the loss parts (and ``loss``, ``grad_norm``) it logs."""
    model.train()
    loss, parts = task.loss(model, batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if dist.world > 1:
        _average_gradients(model, dist.world)
    if cfg.grad_clip:
        parts = dict(parts, grad_norm=float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)))
    optimizer.step()
    scheduler.step()
    return dict(parts, loss=loss.item())


def _progress_bar(show: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeRemainingColumn(), disable=not show)


def train(task: Task, recipe: Recipe, progress: bool = True) -> TrainResult:
    """Train ``task`` as ``recipe.train`` says, resuming from ``out/last`` when it exists."""
    dist = _init_distributed()
    ok = False
    try:
        result = _train(task, recipe, progress, dist)
        ok = True
        return result
    finally:
        dist.close(ok)


def _train(task: Task, recipe: Recipe, progress: bool, dist: _Dist) -> TrainResult:
    cfg = recipe.train
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    out = make_dirs(cfg.out)

    model = task.build_model().to(dist.device)
    torch.manual_seed(cfg.seed + dist.rank)  # then a different stream per rank (dropout, augmentation)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(cfg))
    start, best = _resume(out, task, model, optimizer, scheduler, recipe)
    if start:
        log.info("resuming %s at step %d", out, start)
    if cfg.stop_step and cfg.stop_step <= start < cfg.steps:
        # a rerun of a phase that already ended must not go on training with that phase's settings
        log.warning("%s is at step %d, at or past stop_step %d: nothing trained; rerun without stop_step to go on",
                    out, start, cfg.stop_step)
        return TrainResult(out=out, step=start, best_score=best, resumed_from=start, stopped_early=True, model=model,
                           rank=dist.rank)
    checkpoints = _Checkpoints(out, task, model, optimizer, scheduler, recipe, enabled=dist.main)
    metrics = _Metrics(out, dist.main)
    result = TrainResult(out=out, step=start, best_score=best, resumed_from=start, rank=dist.rank)
    began = last_save = time.monotonic()
    interval = _Interval()
    step = start
    data = _batches(task, cfg.seed + step + 1000003 * dist.rank, dist.device)
    bar = _progress_bar(progress and dist.main)
    try:
        with bar:
            bar_id = bar.add_task("train " + recipe.task, total=cfg.steps, completed=step, info="")
            while step < cfg.steps:
                interval.add(_step(task, model, optimizer, scheduler, next(data), cfg, dist))
                step += 1
                if step % cfg.log_every == 0 or step == cfg.steps:
                    values, rate = interval.summary()
                    metrics.write("train", step, dict(values, lr=scheduler.get_last_lr()[0], steps_per_s=rate))
                    bar.update(bar_id, info="loss {:.3f} {:.2f} it/s".format(values["loss"], rate))
                    interval = _Interval()
                bar.update(bar_id, completed=step)
                if step % cfg.epoch_steps == 0 or step == cfg.steps:
                    result.valid = _validate(task, model, dist)
                    metrics.write("valid", step, result.valid)
                    log.info("step %d valid %s", step, " ".join("{}={:.4g}".format(k, v) for k, v in result.valid.items()))
                    score = result.valid.get("score")
                    if dist.main and score is not None and (best is None or score > best):
                        best = score
                        checkpoints.save(step, best, name=BEST)
                    checkpoints.save(step, best)
                    last_save = time.monotonic()
                elif dist.main and time.monotonic() - last_save > 60 * cfg.checkpoint_minutes:
                    checkpoints.save(step, best)
                    last_save = time.monotonic()
                out_of_time = cfg.max_minutes and time.monotonic() - began > 60 * cfg.max_minutes
                if (out_of_time or step == cfg.stop_step) and step < cfg.steps:
                    checkpoints.save(step, best)
                    log.info("stopping at step %d (%s); rerun to resume", step,
                             "stop_step" if step == cfg.stop_step else "max_minutes")
                    result.stopped_early = True
                    break
    except KeyboardInterrupt:
        checkpoints.save(step, best)
        log.warning("interrupted at step %d; saved %s, rerun the same command to resume", step, out / LAST)
        raise
    finally:
        metrics.close()
    result.step, result.best_score, result.model = step, best, model
    return result


def _validate(task: Task, model: torch.nn.Module, dist: _Dist) -> Dict[str, float]:
    """The task's validation metrics, computed on the main rank and shared with the others."""
    model.eval()
    values: Dict[str, float] = {}
    if dist.main:
        with torch.no_grad():
            values = {k: float(v) for k, v in task.validate(model).items()}
    if dist.world > 1:
        import torch.distributed as tdist

        box = [values]
        tdist.broadcast_object_list(box, src=0)
        values = box[0]
    model.train()
    return values
