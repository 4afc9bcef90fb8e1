"""Enrollment through enroll.onnx into the speaker store, and its bad-input errors."""
import numpy as np
import pytest
import soundfile

from emotrt.export.enroll import enroll_speaker
from emotrt.runtime.backends import load_engine
from emotrt.runtime.errors import AudioError, ConfigError
from emotrt.runtime.tables import VectorTable


def _wav(path, seconds, rate=16000, channels=1):
    audio = 0.1 * np.random.default_rng(0).standard_normal((int(seconds * rate), channels)).astype(np.float32)
    soundfile.write(str(path), audio, rate)
    return path


def test_enrolled_embedding_is_what_the_graph_computes(toy_export, tmp_path):
    out, _ = toy_export
    wav = _wav(tmp_path / "alice.wav", 1.5, channels=2)
    emb = enroll_speaker(tmp_path / "speakers", "alice", wav, out / "enroll.onnx")
    audio, _ = soundfile.read(str(wav), dtype="float32", always_2d=True)
    with load_engine(out / "enroll.onnx") as engine:
        expected = engine.run({"audio": audio.mean(axis=1)[None, :].astype(np.float32)})["spk_emb"][0]
    store = VectorTable(tmp_path / "speakers", kind="speaker")
    assert store.names() == ["alice"] and store.dim == 6
    np.testing.assert_allclose(store.get("alice"), expected, rtol=1e-6)
    np.testing.assert_allclose(emb, expected, rtol=1e-6)


def test_too_short_audio(toy_export, tmp_path):
    out, _ = toy_export
    with pytest.raises(AudioError, match=r"is 0.50 s; at least 1.0 s"):
        enroll_speaker(tmp_path / "speakers", "bob", _wav(tmp_path / "short.wav", 0.5), out / "enroll.onnx")
    assert not (tmp_path / "speakers").exists()


def test_wrong_sample_rate(toy_export, tmp_path):
    out, _ = toy_export
    with pytest.raises(AudioError, match="is 8000 Hz; the enroll model expects 16000 Hz") as err:
        enroll_speaker(tmp_path / "speakers", "bob", _wav(tmp_path / "8k.wav", 2.0, rate=8000), out / "enroll.onnx")
    assert "-r 16000" in err.value.hint


def test_existing_speaker_needs_replace(toy_export, tmp_path):
    out, _ = toy_export
    wav = _wav(tmp_path / "carol.wav", 1.2)
    enroll_speaker(tmp_path / "speakers", "carol", wav, out / "enroll.onnx")
    with pytest.raises(ConfigError, match="already enrolled") as err:
        enroll_speaker(tmp_path / "speakers", "carol", wav, out / "enroll.onnx")
    assert "--replace" in err.value.hint
    enroll_speaker(tmp_path / "speakers", "carol", wav, out / "enroll.onnx", replace=True)


def test_a_graph_that_is_not_enroll(toy_export, tmp_path):
    out, _ = toy_export
    with pytest.raises(Exception, match="not an enroll graph"):
        enroll_speaker(tmp_path / "s", "dave", _wav(tmp_path / "d.wav", 1.2), out / "ser.onnx")


def test_enrollment_needs_no_workstation_library(toy_export, tmp_path):
    """Speakers are enrolled on the device too: the module runs without torch/onnx/transformers."""
    import subprocess
    import sys

    out, _ = toy_export
    wav = _wav(tmp_path / "e.wav", 1.2)
    code = (
        "import sys\n"
        "class Refuse:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'onnx', 'transformers', 'optimum'): raise ImportError(name)\n"
        "sys.meta_path.insert(0, Refuse())\n"
        "from emotrt.export.enroll import enroll_speaker\n"
        "print(enroll_speaker(sys.argv[1], 'erin', sys.argv[2], sys.argv[3]).shape)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "spk"), str(wav), str(out / "enroll.onnx")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(6,)"
