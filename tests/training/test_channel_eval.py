"""``emotrt eval --channels`` as a library: rows, agreement, the checks, and a level-invariant SER."""
import pytest
import torch
from torch import nn

from emotrt.runtime.errors import ConfigError
from emotrt.training.channel_eval import (UNALTERED, ChannelEvalConfig, ChannelEvaluator, checks, format_channels,
                                          summarise)
from emotrt.training.ser import SER, SERConfig

from .conftest import TINY_SER


class PassThroughTSE(nn.Module):
    def enroll(self, audio):
        return audio.mean(-1, keepdim=True)

    def forward(self, audio, spk_emb):
        return audio * 200.0  # scale-free like an SI-SNR-trained extractor


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    absolute = SER.from_config(SERConfig(**TINY_SER)).eval()
    torch.nn.init.normal_(absolute.emotion_head.weight, std=2.0)  # decisive logits: labels that can flip
    levelled = SER.from_config(SERConfig(input_norm="rms", **TINY_SER)).eval()
    levelled.load_state_dict(absolute.state_dict())
    referenced = SER.from_config(SERConfig(level_reference="enrollment", **TINY_SER)).eval()
    referenced.load_state_dict(absolute.state_dict())
    return absolute, levelled, referenced


CONFIG = ChannelEvalConfig(sets=("clean", "noise_seen_0db"), gains=(-20.0, 6.0), channels=("mems_hp200", "small_room"),
                           bootstrap=50)


def test_rows_cover_sets_and_conditions_and_the_unaltered_run_agrees_with_itself(ser_corpus, models, wordllama):
    report = ChannelEvaluator(models[1], ser_corpus, config=CONFIG, text_encoder=wordllama).run()
    rows = report["rows"]
    assert [(r["set"], r["condition"]) for r in rows[:5]] == [
        ("clean", UNALTERED), ("clean", "gain_m20db"), ("clean", "gain_p6db"), ("clean", "mems_hp200"),
        ("clean", "small_room")]
    assert len(rows) == 10 and all(r["n"] > 0 and 0 <= r["agreement"] <= 1 for r in rows)
    assert all(r["agreement"] == 1.0 for r in rows if r["condition"] == UNALTERED)
    gain = [r for r in rows if r["condition"] == "gain_m20db"]
    assert all(r["agreement"] == 1.0 and r["ua_change"] == 0.0 for r in gain)  # the RMS front end cannot hear -20 dB
    names = [c["condition"] for c in report["checks"]]
    assert "gain_m20db" in names and "mems_hp200" in names and UNALTERED not in names
    text = format_channels(report)
    assert "| clean | " in text and "label agreement >= 85%" in text and "gain_p6db" in text


def test_an_absolute_level_ser_changes_its_outputs_with_gain(ser_corpus, models, wordllama):
    config = ChannelEvalConfig(sets=("clean",), gains=(-20.0,), channels=(), bootstrap=10)
    absolute = ChannelEvaluator(models[0], ser_corpus, config=config, text_encoder=wordllama).run()
    levelled = ChannelEvaluator(models[1], ser_corpus, config=config, text_encoder=wordllama).run()
    a, b = absolute["rows"], levelled["rows"]
    assert a[1]["ccc_a"] != pytest.approx(a[0]["ccc_a"], abs=1e-6)  # AVD moves with the gain
    assert b[1]["ccc_a"] == pytest.approx(b[0]["ccc_a"], abs=1e-5) and b[1]["agreement"] == 1.0


def test_an_enrollment_referenced_ser_hears_its_enrollment_through_the_condition(ser_corpus, models, wordllama):
    """The absolute-level SER's own weights, but each speaker heard at their enrollment's gain: -20 dB cancels."""
    config = ChannelEvalConfig(sets=("clean",), gains=(-20.0,), channels=("small_room",), bootstrap=10)
    absolute = ChannelEvaluator(models[0], ser_corpus, config=config, text_encoder=wordllama).run()["rows"]
    referenced = ChannelEvaluator(models[2], ser_corpus, config=config, text_encoder=wordllama).run()["rows"]
    assert referenced[1]["agreement"] == 1.0 and referenced[1]["ccc_a"] == pytest.approx(referenced[0]["ccc_a"], abs=1e-5)
    assert referenced[0]["ccc_a"] != pytest.approx(absolute[0]["ccc_a"], abs=1e-6)  # the speakers' gains are not 1


def test_with_a_tse_the_condition_reaches_the_mixture_and_the_output_is_level_matched(ser_corpus, models, wordllama):
    config = ChannelEvalConfig(sets=("two_talker_same_0db",), gains=(-20.0,), channels=(), bootstrap=10)
    report = ChannelEvaluator(models[0], ser_corpus, tse=PassThroughTSE(), config=config, text_encoder=wordllama).run()
    plain = ChannelEvaluator(models[0], ser_corpus, config=config, text_encoder=wordllama).run()
    assert report["rows"][0]["tse"] == "on"
    assert [r["ua"] for r in report["rows"]] == pytest.approx([r["ua"] for r in plain["rows"]])


def test_summary_and_checks_apply_the_issue_targets():
    rows = [dict(set=s, condition=c, n=10, ua=0.9, agreement=a, ua_change=d)
            for s, c, a, d in [("a", "gain_m6db", 0.95, -0.01), ("b", "gain_m6db", 0.85, -0.03),
                               ("a", "telephone", 0.90, 0.0), ("a", "hall_far", 0.5, -0.3)]]
    summary = {s["condition"]: s for s in summarise(rows)}
    assert summary["gain_m6db"]["agreement"] == pytest.approx(0.90) and summary["gain_m6db"]["worst_ua_change"] == -0.03
    got = {(c["condition"], c["criterion"][:2]): c["ok"] for c in checks(rows)}
    assert got == {("gain_m6db", "UA"): False, ("gain_m6db", "la"): True, ("telephone", "UA"): True,
                   ("telephone", "la"): True}


def test_unknown_channel_is_a_config_error():
    with pytest.raises(ConfigError, match="no_mic"):
        ChannelEvalConfig(channels=("no_mic",))
