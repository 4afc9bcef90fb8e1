import numpy as np
import pytest
import torch
from torch import nn

from emotrt.runtime.errors import ConfigError, CorpusError
from emotrt.training.checkpoint_eval import EvalConfig, Evaluator, describe_set, fit_window, format_table, list_testsets


class PassThroughTSE(nn.Module):
    """A TSE-shaped stand-in that returns the mixture: its SI-SDRi is 0 dB by definition."""

    def enroll(self, audio):
        return audio.mean(-1, keepdim=True)

    def forward(self, audio, spk_emb):
        return audio


@pytest.fixture(scope="module")
def tiny_model(ser_task):
    torch.manual_seed(0)
    return ser_task.build_model().eval()


def test_set_names_describe_condition_and_levels():
    assert describe_set("noise_unseen_m5db") == {"condition": "unseen", "snr_db": -5.0, "sir_db": None}
    assert describe_set("two_talker_same_0db")["condition"] == "interferer_same"
    assert describe_set("clean")["condition"] == "clean"


def test_fit_window_centres_and_pads():
    audio = np.arange(10, dtype=np.float32)
    assert fit_window(audio, 4).tolist() == [3, 4, 5, 6]
    padded = fit_window(audio, 14)
    assert padded[:2].tolist() == [0, 0] and padded[2:12].tolist() == audio.tolist()


def test_table_covers_every_set_and_text_mode(ser_corpus, tiny_model, wordllama):
    report = Evaluator(tiny_model, ser_corpus, text_encoder=wordllama, config=EvalConfig(limit=2)).run()
    names = list_testsets(ser_corpus)
    assert names[0] == "clean" and names[1] == "noise_seen_10db" and len(names) == 11
    assert len(report["ser"]) == 3 * len(names) and report["tse"] is None
    for row in report["ser"]:
        assert row["n"] == 2 and 0.0 <= row["ua"] <= 1.0 and -1.0 <= row["ccc_a"] <= 1.0
    by_mode = {r["text"]: r for r in report["ser"] if r["set"] == "noise_seen_m5db"}
    assert set(by_mode) == {"text", "none", "wrong"}
    assert [(g["set"], g["compared"]) for g in report["text_gain"][:2]] == [("clean", "text - none"), ("clean", "text - wrong")]
    assert len(report["text_gain"]) == 2 * len(names)
    table = format_table(report)
    assert "| noise_unseen_m5db | unseen | -5 |" in table and "| noise_unseen_m5db | off | text - wrong |" in table


def test_wrong_description_is_another_environment(ser_task):
    bank = ser_task.bank
    assert all(bank.wrong(e) != e for e in bank.ids)
    with pytest.raises(ConfigError, match="unknown environment 'moon'"):
        bank.embedding("moon")


def test_tse_rows_and_si_sdri(ser_corpus, tiny_model, wordllama):
    sets = ("two_talker_same_0db", "two_talker_different_0db")
    report = Evaluator(tiny_model, ser_corpus, tse=PassThroughTSE(), text_encoder=wordllama,
                       config=EvalConfig(sets=sets, text_modes=("text",), limit=2)).run()
    assert [(r["tse"], r["text"]) for r in report["ser"]] == [("off", "text"), ("on", "text")] * 2
    off, on = report["ser"][0], report["ser"][1]
    assert off["ua"] == on["ua"] and off["ccc_v"] == pytest.approx(on["ccc_v"])
    tse = report["tse"]
    assert tse["n"] == 4 and set(tse) == {"si_sdri_db", "n", "si_sdri_db_same", "si_sdri_db_different"}
    assert abs(tse["si_sdri_db"]) < 1e-3
    assert "TSE SI-SDRi" in format_table(report)


def test_bad_evaluation_requests(ser_corpus, tiny_model, wordllama, tmp_path):
    with pytest.raises(CorpusError, match="noise_mars_0db") as err:
        Evaluator(tiny_model, ser_corpus, text_encoder=wordllama, config=EvalConfig(sets=("noise_mars_0db",))).run()
    assert "clean" in str(err.value)
    with pytest.raises(CorpusError, match="environments.json"):
        Evaluator(tiny_model, tmp_path, text_encoder=wordllama)
    with pytest.raises(ConfigError, match="text_modes"):
        EvalConfig(text_modes=("maybe",))


def test_gated_rows_follow_the_gate(ser_corpus, tiny_model, wordllama):
    from emotrt.runtime.gate import GateThresholds

    sets = ("clean",)
    config = EvalConfig(sets=sets, text_modes=("text",), limit=3)
    bypass = GateThresholds(use_margin=0.1, bypass_margin=0.0, present_similarity=-1.0)  # pass-through: margin 0
    report = Evaluator(tiny_model, ser_corpus, tse=PassThroughTSE(), text_encoder=wordllama, config=config,
                       gate=bypass).run()
    off, on, gated = report["ser"]
    assert [r["tse"] for r in report["ser"]] == ["off", "on", "gated"]
    assert gated["ua"] == off["ua"] == gated["ua_heard"] and gated["present"] == 1.0 and gated["bypassed"] == 1.0
    assert [g["tse"] for g in report["text_gain"]] == ["on - off", "gated - off", "gated - on"]
    table = format_table(report)
    assert "| clean | gated - off | +0.000 |" in table and "| speaker present | used |" in table
    absent = GateThresholds(use_margin=0.1, bypass_margin=0.0, present_similarity=-1.0, present_ratio_db=10.0)
    report = Evaluator(tiny_model, ser_corpus, tse=PassThroughTSE(), text_encoder=wordllama, config=config,
                       gate=absent).run()
    gated = report["ser"][2]
    assert gated["present"] == 0.0 and gated["ua"] == 0.0  # no answer for an absent speaker is a miss


def test_against_scores_a_second_ser_on_the_same_windows(ser_corpus, tiny_model, wordllama, ser_task):
    import dataclasses

    from emotrt.training.ser import SER

    config = EvalConfig(sets=("clean", "noise_unseen_m5db"), text_modes=("none", "text"), limit=4)
    same = Evaluator(tiny_model, ser_corpus, text_encoder=wordllama, config=config, against=tiny_model).run()
    rows = [g for g in same["text_gain"] if g["compared"] == "against none"]
    assert [r["set"] for r in rows] == ["clean", "noise_unseen_m5db"]
    for row, own in zip(rows, [r for r in same["ser"] if r["text"] == "none"]):
        assert row["ua_gain"] == 0.0 and row["ua_ci"] == [0.0, 0.0] and row["against_ua"] == own["ua"]
    torch.manual_seed(1)
    other = ser_task.build_model().eval()
    report = Evaluator(tiny_model, ser_corpus, text_encoder=wordllama, config=config, against=other).run()
    alone = Evaluator(other, ser_corpus, text_encoder=wordllama, config=config).run()
    for row, own, theirs in zip([g for g in report["text_gain"] if g["compared"] == "against none"],
                                [r for r in report["ser"] if r["text"] == "none"],
                                [r for r in alone["ser"] if r["text"] == "none"]):
        assert row["against_ua"] == theirs["ua"] and row["ua_gain"] == pytest.approx(own["ua"] - theirs["ua"])
        assert row["ua_ci"][0] <= row["ua_gain"] <= row["ua_ci"][1]
    table = format_table(dict(report, against="runs/base/best"))
    assert "This SER minus runs/base/best on the same utterances (text mode none)" in table
    assert "Environment text" in table and table.count("| noise_unseen_m5db | off |") == 2
    longer = SER.from_config(dataclasses.replace(tiny_model.config, window_samples=tiny_model.config.window_samples * 2))
    with pytest.raises(ConfigError, match="--against: the SERs differ"):
        Evaluator(tiny_model, ser_corpus, text_encoder=wordllama, against=longer)
