"""Shared fixtures: toy graphs with the contract, a tiny espeak-ng corpus, and one calibration run."""
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from emotrt.calibration.qdq import QuantConfig, collect_ranges
from emotrt.runtime.tables import VectorTable
from tests.calibration.toy_models import D_MODEL, SR, export_toy_models

VOICES = ("en-us", "en-gb+f3", "en+m3")
SENTENCES = ("the kettle is boiling", "we missed the last train", "open the window please", "that was brilliant")
EMOTIONS = ("neutral", "happy", "angry", "sad")


def _speak(text: str, voice: str, path: Path) -> None:
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", "240", "--stdout", text], capture_output=True, check=True).stdout
    subprocess.run(["sox", "-q", "-G", "-D", "-t", "wav", "-", "-r", str(SR), "-c", "1", "-b", "16", str(path)],
                   input=wav, check=True)


@pytest.fixture(scope="session")
def calib_export(tmp_path_factory) -> Path:
    folder = export_toy_models(tmp_path_factory.mktemp("export"))
    rng = np.random.default_rng(3)
    table = VectorTable(folder / "env", kind="environment", dim=D_MODEL)
    for name in ("busy_cafe", "car_highway", "quiet_office"):
        table.add(name, rng.standard_normal(D_MODEL), descriptions=[name.replace("_", " ")])
    return folder


def write_corpus(root: Path, voices=VOICES, sentences=SENTENCES) -> Path:
    """espeak-ng utterances (12 of 3 speakers by default), two noises, manifests in the corpus layout."""
    (root / "manifests").mkdir(parents=True)
    (root / "corpus.json").write_text(json.dumps({"size": "calibration-test", "seed": 0}))
    lines, noise_lines = [], []
    for s, voice in enumerate(voices):
        (root / "speech" / str(s)).mkdir(parents=True)
        for u, text in enumerate(sentences):
            rel = "speech/{}/{}.wav".format(s, u)
            _speak(text, voice, root / rel)
            lines.append({"id": "{}-{}".format(s, u), "path": rel, "speaker": str(s), "emotion": EMOTIONS[u % len(EMOTIONS)],
                          "arousal": 1.0 + u % 4, "valence": 2.0 + s % 3, "dominance": 3.0, "split": "test",
                          "sample_rate": SR, "duration": soundfile.info(str(root / rel)).duration, "corpus": "espeak"})
    (root / "noise").mkdir()
    rng = np.random.default_rng(5)
    for n in range(2):
        rel = "noise/n{}.wav".format(n)
        soundfile.write(str(root / rel), (0.1 * rng.standard_normal(SR)).astype(np.float32), SR)
        noise_lines.append({"id": "n{}".format(n), "path": rel, "environment": "busy_cafe", "sample_rate": SR,
                            "duration": 1.0, "corpus": "numpy", "split": "test"})
    (root / "manifests" / "test.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (root / "manifests" / "noise.jsonl").write_text("".join(json.dumps(x) + "\n" for x in noise_lines))
    return root / "manifests" / "test.jsonl"


@pytest.fixture(scope="session")
def calib_manifest(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def load_jobs(export, manifest, config):
    """Jobs as the CLI builds them: utterances and noises through the corpus's manifest reader."""
    from emotrt.calibration.sources import build_jobs
    from emotrt.training.corpus import load_manifest

    return build_jobs(export, load_manifest(manifest), load_manifest(manifest.with_name("noise.jsonl")), config,
                      source=str(manifest))


@pytest.fixture(scope="session")
def toy_jobs(calib_export, calib_manifest):
    from emotrt.calibration.sources import SourceConfig

    return load_jobs(calib_export, calib_manifest, SourceConfig(calib_utterances=8, eval_utterances=4, eval_seconds=1.0))


@pytest.fixture(scope="session")
def calibrated(toy_jobs, tmp_path_factory):
    from emotrt.calibration.pipeline import CalibrateConfig, calibrate

    out = tmp_path_factory.mktemp("calibrated") / "out"
    report = calibrate(toy_jobs, out, CalibrateConfig(latency_repeats=5))
    return out, report


@pytest.fixture(scope="session")
def ser_job(toy_jobs):
    """The toy SER's calibration job."""
    return next(j for j in toy_jobs if j.name == "ser")


@pytest.fixture(scope="session")
def ser_minmax(ser_job):
    """MinMax ranges of the toy SER on its calibration feeds."""
    return collect_ranges(ser_job.path, ser_job.calib, QuantConfig(method="minmax"))
