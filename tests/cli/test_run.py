"""``emotrt run`` end to end: file, stdin and a real (PulseAudio null-sink) microphone; signals; bad input."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from emotrt.runtime.offline import evaluate_offline
from emotrt.runtime.pipeline import Pipeline

RUN = [sys.executable, "-m", "emotrt", "run"]


def _start(args, env=None, **kwargs):
    return subprocess.Popen(RUN + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, **kwargs)


def _wait_for_input_line(proc):
    """Read stderr until the command reports its input (the source is about to start)."""
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("input: "):
            return lines
    raise AssertionError("no input line; stderr: " + "".join(lines))


def _results(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _summary(stderr):
    line = next(line for line in stderr.splitlines() if line.startswith("summary: "))
    return json.loads(line[len("summary: "):])


def test_file_run_writes_what_offline_evaluation_gives(runtime_bundle, steady_wav, tmp_path):
    out = tmp_path / "r.jsonl"
    proc = subprocess.run(RUN + [str(runtime_bundle), "-s", "alice", "-e", "busy_cafe", "--file", str(steady_wav),
                                 "--jsonl", str(out), "--backend", "onnxruntime"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "backend: onnxruntime" in proc.stderr and _summary(proc.stderr)["stopped_by"] == "end of input"
    got = _results(out.read_text())
    audio, rate = sf.read(str(steady_wav), dtype="float32")
    with Pipeline.from_bundle(runtime_bundle, backend="onnxruntime") as pipeline:
        want = evaluate_offline(pipeline, rate, audio, "alice", "busy_cafe")
    assert [r["speech"] for r in got] == [r.speech for r in want]
    for g, w in zip(got, want):
        if w.speech:
            np.testing.assert_allclose([g["raw"][k] for k in w.labels], w.raw, atol=1e-4)


def test_stdin_pcm(runtime_bundle, steady_wav):
    audio, _ = sf.read(str(steady_wav), dtype="int16")
    proc = subprocess.run(RUN + [str(runtime_bundle), "-s", "bob", "-e", "car_highway", "--stdin", "--rate", "16000"],
                          input=audio.tobytes(), capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    results = _results(proc.stdout.decode())
    assert results and {r["speaker"] for r in results} == {"bob"} and any(r["speech"] for r in results)


def test_sigint_stops_cleanly_with_a_summary(runtime_bundle, steady_wav, tmp_path):
    long_wav = tmp_path / "long.wav"
    audio, rate = sf.read(str(steady_wav), dtype="float32")
    sf.write(str(long_wav), np.tile(audio, 10), rate)
    proc = _start([runtime_bundle, "-s", "alice", "-e", "busy_cafe", "--file", long_wav, "--realtime"])
    _wait_for_input_line(proc)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    summary = _summary(stderr)
    assert summary["stopped_by"] == "SIGINT" and 0.5 < summary["audio_seconds"] < 6, "paced in real time"
    assert len(_results(stdout)) == summary["results"]


@pytest.mark.parametrize("args, message", [
    (["-s", "carol", "-e", "busy_cafe"], "error: unknown speaker 'carol' (enrolled: alice, bob)"),
    (["-s", "alice", "-e", "moon"], "error: unknown environment 'moon'"),
    (["-s", "alice", "-e", "busy_cafe", "--mic", "usb-array"], "error: "),
])
def test_bad_input_is_one_line_and_exit_2(runtime_bundle, steady_wav, tmp_path, args, message):
    source = [] if "--mic" in args else ["--file", str(steady_wav)]
    env = {"PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": str(tmp_path), "PULSE_SERVER": "unix:/nonexistent"}
    proc = subprocess.run(RUN + [str(runtime_bundle)] + args + source, capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.audio
def test_mic_run_matches_the_file_run(pulse_mic, runtime_bundle, steady_wav, tmp_path):
    """Tolerance: the capture starts at an unknown offset, so compare per-class medians of the raw
    posteriors over speech windows (0.03) and the number of speech windows (within 2)."""
    proc = _start([runtime_bundle, "-s", "alice", "-e", "busy_cafe", "--mic", "pulse", "--rate", "16000",
                   "--seconds", "6"], env=pulse_mic.env)
    _wait_for_input_line(proc)
    time.sleep(0.5)
    pulse_mic.play(steady_wav).wait(timeout=30)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert _summary(stderr)["overruns"] == 0
    mic = [r for r in _results(stdout) if r["speech"]]
    filed = subprocess.run(RUN + [str(runtime_bundle), "-s", "alice", "-e", "busy_cafe", "--file", str(steady_wav)],
                           capture_output=True, text=True, timeout=120)
    ref = [r for r in _results(filed.stdout) if r["speech"]]
    assert ref and abs(len(mic) - len(ref)) <= 2, (len(mic), len(ref))
    labels = sorted(ref[0]["raw"])
    np.testing.assert_allclose(np.median([[r["raw"][k] for k in labels] for r in mic], axis=0),
                               np.median([[r["raw"][k] for k in labels] for r in ref], axis=0), atol=0.03)


@pytest.mark.audio
@pytest.mark.parametrize("view", [[], ["--live"]], ids=["jsonl", "live"])
def test_a_microphone_pulled_out_mid_stream_is_one_line_and_keeps_the_results(pulse_mic, runtime_bundle, steady_wav,
                                                                              tmp_path, view):
    out = tmp_path / "r.jsonl"
    proc = _start([runtime_bundle, "-s", "alice", "-e", "busy_cafe", "--mic", "pulse", "--rate", "16000", "--jsonl", out,
                   "--backend", "onnxruntime"] + view, env=pulse_mic.env)
    _wait_for_input_line(proc)
    pulse_mic.play(steady_wav).wait(timeout=30)
    try:
        pulse_mic.unplug()
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        pulse_mic.plug()  # the session's microphone, for the tests after this one
    assert proc.returncode != 0 and "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "delivered no audio" in errors[0], stderr
    kept = _results(out.read_text())  # every result the run counted is in the file
    assert kept and "the {} result(s) so far are in {}".format(len(kept), out) in errors[0]
