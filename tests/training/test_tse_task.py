"""The TSE task under the generic trainer: losses, speaker head, validation, checkpoints that reload."""
import numpy as np
import pytest
import torch

from emotrt.runtime.errors import ConfigError
from emotrt.training.models import load_model
from emotrt.training.recipe import RECIPES_DIR, load_recipe, recipe_from_dict
from emotrt.training.trainer import train
from emotrt.training.tse_task import from_recipe


def _recipe(out, *overrides):
    data = {"task": "tse", "train": {"out": str(out), "steps": 8, "epoch_steps": 4, "lr": 0.005, "log_every": 2},
            "model": {"preset": "tiny"}, "data": {"batch_size": 4, "valid_mixtures": 4},
            "loss": {"speaker_weight": 0.5}}
    return recipe_from_dict(data, list(overrides))


def test_trains_a_tiny_tse_and_the_checkpoint_reloads(tmp_path, tone_speakers):
    recipe = _recipe(tmp_path)
    task = from_recipe(recipe, source=tone_speakers)
    result = train(task, recipe, progress=False)
    assert result.step == 8 and set(result.valid) >= {"score", "si_sdri", "si_sdr"}
    best = load_model(tmp_path / "best")[1]
    assert best["training"]["step"] in (4, 8) and best["training"]["best_score"] == result.best_score
    model, config = load_model(tmp_path / "last")
    assert config["family"] == "tse_td_speakerbeam" and config["n_speakers"] == tone_speakers.n_speakers
    assert config["training"]["step"] == 8 and config["data"]["batch_size"] == 4
    batch = tone_speakers.valid_set()[0]
    with torch.no_grad():
        mix = torch.from_numpy(batch["mixture"])
        emb = model.enroll(torch.from_numpy(batch["enrollment"]))
        assert torch.equal(model(mix, emb), result.model.eval()(mix, emb))


def test_loss_combines_extraction_and_speaker_terms(tone_speakers):
    task = from_recipe(_recipe("unused"), source=tone_speakers)
    model = task.build_model()
    batch = {k: torch.from_numpy(v) for k, v in tone_speakers.sample(np.random.default_rng(0), 3).items()}
    loss, parts = task.loss(model, batch)
    assert set(parts) == {"si_snr", "speaker_ce"}
    assert loss.item() == pytest.approx(-parts["si_snr"] + 0.5 * parts["speaker_ce"], rel=1e-5)
    loss.backward()
    assert model.aux_out.weight.grad is not None and model.speaker_head.weight.grad is not None


def test_without_speaker_weight_there_is_no_speaker_head(tone_speakers):
    task = from_recipe(_recipe("unused", "loss.speaker_weight=0"), source=tone_speakers)
    assert task.build_model().speaker_head is None


def test_validation_scores_the_improvement_over_the_mixture(tone_speakers):
    task = from_recipe(_recipe("unused"), source=tone_speakers)

    class Oracle(torch.nn.Module):
        """Returns the target itself: an upper bound the metric must rank above the mixture."""

        config = task.model_config

        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))  # validate() reads the device from a parameter

        def enroll(self, audio):
            return audio

        def forward(self, mixture, emb):
            target = tone_speakers.valid_set()[0]["target"]
            delay = task.model_config.latency_samples
            return torch.nn.functional.pad(torch.from_numpy(target), (delay, 0))[:, : mixture.shape[1]]

    metrics = task.validate(Oracle())
    assert metrics["si_sdri"] > 20 and metrics["si_sdr"] > 40


@pytest.mark.parametrize("table, key", [
    ({"model": {"preset": "tiny", "filters": 3}}, "filters"),
    ({"data": {"batchsize": 3}}, "batchsize"),
    ({"loss": {"speaker": 1.0}}, "speaker"),
    ({"optim": {}}, "optim"),
])
def test_unknown_recipe_keys_are_errors(table, key, tone_speakers):
    recipe = recipe_from_dict(dict({"task": "tse", "train": {"out": "x"}}, **table))
    with pytest.raises(ConfigError, match=key):
        from_recipe(recipe, source=tone_speakers)


@pytest.mark.parametrize("name", sorted(p.stem for p in RECIPES_DIR.glob("tse_*.toml")))
def test_shipped_tse_recipes_build(name, tone_speakers):
    task = from_recipe(load_recipe(name, task="tse"), source=tone_speakers)
    assert task.build_model().config.sample_rate == 16000


def test_cli_trains_the_quick_recipe_on_a_corpus_and_resumes(tmp_path, synth_corpus):
    import subprocess
    import sys

    out = tmp_path / "run"
    args = [sys.executable, "-m", "emotrt", "train", "tse", "tse_quick", "--no-progress",
            "--set", "data.corpus=" + str(synth_corpus), "--set", "train.out=" + str(out),
            "--set", "model.preset=tiny", "--set", "data.segment_seconds=0.5", "--set", "data.valid_mixtures=2",
            "--set", "train.epoch_steps=2"]
    first = subprocess.run(args + ["--set", "train.steps=2"], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "step 2" in first.stdout
    second = subprocess.run(args + ["--set", "train.steps=3", "--no-jemalloc"], capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    _, config = load_model(out / "last")
    assert config["training"]["step"] == 3 and config["data"]["corpus"] == str(synth_corpus)
    assert config["training"]["recipe"]["model"]["preset"] == "tiny"


def test_warm_start_loads_the_parent_and_keeps_its_provenance_on_resume(tmp_path, tone_speakers):
    parent_recipe = _recipe(tmp_path / "parent", "train.steps=2", "train.epoch_steps=2")
    train(from_recipe(parent_recipe, source=tone_speakers), parent_recipe, progress=False)
    parent = tmp_path / "parent" / "best"
    recipe = _recipe(tmp_path / "child", "model.init=" + str(parent), "train.steps=2", "train.epoch_steps=2")
    task = from_recipe(recipe, source=tone_speakers)
    model = task.build_model()
    _, weights = load_model(parent)[0], load_model(parent)[0].state_dict()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())
    assert task.parent["path"] == str(parent) and len(task.parent["sha256"]) == 64 and task.parent["step"] == 2
    train(task, recipe, progress=False)
    _, config = load_model(tmp_path / "child" / "last")
    assert config["warm_started_from"]["sha256"] == task.parent["sha256"]
    # resuming: weights come from last/, the provenance from its config, the parent is not reloaded
    resumed = from_recipe(_recipe(tmp_path / "child", "model.init=/nonexistent", "train.steps=3"), source=tone_speakers)
    assert resumed.parent["sha256"] == task.parent["sha256"]
    resumed.build_model()


def test_warm_start_with_another_speaker_head_keeps_a_fresh_one(tmp_path, tone_speakers):
    from tests.training.conftest import ToneSpeakers

    recipe = _recipe(tmp_path / "parent", "train.steps=1", "train.epoch_steps=1")
    train(from_recipe(recipe, source=tone_speakers), recipe, progress=False)
    task = from_recipe(_recipe(tmp_path / "child", "model.init=" + str(tmp_path / "parent" / "last")),
                       source=ToneSpeakers(n_speakers=3))
    model = task.build_model()
    assert model.speaker_head.out_features == 3 and task.parent["fresh"] == ["speaker_head.bias", "speaker_head.weight"]


def test_validation_reports_each_condition(tone_speakers):
    task = from_recipe(_recipe("unused"), source=tone_speakers)
    model = task.build_model().eval()
    base = tone_speakers.valid_set()[0]
    noise = dict(base, condition="noise")
    clean = dict(base, mixture=base["target"], condition="clean")

    class Source:
        n_speakers = tone_speakers.n_speakers

        def valid_set(self):
            return [base, noise, clean]

    task.source = Source()
    with torch.no_grad():
        metrics = task.validate(model)
    assert set(metrics) == {"score", "si_sdri", "si_sdr", "noise_si_sdri", "noise_si_sdr", "clean_si_sdr"}
    assert metrics["score"] == pytest.approx((metrics["si_sdri"] + metrics["noise_si_sdri"]) / 2)
