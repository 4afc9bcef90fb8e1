"""The engine interface every backend implements: declared I/O, checked feeds, run, close."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from emotrt.runtime.contract import ModelContract
from emotrt.runtime.errors import BackendError

Dim = Union[int, str, None]


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: name, shape (a str/None dim is dynamic) and numpy dtype."""

    name: str
    shape: Tuple[Dim, ...]
    dtype: np.dtype

    def problems_with(self, array: np.ndarray) -> List[str]:
        found = []
        if array.dtype != self.dtype:
            found.append("{}: dtype {} (expected {})".format(self.name, array.dtype, self.dtype))
        if len(array.shape) != len(self.shape) or any(
            isinstance(d, int) and d != a for d, a in zip(self.shape, array.shape)
        ):
            found.append("{}: shape {} (expected {})".format(self.name, tuple(array.shape), self.shape))
        return found


class Engine(ABC):
    """A loaded model. Use as a context manager; ``run`` checks the feed against ``inputs``."""

    inputs: Sequence[TensorSpec] = ()
    outputs: Sequence[TensorSpec] = ()
    contract: Optional[ModelContract] = None
    name: str = "engine"

    def run(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Check ``feed`` and return every output by name."""
        self.check_feed(feed)
        return self._run(feed)

    def check_feed(self, feed: Dict[str, np.ndarray]) -> None:
        """Raise one :class:`BackendError` listing every missing, extra or mis-shaped input."""
        problems = []
        expected = {spec.name: spec for spec in self.inputs}
        for name in expected:
            if name not in feed:
                problems.append("missing input " + name)
        for name, array in feed.items():
            spec = expected.get(name)
            if spec is None:
                problems.append("unexpected input " + name)
            else:
                problems.extend(spec.problems_with(np.asarray(array)))
        if problems:
            raise BackendError("{}: bad feed: {}".format(self.name, "; ".join(problems)))

    @abstractmethod
    def _run(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Run without checking (hot path callers that prepared their own buffers)."""

    def create_stepper(self) -> Any:
        """A per-stream driver for a streaming graph (``state_in.*`` -> ``state_out.*`` each hop)."""
        from emotrt.runtime.backends.stepper import HostStepper

        return HostStepper(self)

    def close(self) -> None:
        """Release the backend's resources; idempotent."""

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
