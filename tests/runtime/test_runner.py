import io
import os
import signal
import threading

import numpy as np
import pytest
import soundfile as sf

from emotrt.runtime.audio import FileSource, StdinSource
from emotrt.runtime.offline import evaluate_offline
from emotrt.runtime.runner import Runner
from emotrt.runtime.sinks import JsonlSink


@pytest.fixture(scope="module")
def wav_48k(tmp_path_factory, speech_like):
    import soxr

    path = tmp_path_factory.mktemp("wav") / "speech_48k_stereo.wav"
    mono = soxr.resample(speech_like, 16000, 48000)
    sf.write(str(path), np.stack([mono, mono], axis=1), 48000, subtype="FLOAT")
    return path


def test_file_run_matches_offline_and_writes_jsonl(make_pipeline, wav_48k, tmp_path):
    import json

    pipeline = make_pipeline()
    stream = pipeline.create_stream("alice", "busy_cafe")
    seen = []
    out = tmp_path / "results.jsonl"
    sink = JsonlSink(out)
    summary = Runner(pipeline, stream, FileSource(wav_48k), sinks=[sink, seen.append]).run()
    sink.close()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == len(seen) == summary.results > 0
    assert summary.stopped_by == "end of input" and summary.overruns == 0
    assert summary.audio_seconds == pytest.approx(1.5, abs=1e-3)
    audio, rate = sf.read(str(wav_48k), dtype="float32")
    offline = evaluate_offline(pipeline, rate, audio, "alice", "busy_cafe")
    assert [r.speech for r in seen] == [r.speech for r in offline]
    assert lines[0]["speaker"] == "alice" and set(lines[-3]["posteriors"] or {}) <= set(pipeline.labels)
    for a, b in zip(seen, offline):
        if a.speech:
            np.testing.assert_allclose(a.raw, b.raw, atol=1e-4)


def test_stdin_pcm_gives_the_same_results_as_the_file(make_pipeline, speech_like):
    pipeline = make_pipeline()
    pcm = (np.clip(speech_like, -1, 1) * 32767).astype("<i2").tobytes()
    via_stdin = []
    Runner(pipeline, pipeline.create_stream("alice", "busy_cafe"),
           StdinSource(16000, stream=io.BytesIO(pcm)), sinks=[via_stdin.append]).run()
    offline = evaluate_offline(pipeline, 16000, speech_like, "alice", "busy_cafe")
    assert [r.speech for r in via_stdin] == [r.speech for r in offline]
    speech = [(a, b) for a, b in zip(via_stdin, offline) if a.speech]
    assert max(np.abs(np.subtract(a.raw, b.raw)).max() for a, b in speech) < 1e-3


def test_overruns_are_counted_not_fatal(make_pipeline, speech_like):
    pipeline = make_pipeline()
    stream = pipeline.create_stream("alice", "busy_cafe")

    class Burst:
        """A 'microphone' that delivers 1.5 s at once into a 0.1 s buffer."""

        sample_rate, realtime, input_overflows, description = 16000, True, 0, "burst"

        def start(self, ring):
            ring.write(speech_like)
            ring.close()

        def stop(self):
            pass

    runner = Runner(pipeline, stream, Burst(), buffer_seconds=0.1)
    summary = runner.run()
    assert summary.overruns == 1 and summary.dropped_seconds == pytest.approx(1.4)
    assert summary.audio_seconds == pytest.approx(0.1)


def test_sigterm_stops_cleanly_with_a_summary(make_pipeline, tmp_path, speech_like):
    path = tmp_path / "long.wav"
    sf.write(str(path), np.tile(speech_like, 20), 16000)
    pipeline = make_pipeline()
    runner = Runner(pipeline, pipeline.create_stream("alice", "busy_cafe"), FileSource(path, realtime=True))
    timer = threading.Timer(0.5, os.kill, args=(os.getpid(), signal.SIGTERM))
    timer.start()
    summary = runner.run()
    assert summary.stopped_by == "SIGTERM"
    assert 0 < summary.audio_seconds < 30
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_unreadable_file_is_a_clear_error(tmp_path):
    from emotrt.runtime.errors import AudioError

    bad = tmp_path / "notaudio.wav"
    bad.write_text("hello")
    with pytest.raises(AudioError, match="cannot read audio file"):
        FileSource(bad)


def test_a_silent_dead_source_is_stopped_with_a_reason(make_pipeline):
    pipeline = make_pipeline()

    class Unplugged:
        """A live source that never delivers (a microphone unplugged mid-run)."""

        sample_rate, realtime, input_overflows, description = 16000, True, 0, "unplugged"

        def start(self, ring):
            ring.write(np.zeros(1600, np.float32))

        def stop(self):
            pass

    summary = Runner(pipeline, pipeline.create_stream("alice", "busy_cafe"), Unplugged(), stall_seconds=0.3).run()
    assert summary.stopped_by == "input stalled" and summary.audio_seconds == pytest.approx(0.1)
