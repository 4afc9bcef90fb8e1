"""Enrollment through enroll.onnx into the speaker store, and its bad-input errors."""
import numpy as np
import pytest
import soundfile

from emotrt.export.enroll import enroll_speaker
from emotrt.runtime.backends import load_engine
from emotrt.runtime.errors import AudioError, ConfigError
from emotrt.runtime.tables import VectorTable


@pytest.fixture(autouse=True)
def _speech(spoken):
    global SPEECH
    SPEECH = spoken[16000:-16000]  # espeak-ng speech without the silence around it


def _wav(path, seconds, rate=16000, channels=1, speech=True):
    n = int(seconds * rate)
    if speech:  # the VAD must hear speech: noise or tones are refused
        mono = np.tile(SPEECH, n // SPEECH.size + 1)[:n]
    else:
        mono = 0.1 * np.random.default_rng(0).standard_normal(n).astype(np.float32)
    soundfile.write(str(path), np.repeat(mono[:, None], channels, axis=1), rate)
    return path


def test_enrolled_embedding_is_what_the_graph_computes(toy_export, tmp_path):
    out, _ = toy_export
    wav = _wav(tmp_path / "alice.wav", 2.5, channels=2)
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
    wav = _wav(tmp_path / "carol.wav", 2.5)
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
    wav = _wav(tmp_path / "e.wav", 2.5)
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


def _write(path, audio, rate=16000, subtype=None):
    soundfile.write(str(path), np.asarray(audio, np.float32), rate, subtype=subtype)
    return path


@pytest.mark.parametrize("vad", ["silero", "energy"])
@pytest.mark.parametrize("case", ["digital silence", "quiet hiss", "speech under 1 s"])
def test_too_little_speech_is_refused_and_nothing_stored(toy_export, tmp_path, vad, case):
    out, _ = toy_export
    model = out / "enroll.onnx"
    if vad == "energy":  # no vad.onnx beside the model: the energy gate judges
        model = tmp_path / "m" / "enroll.onnx"
        model.parent.mkdir()
        model.write_bytes((out / "enroll.onnx").read_bytes())
    audio = {"digital silence": np.zeros(160000),
             "quiet hiss": 1e-3 * np.random.default_rng(1).standard_normal(160000),  # -60 dBFS
             "speech under 1 s": np.concatenate([SPEECH[:12000], np.zeros(148000)])}[case]
    with pytest.raises(AudioError, match=r"holds 0\.\d\d s of speech \({} VAD\) in 10\.0 s; at least 1\.0 s".format(vad)):
        enroll_speaker(tmp_path / "speakers", "ghost", _write(tmp_path / "x.wav", audio), model)
    assert not (tmp_path / "speakers").exists()


def test_noise_is_not_speech_to_silero(toy_export, tmp_path):
    out, _ = toy_export
    with pytest.raises(AudioError, match="of speech .silero VAD."):
        enroll_speaker(tmp_path / "speakers", "noise", _wav(tmp_path / "n.wav", 5, speech=False), out / "enroll.onnx")


@pytest.mark.parametrize("case", ["nan", "inf", "truncated", "empty", "not audio", "missing", "directory"])
def test_unusable_files_are_one_audio_error_and_nothing_stored(toy_export, tmp_path, case):
    out, _ = toy_export
    path = tmp_path / "bad.wav"
    speech = np.tile(SPEECH, 2)
    message = {"nan": r"non-finite samples \(first at 1\.000 s\)", "inf": "non-finite samples", "truncated": "is truncated",
               "empty": "cannot read", "not audio": "cannot read", "missing": "cannot read", "directory": "cannot read"}[case]
    if case in ("nan", "inf"):
        speech[16000] = np.nan if case == "nan" else np.inf
        _write(path, speech, subtype="FLOAT")
    elif case == "truncated":
        data = _write(path, speech, subtype="PCM_16").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "not audio":
        path.write_text("hello\n")
    elif case == "directory":
        path.mkdir()
    with pytest.raises(AudioError, match=message) as info:
        enroll_speaker(tmp_path / "speakers", "bad", path, out / "enroll.onnx")
    assert "\n" not in info.value.message and not (tmp_path / "speakers").exists()


def test_a_long_recording_streams_in_segments_weighted_by_speech(toy_export, tmp_path):
    out, _ = toy_export
    speech = np.tile(SPEECH, 8)  # ~23 s
    audio = np.concatenate([speech, np.zeros(16000 * 5, np.float32)])  # ~28 s: 3 segments of 8 s and a 4 s tail
    path = _write(tmp_path / "long.wav", audio, subtype="FLOAT")
    emb = enroll_speaker(tmp_path / "s", "long", path, out / "enroll.onnx", segment_seconds=8.0)
    # by hand: segments of 250 blocks of 512 samples (8 s), the tail merged into the last one
    from emotrt.export.enroll import enrollment_vad, read_enrollment_segments
    import contextlib

    with contextlib.ExitStack() as stack, load_engine(out / "enroll.onnx") as engine:
        segments = list(read_enrollment_segments(path, 16000, enrollment_vad(out / "enroll.onnx", 16000, stack),
                                                 segment_seconds=8.0))
        assert [a.shape[1] for a, _ in segments][:-1] == [128000] * 3 and segments[-1][1] < segments[0][1]
        assert sum(a.shape[1] for a, _ in segments) == audio.size
        weights = np.array([v for _, v in segments])
        embs = np.stack([engine.run({"audio": a})["spk_emb"].reshape(-1) for a, _ in segments])
    np.testing.assert_allclose(emb, (weights[:, None] * embs).sum(0) / weights.sum(), rtol=1e-5)
    info = VectorTable(tmp_path / "s", kind="speaker").info("long")
    assert info["seconds"] == pytest.approx(audio.size / 16000, abs=1e-3) and 0 < info["voiced_seconds"] < 23.5
    # the speaker's speech level (emotrt.runtime.level) over the segments: the silent tail does not lower it
    from emotrt.runtime.level import speech_level_db

    assert info["speech_level_db"] == pytest.approx(speech_level_db(speech, 16000), abs=0.05)
