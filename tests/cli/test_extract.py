"""``emotrt extract`` end to end on a bundle: gate modes, --no-gate, alignment with the input, errors."""
import json
import subprocess
import sys

import numpy as np
import soundfile as sf

from tests.runtime import graphs

EXTRACT = [sys.executable, "-m", "emotrt", "extract"]


def _run(*args):
    return subprocess.run(EXTRACT + [str(a) for a in args], capture_output=True, text=True, timeout=120)


def test_extract_writes_the_ser_input_aligned_with_the_input(runtime_bundle, speech_like, tmp_path):
    wav = tmp_path / "in.wav"
    sf.write(str(wav), speech_like, graphs.RATE, subtype="FLOAT")
    off = _run(runtime_bundle, "-s", "alice", "--file", wav, "--out", tmp_path / "off.wav", "--tse", "off")
    assert off.returncode == 0, off.stderr
    summary = json.loads(off.stdout)
    assert summary["tse"] == "off" and summary["rate"] == graphs.RATE
    audio, rate = sf.read(str(tmp_path / "off.wav"), dtype="float32")
    assert rate == graphs.RATE and np.array_equal(audio, speech_like)  # TSE off: the SER hears the input itself

    raw = _run(runtime_bundle, "-s", "alice", "--file", wav, "--out", tmp_path / "raw.wav", "--no-gate")
    assert raw.returncode == 0, raw.stderr
    assert json.loads(raw.stdout)["tse"] == "raw"
    audio, _ = sf.read(str(tmp_path / "raw.wav"), dtype="float32")
    reference = graphs.reference_tse(speech_like, np.full(graphs.SPK_DIM, graphs.SPEAKERS["alice"]))
    assert audio.shape == speech_like.shape
    corr = np.dot(audio, reference) / np.linalg.norm(audio) / np.linalg.norm(reference)
    assert corr > 0.9999  # the raw extraction (brought to the input's level), aligned sample for sample
    assert abs(np.sqrt(np.mean(audio ** 2)) / np.sqrt(np.mean(speech_like ** 2)) - 1) < 1e-3  # at the input's level


def test_gated_extraction_without_thresholds_is_a_one_line_error(runtime_bundle, speech_like, tmp_path):
    wav = tmp_path / "in.wav"
    sf.write(str(wav), speech_like, graphs.RATE)
    proc = _run(runtime_bundle, "-s", "alice", "--file", wav, "--out", tmp_path / "o.wav", "--tse", "gated")
    assert proc.returncode != 0 and "no gate thresholds" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o.wav").exists()
