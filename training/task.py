"""What the generic trainer needs from a training task (TSE, SER, joint)."""
from __future__ import annotations

from typing import Any, Dict, Iterator, Protocol, Tuple


class Task(Protocol):
    """A model plus its data and losses. The trainer owns optimisation, checkpoints and logging.

    ``validate`` returns metrics including ``score`` (higher is better) used to pick the
    best checkpoint; ``checkpoint_config`` is the dict stored as the checkpoint's
    ``config.json`` (family, dimensions, audio settings, labels).

    A task whose model holds several deployable models (joint) may also define
    ``export_checkpoints(model, ckpt_dir, training)``: the trainer calls it after writing each
    checkpoint so the task can write the parts' own checkpoints inside ``ckpt_dir``.
    """

    name: str

    def build_model(self) -> Any: ...

    def train_batches(self, seed: int) -> Iterator[Dict[str, Any]]: ...

    def loss(self, model: Any, batch: Dict[str, Any]) -> Tuple[Any, Dict[str, float]]: ...

    def validate(self, model: Any) -> Dict[str, float]: ...

    def checkpoint_config(self, model: Any) -> Dict[str, Any]: ...
