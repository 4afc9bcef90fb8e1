import dataclasses
import shutil

import numpy as np
import onnx
import pytest

from emotrt.calibration.data import CalibrationDataError
from emotrt.calibration.sources import SCENE_PEAK, SER_SCENES, SourceConfig, build_jobs, find_models, load_audio
from emotrt.training.corpus import load_manifest
from tests.calibration.conftest import load_jobs
from emotrt.runtime.errors import CorpusError, ModelContractError


def test_jobs_cover_every_supported_graph(toy_jobs):
    by_name = {j.name: j for j in toy_jobs}
    assert set(by_name) == {"enroll", "ser", "tse_step"}
    tse = by_name["tse_step"]
    assert len(tse.calib.feeds) >= 8 and set(tse.calib.feeds[0]) == {"audio", "spk_emb", "state_in.enc", "state_in.tail",
                                                                     "state_in.dw0", "state_in.dw1"}
    assert max(np.abs(f["state_in.dw0"]).max() for f in tse.calib.feeds) > 0
    assert all(i.reference is not None for i in tse.items)
    peaks = sorted(float(np.abs(i.feed["audio"]).max()) for i in tse.items)
    assert peaks[-1] > 0.9, "levels should reach full scale"
    ser = by_name["ser"]
    assert [i.label for i in ser.items] != [-1] * len(ser.items) and ser.items[0].avd.shape == (3,)


def test_same_seed_same_hash_other_seed_other_hash(calib_export, calib_manifest, toy_jobs):
    small = SourceConfig(calib_utterances=8, eval_utterances=4, eval_seconds=1.0)
    again = {j.name: j.calib.sha256 for j in load_jobs(calib_export, calib_manifest, small)}
    assert again == {j.name: j.calib.sha256 for j in toy_jobs}
    other = load_jobs(calib_export, calib_manifest, SourceConfig(seed=1, calib_utterances=8, eval_utterances=4))
    assert {j.name: j.calib.sha256 for j in other}["ser"] != again["ser"]


def test_manifest_whose_audio_is_missing(calib_export, calib_manifest):
    utterances = load_manifest(calib_manifest)
    gone = dataclasses.replace(utterances[0], id="gone", path="speech/9/9.wav")
    with pytest.raises(CorpusError, match="test.jsonl: 1 of 13 audio files are missing, e.g. .*speech/9/9.wav") as info:
        build_jobs(calib_export, utterances + [gone], source=str(calib_manifest))
    assert "emotrt data synth" in info.value.hint


def test_too_small_manifest(calib_export, calib_manifest):
    with pytest.raises(CalibrationDataError, match="test.jsonl has 3 utterances"):
        build_jobs(calib_export, load_manifest(calib_manifest)[:3], source=str(calib_manifest))


def test_too_few_feeds_for_a_graph(calib_export, calib_manifest):
    with pytest.raises(CalibrationDataError, match="enroll: calibration needs at least 8 feeds, found 3"):
        build_jobs(calib_export, load_manifest(calib_manifest)[:6], config=SourceConfig(eval_utterances=3))


def test_model_without_metadata(calib_export, tmp_path):
    model = onnx.load(str(calib_export / "enroll.onnx"))
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "bare.onnx"))
    with pytest.raises(ModelContractError, match="bare.onnx carries no emotrt metadata") as info:
        find_models(tmp_path)
    assert "emotrt export" in info.value.hint


def test_empty_export_folder(tmp_path):
    with pytest.raises(ModelContractError, match="no FP32 .onnx graphs"):
        find_models(tmp_path)


def test_variants_in_the_export_folder_are_not_recalibrated(calib_export, calibrated, tmp_path):
    out, _ = calibrated
    shutil.copy(str(calib_export / "ser.onnx"), str(tmp_path / "ser.onnx"))
    shutil.copy(str(calib_export / "ser.onnx"), str(tmp_path / "ser.int8.onnx"))
    shutil.copy(str(out / "tse_step.int8.onnx"), str(tmp_path / "tse_step.renamed.onnx"))
    assert [name for name, _, _ in find_models(tmp_path)] == ["ser"]


def test_environment_tokens_come_from_the_table(calib_export, calib_manifest, toy_jobs):
    from emotrt.runtime.tables import VectorTable

    table = VectorTable(calib_export / "env", kind="environment")
    tokens = {table.get(n).tobytes() for n in table.names()}
    ser = next(j for j in toy_jobs if j.name == "ser")
    assert {f["env_token"].reshape(-1).tobytes() for f in ser.calib.feeds} <= tokens


def _snr_db(mixture: np.ndarray, clean: np.ndarray) -> float:
    """SNR of ``mixture`` against the best-scaled ``clean`` (the mixture may have been scaled down)."""
    scale = np.dot(mixture, clean) / np.dot(clean, clean)
    return float(10 * np.log10(np.sum((scale * clean) ** 2) / np.sum((mixture - scale * clean) ** 2)))


def test_ser_is_checked_in_the_scenes_of_the_stored_test_sets(ser_job, calibrated):
    items = ser_job.items
    assert [i.group for i in items] == list(SER_SCENES) * (len(items) // len(SER_SCENES)) and len(items) == 24
    by_scene = {g: [i.feed["audio"].reshape(-1) for i in items if i.group == g] for g in SER_SCENES}
    assert all(np.abs(a).max() <= SCENE_PEAK + 1e-6 for g in ("talker", "noise", "noise_low") for a in by_scene[g])
    snr = {g: np.mean([_snr_db(m, c) for m, c in zip(by_scene[g], by_scene["clean"])]) for g in SER_SCENES[1:]}
    assert snr["noise_low"] < snr["noise"] - 3 and snr["talker"] < 10
    assert [i.label for i in items[::4]] == [i.label for i in items[3::4]]
    _, report = calibrated
    fp32 = next(r for r in report.rows if r.model == "ser" and r.precision == "fp32")
    assert {"ua." + g for g in SER_SCENES} <= set(fp32.metrics)


def test_speaker_embeddings_come_from_the_enrollment_recordings(calib_export, calib_manifest):
    from emotrt.runtime.backends import load_engine

    utterances = load_manifest(calib_manifest)
    enrollments = [u for u in utterances if u.id.endswith("-3")]  # not what a fallback would pick
    stranger = dataclasses.replace(enrollments[0], id="x", speaker="nobody", path="speech/9/gone.wav")
    jobs = build_jobs(calib_export, utterances, load_manifest(calib_manifest.with_name("noise.jsonl")),
                      SourceConfig(calib_utterances=8, eval_utterances=4, eval_seconds=1.0),
                      enrollments=enrollments + [stranger])
    with load_engine(calib_export / "enroll.onnx") as engine:
        expected = {engine.run({"audio": load_audio(str(u.file), engine.contract.sample_rate)[None]})["spk_emb"]
                    .astype(np.float32).tobytes() for u in enrollments}
    tse = next(j for j in jobs if j.name == "tse_step")
    used = {f["spk_emb"].tobytes() for f in tse.calib.feeds} | {i.feed["spk_emb"].tobytes() for i in tse.items}
    assert used <= expected and len(used) > 1
