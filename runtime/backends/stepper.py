"""Drive a streaming graph hop by hop, carrying ``state_out.*`` back into ``state_in.*``.

This host-side stepper serves every backend whose outputs come back as numpy arrays
(ONNX Runtime). The TensorRT backend provides its own that keeps the state on the GPU.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np

from emotrt.runtime.contract import ModelContract
from emotrt.runtime.errors import ModelContractError


def state_arrays(contract: ModelContract) -> Dict[str, np.ndarray]:
    """Initial value of every state input, by ``state_in.<name>``."""
    return {s.input_name: np.full(s.shape, s.init, dtype=np.float32) for s in contract.states}


def require_contract(engine: Any) -> ModelContract:
    """The engine's contract, or a clear error for a graph exported without one."""
    if engine.contract is None:
        raise ModelContractError(
            "{} carries no emotrt contract, so its streaming state is unknown".format(engine.name),
            hint="re-export it with `emotrt export`",
        )
    return engine.contract


class HostStepper:
    """State lives in numpy arrays; each hop feeds the previous hop's outputs back."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.contract = require_contract(engine)
        self._pairs: List[Tuple[str, str]] = [(s.input_name, s.output_name) for s in self.contract.states]
        self._feed: Dict[str, np.ndarray] = {}
        self.reset()

    def reset(self) -> None:
        """Back to the contract's initial state (a new utterance or stream)."""
        self._feed = state_arrays(self.contract)

    def step(self, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Run one hop on ``inputs`` (non-state tensors) and advance the state."""
        self._feed.update(inputs)
        out = self.engine._run(self._feed)
        for name_in, name_out in self._pairs:
            self._feed[name_in] = out[name_out]
        return out

    def close(self) -> None:
        """Nothing to release: the arrays belong to Python."""
