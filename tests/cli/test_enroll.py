"""``emotrt enroll NAME AUDIO``: stores the embedding; bad audio is a one-line error."""
import subprocess
import sys

import numpy as np
import soundfile

from emotrt.runtime.tables import VectorTable


def emotrt(*args):
    return subprocess.run([sys.executable, "-m", "emotrt", *args], capture_output=True, text=True)


def test_enroll_then_refuse_wrong_rate(toy_export, tmp_path):
    out, _ = toy_export
    wav, wav8k = tmp_path / "a.wav", tmp_path / "a8k.wav"
    soundfile.write(str(wav), np.random.default_rng(0).standard_normal(24000).astype(np.float32) * 0.1, 16000)
    soundfile.write(str(wav8k), np.zeros(16000, np.float32), 8000)
    store = tmp_path / "speakers"
    ok = emotrt("enroll", "alice", str(wav), "--model", str(out / "enroll.onnx"), "--store", str(store))
    assert ok.returncode == 0, ok.stderr
    assert VectorTable(store, kind="speaker").names() == ["alice"]
    bad = emotrt("enroll", "bob", str(wav8k), "--model", str(out / "enroll.onnx"), "--store", str(store))
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()] and "8000 Hz" in bad.stderr
