"""Runtime fixtures: one session-wide directory of tiny graphs and tables, pipelines built on it."""
from pathlib import Path

import numpy as np
import pytest

from emotrt.runtime.backends import load_engine
from emotrt.runtime.pipeline import Pipeline
from emotrt.runtime.tables import VectorTable
from tests.runtime import graphs


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory) -> Path:
    return graphs.write_export_dir(tmp_path_factory.mktemp("runtime-export"))


@pytest.fixture
def make_pipeline(export_dir):
    """Factory: a Pipeline from the tiny graphs (closed at teardown)."""
    made = []

    def make(**kwargs) -> Pipeline:
        pipeline = Pipeline(
            load_engine(export_dir / "tse_step.onnx"),
            load_engine(export_dir / "ser.onnx"),
            VectorTable(export_dir / "env", kind="environment"),
            VectorTable(export_dir / "speakers", kind="speaker"),
            **kwargs
        )
        made.append(pipeline)
        return pipeline

    yield make
    for pipeline in made:
        pipeline.close()


@pytest.fixture(scope="session")
def speech_like() -> np.ndarray:
    """1.5 s at 16 kHz: 0.5 s silence, 0.75 s of a modulated harmonic tone, 0.25 s silence (seeded)."""
    rng = np.random.default_rng(3)
    t = np.arange(12000) / graphs.RATE
    voiced = 0.2 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    voiced += 0.02 * rng.normal(size=t.shape)
    out = np.concatenate([np.zeros(8000), voiced, np.zeros(4000)]).astype(np.float32)
    return out

