"""``emotrt eval`` end to end on a tiny corpus and an untrained tiny SER checkpoint."""
import json
import subprocess
import sys

import pytest


def emotrt(*args):
    return subprocess.run([sys.executable, "-m", "emotrt", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def corpus_and_checkpoint(tmp_path_factory):
    from emotrt.training.checkpoint import save_checkpoint
    from emotrt.training.corpus.synth import SynthConfig, synthesise_corpus
    from emotrt.training.ser import SER, SERConfig

    root = tmp_path_factory.mktemp("eval")
    config = SynthConfig(train_speakers=2, valid_speakers=1, test_speakers=4, per_style_train=1, per_style_test=1,
                         enroll_per_speaker=1, babble_talkers=2, noise_clips=(1, 1, 1), unseen_clips=1,
                         noise_seconds=1.0, testset_size=2)
    synthesise_corpus(root / "synth", seed=5, workers=1, config=config)
    model = SER(SERConfig(d_model=32, heads=2, layers=1, ff_dim=64, window_samples=16000))
    save_checkpoint(root / "ser", model.state_dict(), model.checkpoint_config())
    return root


def test_eval_writes_the_report_and_prints_the_table(corpus_and_checkpoint):
    root = corpus_and_checkpoint
    proc = emotrt("eval", str(root / "ser"), "--corpus", str(root / "synth"), "--sets", "clean,noise_unseen_m5db",
                  "--text", "text,wrong", "--out", str(root / "report.json"), "--markdown", str(root / "table.md"))
    assert proc.returncode == 0, proc.stderr
    report = json.loads((root / "report.json").read_text())
    assert [(r["set"], r["text"]) for r in report["ser"]] == [
        ("clean", "text"), ("clean", "wrong"), ("noise_unseen_m5db", "text"), ("noise_unseen_m5db", "wrong")]
    assert "| noise_unseen_m5db | unseen | -5 | off | wrong | 2 |" in proc.stdout
    assert (root / "table.md").read_text().startswith("| set |")


def test_eval_bad_inputs_are_one_line_errors(corpus_and_checkpoint, tmp_path):
    root = corpus_and_checkpoint
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text('{"family": "ser"}')
    cases = [
        ((str(tmp_path / "half"), "--corpus", str(root / "synth")), "missing model.safetensors"),
        ((str(root / "ser"), "--corpus", str(root / "synth"), "--sets", "noise_moon_0db"), "noise_moon_0db"),
        ((str(root / "ser"), "--corpus", str(tmp_path)), "no stored test sets"),
    ]
    for args, message in cases:
        proc = emotrt("eval", *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr


def test_eval_channels_prints_ua_and_label_agreement(corpus_and_checkpoint):
    root = corpus_and_checkpoint
    proc = emotrt("eval", str(root / "ser"), "--corpus", str(root / "synth"), "--sets", "clean", "--channels",
                  "--channel-list", "telephone", "--gains", "-12,6", "--out", str(root / "channels.json"))
    assert proc.returncode == 0, proc.stderr
    report = json.loads((root / "channels.json").read_text())
    assert [r["condition"] for r in report["rows"]] == ["unaltered", "gain_m12db", "gain_p6db", "telephone"]
    assert "Label agreement with the unaltered run" in proc.stdout and "| telephone |" in proc.stdout
    bad = emotrt("eval", str(root / "ser"), "--corpus", str(root / "synth"), "--channels", "--channel-list", "no_mic")
    assert bad.returncode == 2 and "no_mic" in bad.stderr and "Traceback" not in bad.stderr


def test_eval_against_a_second_ser(corpus_and_checkpoint):
    root = corpus_and_checkpoint
    proc = emotrt("eval", str(root / "ser"), "--corpus", str(root / "synth"), "--sets", "clean", "--text", "text",
                  "--against", str(root / "ser"), "--out", str(root / "against.json"))
    assert proc.returncode == 0, proc.stderr
    report = json.loads((root / "against.json").read_text())
    assert report["against"] == str(root / "ser") and report["text_gain"][0]["ua_gain"] == 0.0
    assert "This SER minus {} on the same utterances (text mode text)".format(root / "ser") in proc.stdout
    bad = emotrt("eval", str(root / "ser"), "--corpus", str(root / "synth"), "--channels", "--against", str(root / "ser"))
    assert bad.returncode == 2 and "--against" in bad.stderr and "Traceback" not in bad.stderr
