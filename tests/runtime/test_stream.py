import logging

import numpy as np
import pytest

from emotrt.runtime.errors import AudioError, ConfigError
from emotrt.runtime.offline import evaluate_offline, extract_offline
from emotrt.runtime.pipeline import PipelineConfig
from tests.runtime import graphs


def _stream_all(stream, rate, audio, block):
    for i in range(0, audio.shape[0], block):
        stream.accept_waveform(rate, audio[i:i + block])
    stream.input_finished()
    return list(stream.results())


@pytest.mark.parametrize("block", [1, 37, 160, 4096])
def test_streaming_equals_offline_for_any_block_size(make_pipeline, speech_like, block):
    pipeline = make_pipeline()
    streamed = _stream_all(pipeline.create_stream("alice", "busy_cafe"), 16000, speech_like, block)
    offline = evaluate_offline(pipeline, 16000, speech_like, "alice", "busy_cafe")
    assert [r.end for r in streamed] == [r.end for r in offline]
    assert [r.speech for r in streamed] == [r.speech for r in offline]
    assert any(r.speech for r in streamed) and not all(r.speech for r in streamed)
    for s, o in zip(streamed, offline):
        if s.speech:
            np.testing.assert_allclose(s.raw, o.raw, atol=1e-5)
            np.testing.assert_allclose(s.avd, o.avd, atol=1e-5)
            np.testing.assert_allclose(s.posteriors, o.posteriors, atol=1e-5)


def test_extraction_streams_exactly_like_the_whole_signal_filter(make_pipeline, speech_like):
    pipeline = make_pipeline()
    hop_by_hop = extract_offline(pipeline, speech_like, "bob")
    np.testing.assert_allclose(hop_by_hop, graphs.reference_tse(speech_like, np.full(4, 0.5)), atol=1e-5)


def test_windows_timestamps_and_vad_gating(make_pipeline, speech_like):
    pipeline = make_pipeline(config=PipelineConfig(ser_hop_s=0.125))  # rounded up to 13 hops of 10 ms
    results = _stream_all(pipeline.create_stream("alice", "busy_cafe"), 16000, speech_like, 800)
    ends = [r.end for r in results]
    assert ends[0] == pytest.approx(graphs.WINDOW / 16000)
    assert np.allclose(np.diff(ends), 0.13)
    assert all(r.end - r.start == pytest.approx(0.25) for r in results)
    silent = [r for r in results if r.end <= 0.5]
    assert silent and all(not r.speech and r.posteriors is None and r.emotion is None for r in silent)
    voiced = [r for r in results if 0.75 <= r.end <= 1.25]
    assert voiced and all(r.speech and r.emotion in graphs.LABELS for r in voiced)
    assert all(abs(sum(r.posteriors) - 1) < 1e-6 for r in voiced)


def test_resampled_input_gives_the_same_decisions(make_pipeline, speech_like):
    import soxr

    pipeline = make_pipeline()
    at_16k = _stream_all(pipeline.create_stream("alice", "busy_cafe"), 16000, speech_like, 1600)
    at_48k = soxr.resample(speech_like, 16000, 48000).astype(np.float32)
    resampled = _stream_all(pipeline.create_stream("alice", "busy_cafe"), 48000, at_48k, 4800)
    assert [r.speech for r in at_16k] == [r.speech for r in resampled]
    both = [(a, b) for a, b in zip(at_16k, resampled) if a.speech]
    assert max(np.abs(np.subtract(a.raw, b.raw)).max() for a, b in both) < 0.05


def test_set_environment_changes_ser_without_reload(make_pipeline, speech_like):
    pipeline = make_pipeline(config=PipelineConfig(smoothing=0.0))
    stream = pipeline.create_stream("alice", "busy_cafe")
    other = pipeline.create_stream("alice", "car_highway")
    voiced = speech_like[8000:12000]
    stream.accept_waveform(16000, voiced)
    other.accept_waveform(16000, voiced)
    stream.set_environment("car_highway")
    stream.accept_waveform(16000, voiced)
    other.accept_waveform(16000, voiced)
    mine, theirs = list(stream.results())[-1], list(other.results())[-1]
    assert mine.environment == "car_highway"
    np.testing.assert_allclose(mine.raw, theirs.raw, atol=1e-6)


def test_several_speakers_share_one_pipeline(make_pipeline, speech_like):
    # the tiny TSE only scales by the speaker embedding, which level matching would undo
    pipeline = make_pipeline(config=PipelineConfig(match_level=False))
    alice = _stream_all(pipeline.create_stream("alice", "busy_cafe"), 16000, speech_like, 1600)
    bob = _stream_all(pipeline.create_stream("bob", "busy_cafe"), 16000, speech_like, 1600)
    assert {r.speaker for r in alice} == {"alice"} and {r.speaker for r in bob} == {"bob"}
    assert alice[-3].raw != bob[-3].raw


def test_unknown_speaker_or_environment_is_one_clear_error(make_pipeline):
    pipeline = make_pipeline()
    with pytest.raises(ConfigError, match=r"unknown speaker 'carol' \(enrolled: alice, bob\)") as exc:
        pipeline.create_stream("carol", "busy_cafe")
    assert "emotrt enroll carol" in exc.value.hint
    with pytest.raises(ConfigError, match=r"unknown environment 'moon' \(known: busy_cafe, car_highway"):
        pipeline.create_stream("alice", "moon")
    stream = pipeline.create_stream("alice", "busy_cafe")
    with pytest.raises(ConfigError, match="unknown environment 'mars'"):
        stream.set_environment("mars")
    assert stream.environment == "busy_cafe"


@pytest.mark.parametrize("block", [1600, graphs.CHUNK])  # CHUNK: the exact-hop hot path
def test_nonfinite_audio_is_counted_and_the_stream_recovers(make_pipeline, speech_like, caplog, block):
    pipeline = make_pipeline()
    clean = _stream_all(pipeline.create_stream("alice", "busy_cafe"), 16000, speech_like, block)
    faulty = speech_like.copy()
    faulty[100:110] = np.nan
    faulty[200] = np.inf
    stream = pipeline.create_stream("alice", "busy_cafe")
    with caplog.at_level(logging.WARNING):
        results = _stream_all(stream, 16000, faulty, block)
    assert stream.stats.nonfinite_samples == 11 and stream.stats.nonfinite_blocks == len({100 // block, 200 // block})
    assert "NaN/Inf" in caplog.text
    assert all(np.isfinite(r.raw).all() for r in results if r.speech)
    np.testing.assert_allclose(results[-1].raw, clean[-1].raw, atol=1e-6)


@pytest.mark.parametrize("block", [1600, graphs.CHUNK])
def test_clipped_audio_is_counted_and_limited(make_pipeline, speech_like, caplog, block):
    pipeline = make_pipeline()
    loud = speech_like * 20
    stream = pipeline.create_stream("alice", "busy_cafe")
    with caplog.at_level(logging.WARNING):
        results = _stream_all(stream, 16000, loud, block)
    assert stream.stats.clipped_samples > 1000 and "clipping" in caplog.text
    assert all(np.isfinite(r.avd).all() for r in results if r.speech)


def test_rate_change_mid_stream_and_bad_layout_are_rejected(make_pipeline, speech_like):
    stream = make_pipeline().create_stream("alice", "busy_cafe")
    stream.accept_waveform(16000, speech_like[:100])
    with pytest.raises(AudioError, match="changed mid-stream from 16000 to 8000"):
        stream.accept_waveform(8000, speech_like[:100])
    with pytest.raises(AudioError, match="frames, channels"):
        stream.accept_waveform(16000, np.zeros((2, 2, 2), dtype=np.float32))


def test_stereo_is_downmixed(make_pipeline, speech_like):
    pipeline = make_pipeline()
    mono = _stream_all(pipeline.create_stream("alice", "busy_cafe"), 16000, speech_like, 1600)
    stereo = np.stack([speech_like * 0.5, speech_like * 1.5], axis=1)
    both = _stream_all(pipeline.create_stream("alice", "busy_cafe"), 16000, stereo, 1600)
    np.testing.assert_allclose(both[-2].raw, mono[-2].raw, atol=1e-6)


def test_bad_pipeline_config_names_the_fields():
    with pytest.raises(ConfigError, match="smoothing=1.5.*threads=0"):
        PipelineConfig(smoothing=1.5, threads=0)


def test_async_ser_gives_the_same_results_in_order(make_pipeline, speech_like):
    sync = _stream_all(make_pipeline().create_stream("alice", "busy_cafe"), 16000, speech_like, 320)
    pipeline = make_pipeline(config=PipelineConfig(ser_async=True))
    stream = pipeline.create_stream("alice", "busy_cafe")
    collected = []
    for i in range(0, speech_like.shape[0], 320):
        stream.accept_waveform(16000, speech_like[i:i + 320])
        collected.extend(stream.results())
    stream.input_finished()
    collected.extend(stream.results())
    assert [r.index for r in collected] == list(range(len(sync)))
    assert [r.speech for r in collected] == [r.speech for r in sync]
    for a, b in zip(collected, sync):
        assert a.posteriors == b.posteriors and a.avd == b.avd
    assert stream.stats.ser_runs == sum(r.speech for r in sync)


def test_nan_warnings_are_rate_limited_with_a_final_count(make_pipeline, caplog):
    pipeline = make_pipeline()
    stream = pipeline.create_stream("alice", "busy_cafe")
    block = np.full(graphs.CHUNK, 0.01, np.float32)
    block[0] = np.nan
    with caplog.at_level(logging.WARNING, logger="emotrt.runtime.stream"):
        for _ in range(1234):  # ~25 s of 20 ms hops, every one faulty
            stream.accept_waveform(16000, block)
        stream.input_finished()
    lines = [r.getMessage() for r in caplog.records if "NaN/Inf" in r.getMessage()]
    assert [line.split("(")[1].split(" ")[0] for line in lines[:-1]] == ["1", "10", "100", "1000"]
    assert lines[-1] == "stream alice: 1234 NaN/Inf sample(s) in 1234 block(s) were replaced by silence in all"


def test_an_enrollment_referenced_ser_hears_the_same_at_any_microphone_gain(runtime_models, speech_like, tmp_path):
    """Speaker "quiet" enrolled 10 dB lower than "loud" and talking 10 dB lower: the SER hears the same windows."""
    import onnx

    from emotrt.runtime import Pipeline
    from emotrt.runtime.backends import load_engine
    from emotrt.runtime.tables import VectorTable

    onnx.save(graphs.ser(level_reference_db=-25.0), str(tmp_path / "ser.onnx"))
    speakers = VectorTable(tmp_path / "speakers", kind="speaker", dim=graphs.SPK_DIM)
    speakers.add("loud", np.full(graphs.SPK_DIM, 1.0), speech_level_db=-20.0)
    speakers.add("quiet", np.full(graphs.SPK_DIM, 1.0), speech_level_db=-30.0)
    speakers.add("legacy", np.full(graphs.SPK_DIM, 1.0))
    quiet_audio = (speech_like * np.float32(10 ** (-10 / 20))).astype(np.float32)
    with Pipeline(load_engine(runtime_models / "tse_step.onnx"), load_engine(tmp_path / "ser.onnx"),
                  VectorTable(runtime_models / "env", kind="environment"), speakers,
                  config=PipelineConfig(tse="off")) as pipeline:
        assert pipeline.speaker_level_gain("quiet") == pytest.approx(10 ** (5 / 20))
        loud = _stream_all(pipeline.create_stream("loud", "busy_cafe"), 16000, speech_like, 1600)
        quiet = _stream_all(pipeline.create_stream("quiet", "busy_cafe"), 16000, quiet_audio, 1600)
        offline = evaluate_offline(pipeline, 16000, quiet_audio, "quiet", "busy_cafe")
        with pytest.raises(ConfigError, match="'legacy' was enrolled without a speech level") as exc:
            pipeline.create_stream("legacy", "busy_cafe")
        assert "emotrt enroll legacy" in exc.value.hint
    assert len(loud) == len(quiet) and [a.speech for a in loud] == [b.speech for b in quiet]
    scored = [(a, b) for a, b in zip(loud, quiet) if a.raw is not None]
    assert len(scored) >= 3
    for a, b in scored:
        np.testing.assert_allclose(a.raw, b.raw, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose([r.raw for r in offline if r.raw is not None], [a.raw for a, _ in scored], rtol=1e-4, atol=1e-5)


def test_the_ser_hears_the_mixture_in_step_with_a_lagging_extraction(runtime_models, speech_like, tmp_path):
    """A TSE that only delays its input by its declared latency: through match_level the SER must hear,
    TSE on, exactly what it hears TSE off (the mixture, delayed alike), streamed and offline. Compared
    unaligned, the projection finds almost nothing of the mixture in the extraction (the default TSE's
    2 ms once sent every window to 'sad')."""
    import onnx

    from emotrt.runtime.backends import load_engine
    from emotrt.runtime.pipeline import Pipeline
    from emotrt.runtime.tables import VectorTable

    onnx.save(graphs.tse_step(delay=5), str(tmp_path / "tse_step.onnx"))
    noisy = speech_like + np.random.default_rng(0).normal(0, 0.05, speech_like.shape).astype(np.float32)
    heard = {}
    for mode in ("on", "off"):
        with Pipeline(load_engine(tmp_path / "tse_step.onnx"), load_engine(runtime_models / "ser.onnx"),
                      VectorTable(runtime_models / "env", kind="environment"),
                      VectorTable(runtime_models / "speakers", kind="speaker"), config=PipelineConfig(tse=mode)) as p:
            assert p.tse_latency == 5
            heard[mode] = (_stream_all(p.create_stream("alice", "busy_cafe"), 16000, noisy, 160),
                           evaluate_offline(p, 16000, noisy, "alice", "busy_cafe"))
    for on, off in zip(heard["on"], heard["off"]):
        scored = [(a, b) for a, b in zip(on, off) if a.raw is not None]
        assert scored and len(scored) == sum(r.speech for r in off)
        for a, b in scored:
            np.testing.assert_allclose(a.raw, b.raw, atol=1e-4)
