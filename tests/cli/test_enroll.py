"""``emotrt enroll NAME AUDIO``: stores the embedding; bad audio is a one-line error."""
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from emotrt.runtime.tables import VectorTable


def emotrt(*args):
    return subprocess.run([sys.executable, "-m", "emotrt", *args], capture_output=True, text=True)


def test_enroll_then_refuse_wrong_rate(toy_export, tmp_path, spoken_wav):
    out, _ = toy_export
    wav, wav8k = spoken_wav, tmp_path / "a8k.wav"
    soundfile.write(str(wav8k), np.zeros(16000, np.float32), 8000)
    store = tmp_path / "speakers"
    ok = emotrt("enroll", "alice", str(wav), "--model", str(out / "enroll.onnx"), "--store", str(store))
    assert ok.returncode == 0, ok.stderr
    assert VectorTable(store, kind="speaker").names() == ["alice"]
    bad = emotrt("enroll", "bob", str(wav8k), "--model", str(out / "enroll.onnx"), "--store", str(store))
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()] and "8000 Hz" in bad.stderr


def test_enroll_needs_audio_or_mic(toy_export, tmp_path):
    out, _ = toy_export
    proc = emotrt("enroll", "carol", "--model", str(out / "enroll.onnx"), "--store", str(tmp_path / "s"))
    assert proc.returncode == 2 and "give either AUDIO or --mic" in proc.stderr


@pytest.mark.audio
def test_enroll_from_the_microphone_matches_enrolling_the_file(pulse_mic, toy_export, spoken_wav, tmp_path):
    import threading

    out, _ = toy_export
    store = tmp_path / "speakers"
    player = threading.Timer(2.5, lambda: pulse_mic.play(spoken_wav).wait())
    player.start()
    proc = subprocess.run([sys.executable, "-m", "emotrt", "enroll", "--model", str(out / "enroll.onnx"),
                           "--store", str(store), "--mic=pulse", "--seconds", "6", "dave"],
                          capture_output=True, text=True, env=pulse_mic.env, timeout=120)
    player.join()
    assert proc.returncode == 0, proc.stderr
    assert "recording 6 s" in proc.stderr
    ok = emotrt("enroll", "dave_file", str(spoken_wav), "--model", str(out / "enroll.onnx"), "--store", str(store))
    assert ok.returncode == 0, ok.stderr
    table = VectorTable(store, kind="speaker")
    mic, ref = table.get("dave"), table.get("dave_file")
    cosine = float(mic @ ref / np.linalg.norm(mic) / np.linalg.norm(ref))
    assert cosine > 0.95, cosine
