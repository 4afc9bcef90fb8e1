"""Runtime fixtures (a pytest plugin, registered in tests/conftest.py): tiny graphs, tables, bundles, pipelines."""
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from emotrt.runtime.backends import load_engine
from emotrt.runtime.pipeline import Pipeline
from emotrt.runtime.tables import VectorTable
from tests.runtime import graphs


@pytest.fixture(autouse=True)
def private_cache_home(tmp_path_factory, monkeypatch) -> None:
    """Keep records of verified bundles (``emotrt run``) out of the real ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache-home"))


@pytest.fixture(scope="session")
def runtime_models(tmp_path_factory) -> Path:
    return graphs.write_export_dir(tmp_path_factory.mktemp("runtime-export"))


@pytest.fixture
def make_pipeline(runtime_models):
    """Factory: a Pipeline from the tiny graphs (closed at teardown)."""
    made = []

    def make(**kwargs) -> Pipeline:
        pipeline = Pipeline(
            load_engine(runtime_models / "tse_step.onnx"),
            load_engine(runtime_models / "ser.onnx"),
            VectorTable(runtime_models / "env", kind="environment"),
            VectorTable(runtime_models / "speakers", kind="speaker"),
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



DEVICE = {"tensorrt": "10.3.0", "compute_capability": "8.7", "l4t": "36.4.0", "cuda": "12.6"}


def _stage_fake_plans(staging: Path, models: dict):
    """Engines for DEVICE: the fp32 ONNX bytes as 'plans' (what the recording TensorRT double runs)."""
    import shutil

    from emotrt.devices.bundle_writer import Staged
    from emotrt.runtime.fingerprint import EngineFingerprint
    from emotrt.runtime.manifest import EngineEntry, sha256_file

    engines = []
    for name in ("tse_step", "ser"):
        onnx_rel = models[name].variants["fp32"]
        fp = EngineFingerprint(onnx_sha256=sha256_file(staging / onnx_rel), precision_recipe="fp32", shapes={},
                               **DEVICE)
        plan = Path("engines") / fp.fingerprint_id / (name + ".plan")
        (staging / plan).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(str(staging / onnx_rel), str(staging / plan))
        engines.append(EngineEntry(name, "fp32", fp, plan.as_posix(),
                                   "trtexec --onnx={} --saveEngine={}".format(onnx_rel, plan.as_posix()), onnx=onnx_rel))
    return Staged(models, tuple(engines))


@pytest.fixture(scope="session")
def runtime_bundle(tmp_path_factory, runtime_models) -> Path:
    """A verified bundle (devices' writer) of the runtime graphs, with fake-TensorRT plans built for DEVICE."""
    from emotrt.devices.bundle_writer import collect_models, write_bundle

    vectors = tmp_path_factory.mktemp("testvectors")
    out = tmp_path_factory.mktemp("runtime-bundles") / "bundle"
    return write_bundle(out, collect_models(runtime_models), runtime_models / "env", vectors,
                        speakers_dir=runtime_models / "speakers", targets=["orin-nano-8gb"], stage=_stage_fake_plans)


@pytest.fixture(scope="session")
def spoken(tmp_path_factory):
    """espeak-ng speech between 1 s of silence on each side, 16 kHz."""
    import soundfile as sf

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (scripts/setup-system.sh installs it)")
    wav = tmp_path_factory.mktemp("speech") / "s.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), "the quick brown fox jumps over the lazy dog"],
                   check=True, timeout=60)
    import soxr

    audio, rate = sf.read(str(wav), dtype="float32")
    audio = soxr.resample(audio, rate, 16000).astype(np.float32)
    return np.concatenate([np.zeros(16000, np.float32), audio, np.zeros(16000, np.float32)])


@pytest.fixture(scope="session")
def spoken_wav(tmp_path_factory, spoken) -> Path:
    """:func:`spoken` as a 16 kHz PCM16 WAV (silero hears about 2 s of speech in it)."""
    import soundfile as sf

    path = tmp_path_factory.mktemp("speech") / "spoken.wav"
    sf.write(str(path), spoken, 16000, subtype="PCM_16")
    return path
