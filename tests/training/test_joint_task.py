import json

import numpy as np
import pytest
import torch

from emotrt.runtime.manifest import sha256_file
from emotrt.runtime.errors import ConfigError
from emotrt.runtime.results import match_level as runtime_match_level
from emotrt.training.checkpoint import save_checkpoint
from emotrt.training.joint_task import (JointDataConfig, JointLossConfig, JointModelConfig, JointTask, absent_loss,
                                        energy_ratio_db, match_level)
from emotrt.training.models import load_model
from emotrt.training.ser import SER, SERConfig
from emotrt.training.tse import TSE

from tests.training.conftest import TINY_SER


@pytest.fixture(scope="module")
def parents(tmp_path_factory):
    """Tiny TSE and SER checkpoints (random weights) to fine-tune jointly."""
    root = tmp_path_factory.mktemp("parents")
    torch.manual_seed(0)
    tse = TSE.from_config("tiny")
    save_checkpoint(root / "tse", tse.state_dict(), tse.checkpoint_config())
    ser = SER.from_config(SERConfig(**TINY_SER))
    save_checkpoint(root / "ser", ser.state_dict(), ser.checkpoint_config())
    return root / "tse", root / "ser"


def tiny_data(corpus, **changes):
    return JointDataConfig(**dict(dict(corpus=str(corpus), batch_size=4, enroll_seconds=1.0, valid_size=4), **changes))


@pytest.fixture(scope="module")
def joint_task(parents, ser_corpus, wordllama):
    return JointTask(JointModelConfig(tse=str(parents[0]), ser=str(parents[1])), tiny_data(ser_corpus),
                     text_encoder=wordllama)


def test_level_matching_is_the_runtimes_and_differentiable():
    rng = np.random.default_rng(0)
    mixture = rng.standard_normal((3, 800)).astype(np.float32) * 0.1
    target = mixture + rng.standard_normal((3, 800)).astype(np.float32) * 0.05  # what an extraction finds in it
    extracted = target * np.array([[500.0], [0.1], [0.0]], dtype=np.float32)
    ours = torch.from_numpy(extracted).requires_grad_(True)
    matched = match_level(ours, torch.from_numpy(mixture))
    for row in range(3):
        expected = runtime_match_level(extracted[row:row + 1], mixture[row:row + 1])[0]
        np.testing.assert_allclose(matched[row].detach().numpy(), expected, rtol=1e-5, atol=1e-7)
    matched[:2].sum().backward()
    assert torch.isfinite(ours.grad).all() and ours.grad[:2].abs().sum() > 0


def test_a_few_steps_reduce_the_joint_loss_and_validate(joint_task):
    torch.manual_seed(0)
    model = joint_task.build_model()
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = next(joint_task.train_batches(1))
    assert batch["enrollment"].shape == (4, 16000) and batch["audio"].shape == (4, 16000)
    losses = []
    for _ in range(8):
        loss, parts = joint_task.loss(model, batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
    assert set(parts) == {"si_snr", "ce", "ccc", "acc", "absent_db"} and parts["absent_db"] == 0.0  # p_absent 0
    assert model.tse.encoder.weight.grad.abs().sum() > 0  # the SER's loss reaches the TSE too
    with torch.no_grad():
        scores = joint_task.validate(model.eval())
    assert {"ua", "si_sdri", "score"} <= set(scores) and np.isfinite(scores["si_sdri"])


def test_a_frozen_ser_stays_as_it_is_while_the_tse_learns_through_it(parents, ser_corpus, wordllama):
    task = JointTask(JointModelConfig(tse=str(parents[0]), ser=str(parents[1]), freeze_ser=True), tiny_data(ser_corpus),
                     text_encoder=wordllama)
    model = task.build_model()
    assert not model.ser.training and model.tse.training
    before = {k: v.clone() for k, v in model.ser.state_dict().items()}
    tse_before = model.tse.encoder.weight.detach().clone()
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    for _ in range(2):
        model.train()
        loss, _ = task.loss(model, next(task.train_batches(1)))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert not model.ser.training
    assert all(torch.equal(before[k], v) for k, v in model.ser.state_dict().items())
    assert not torch.equal(tse_before, model.tse.encoder.weight)


def test_a_frozen_enrollment_network_keeps_the_speaker_embeddings(parents, ser_corpus, wordllama):
    task = JointTask(JointModelConfig(tse=str(parents[0]), ser=str(parents[1]), freeze_ser=True, freeze_enroll=True),
                     tiny_data(ser_corpus), text_encoder=wordllama)
    model = task.build_model()
    batch = next(task.train_batches(1))
    with torch.no_grad():
        before = model.tse.enroll(batch["enrollment"])
    mask_before = model.tse.mask.weight.detach().clone()
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    for _ in range(2):
        loss, _ = task.loss(model, batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        assert torch.equal(before, model.tse.enroll(batch["enrollment"]))
    assert not torch.equal(mask_before, model.tse.mask.weight)  # the extraction still learns


def test_an_enrollment_referenced_ser_hears_the_extraction_at_the_speakers_enrollment_gain(parents, ser_corpus,
                                                                                              wordllama, tmp_path):
    """As in the SER's own training and at run time: one of the speaker's enrollment recordings sets the gain."""
    from emotrt.runtime.level import reference_gain, speech_level_db
    from emotrt.training.corpus.audio import read_audio
    from emotrt.training.ser_task import enrollment_clips

    ser = SER.from_config(SERConfig(**dict(TINY_SER, level_reference="enrollment")))
    save_checkpoint(tmp_path / "ser", ser.state_dict(), ser.checkpoint_config())
    task = JointTask(JointModelConfig(tse=str(parents[0]), ser=str(tmp_path / "ser"), freeze_ser=True),
                     tiny_data(ser_corpus), text_encoder=wordllama)
    gains = {round(reference_gain(speech_level_db(read_audio(u.file), 16000)), 5)
             for clips in enrollment_clips(ser_corpus).values() for u in clips}
    batch = next(task.train_batches(1))
    assert {round(float(g), 5) for g in batch["level_gain"]} <= gains
    assert set(task.valid["level_gain"].tolist()) != {1.0}
    model = task.build_model().eval()
    model.extract = lambda mixture, enrollment: 3.0 * mixture  # a pass-through at its own scale
    gain = torch.full((4,), 4.0)
    with torch.no_grad():
        _, logits, _ = model(batch["audio"], batch["enrollment"], model.ser.null_env(4), gain)
        expected, _ = model.ser(batch["audio"] * 4.0, model.ser.null_env(4))
        unscaled, _ = model.ser(batch["audio"], model.ser.null_env(4))
    assert torch.allclose(logits, expected, atol=1e-5) and not torch.allclose(logits, unscaled, atol=1e-3)


@pytest.mark.slow
def test_trainer_writes_two_loadable_exportable_checkpoints(parents, ser_corpus, wordllama, tmp_path):
    from emotrt.export.exporter import ExportConfig, export_checkpoints
    from emotrt.training.joint_task import from_recipe
    from emotrt.training.recipe import load_recipe
    from emotrt.training.trainer import train

    recipe = load_recipe("joint", task="joint", overrides=[
        "model.tse=" + json.dumps(str(parents[0])), "model.ser=" + json.dumps(str(parents[1])),
        "data.corpus=" + json.dumps(str(ser_corpus)), "data.batch_size=2", "data.enroll_seconds=1.0",
        "data.valid_size=2", "train.steps=2", "train.epoch_steps=2", "train.warmup_steps=0",
        "train.out=" + json.dumps(str(tmp_path / "run"))])
    result = train(from_recipe(recipe, text_encoder=wordllama), recipe, progress=False)
    assert result.step == 2 and "si_sdri" in result.valid
    ckpts = [tmp_path / "run" / "last" / name for name in ("tse", "ser")]
    for path, parent, family in zip(ckpts, parents, ("tse_td_speakerbeam", "ser")):
        model, config = load_model(path)
        assert config["family"] == family and config["fine_tuned_from"]["task"] == "joint"
        assert config["fine_tuned_from"][path.name]["path"] == str(parent) and config["training"]["step"] == 2
        assert config["fine_tuned_from"][path.name]["sha256"] == sha256_file(parent / "model.safetensors")
        original, _ = load_model(parent)
        assert any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), original.state_dict().values()))
    assert (tmp_path / "run" / "best" / "ser" / "model.safetensors").is_file()
    report = export_checkpoints(ckpts, tmp_path / "m", ExportConfig(vad=False, stream_hops=10))
    assert all(r.ok for r in report.parity.values()) and {"tse_step", "enroll", "ser"} <= set(report.graphs)


def test_the_absent_loss_is_relative_to_the_present_windows_and_reaches_only_the_absent_ones():
    ratio = torch.tensor([0.0, -2.0, -4.0, -10.0, -40.0], requires_grad=True)  # three present, two absent windows
    absent = torch.tensor([False, False, False, True, True])
    loss = absent_loss(ratio, absent, margin_db=30.0)
    assert loss.item() == pytest.approx((-10.0 - (-2.0 - 30.0)) / 2)  # only the first absent one is above -32 dB
    loss.backward()
    assert ratio.grad.tolist() == [0.0, 0.0, 0.0, 0.5, 0.0]
    assert absent_loss(ratio + 60.0, absent, 30.0).item() == pytest.approx(loss.item())  # the TSE's scale is free
    assert absent_loss(ratio, torch.zeros(5, dtype=torch.bool), 30.0).item() == 0.0
    audio = torch.ones(2, 100)
    assert energy_ratio_db(audio * 0.1, audio).tolist() == pytest.approx([-20.0, -20.0])


def test_absent_windows_hold_the_other_talker_alone_and_the_tse_learns_to_silence_them(parents, ser_corpus, wordllama):
    task = JointTask(JointModelConfig(tse=str(parents[0]), ser=str(parents[1]), freeze_ser=True),
                     tiny_data(ser_corpus, p_interferer=1.0, p_noise=0.0, p_absent=0.5, valid_absent=2),
                     JointLossConfig(si_snr_weight=0.0, ce_weight=0.0, ccc_weight=0.0, absent_weight=1.0),
                     text_encoder=wordllama)
    from emotrt.training.ser_task import labelled_sampler

    rng = np.random.default_rng(0)
    sampler = labelled_sampler(task.root, "train", task.labels, task.mix, 0)
    sampler_items = [sampler[i] for i in range(4)]
    batch = task._batch(sampler_items, rng, 0.0, absent=np.array([False, True, False, True]))
    assert batch["absent"].tolist() == [False, True, False, True]
    assert torch.count_nonzero(batch["clean"][1]) == 0 and torch.count_nonzero(batch["clean"][0]) > 0
    other = sampler_items[1].interferer / np.abs(sampler_items[1].mixture - sampler_items[1].target).max()
    np.testing.assert_allclose(batch["audio"][1].numpy() / batch["audio"][1].abs().max().item(), other, atol=1e-5)
    assert task.valid_absent["absent"].all() and len(task.valid_absent["audio"]) == 2

    torch.manual_seed(0)
    model = task.build_model()
    optimiser = torch.optim.AdamW(model.tse.parameters(), lr=2e-2)
    losses = []
    for _ in range(10):
        loss, parts = task.loss(model, batch)
        losses.append(parts["absent_db"])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    # the TSE found weights silencing the absent windows against the present ones (a random tiny TSE: 30 dB short)
    assert losses[0] > 25.0 and min(losses) < 0.5 * losses[0]
    with torch.no_grad():
        scores = task.validate(model.eval())
    assert {"absent_gap_db", "absent_leak"} <= set(scores) and 0.0 <= scores["absent_leak"] <= 1.0
    assert scores["score"] == pytest.approx(0.5 * (scores["ua"] + 1.0 - scores["absent_leak"]))


def test_absent_windows_need_another_talker(ser_corpus):
    with pytest.raises(ConfigError, match="p_absent > 0 needs another talker"):
        tiny_data(ser_corpus, p_interferer=0.0, p_absent=0.2)


def test_missing_or_wrong_parent_checkpoints_are_config_errors(parents, ser_corpus, wordllama):
    with pytest.raises(ConfigError, match="tse checkpoint directory not found") as err:
        JointModelConfig(tse="/nonexistent/tse", ser=str(parents[1]))
    assert "model.tse" in err.value.hint
    with pytest.raises(ConfigError, match="expected 'ser'"):
        JointTask(JointModelConfig(tse=str(parents[0]), ser=str(parents[0])), tiny_data(ser_corpus),
                  text_encoder=wordllama)
