import pytest
import torch

from emotrt.runtime.errors import ConfigError, CorpusError
from emotrt.training.ser import load_ser
from emotrt.training.ser import SERConfig
from emotrt.training.ser_task import SERDataConfig, SERLossConfig, SERTask


def test_batches_are_seeded_and_shaped(ser_task):
    a, b = next(ser_task.train_batches(5)), next(ser_task.train_batches(5))
    assert torch.equal(a["audio"], b["audio"]) and a["environment"] == b["environment"]
    assert a["audio"].shape == (8, 16000) and a["text"].shape == (8, 256) and a["avd"].shape == (8, 3)
    assert float(a["audio"].abs().max()) <= 0.95 + 1e-6
    assert not torch.equal(next(ser_task.train_batches(6))["audio"], a["audio"])


def test_text_dropout_uses_the_null_token(ser_task):
    model = ser_task.build_model()
    batch = next(ser_task.train_batches(0))
    batch["has_text"] = torch.tensor([True, False] * 4)
    tokens = ser_task.tokens(model, batch)
    assert torch.equal(tokens[1], model.null_token)
    assert torch.allclose(tokens[0], model.project_env(batch["text"][:1])[0], atol=1e-6)


def test_a_few_optimisation_steps_fit_a_batch_and_validate(ser_task):
    torch.manual_seed(0)
    model = ser_task.build_model()
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    batch = next(ser_task.train_batches(1))
    losses = []
    for _ in range(15):
        loss, metrics = ser_task.loss(model, batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert set(metrics) == {"ce", "ccc", "acc"}
    scores = ser_task.validate(model)
    assert scores["score"] == scores["ua"] and 0.0 <= scores["ua"] <= 1.0 and model.training


def test_checkpoint_round_trip(ser_task, tmp_path):
    from emotrt.training.checkpoint import save_checkpoint

    model = ser_task.build_model().eval()
    save_checkpoint(tmp_path / "ser", model.state_dict(), ser_task.checkpoint_config(model))
    loaded, config = load_ser(tmp_path / "ser")
    assert config["family"] == "ser" and config["labels"] == ["neutral", "happy", "angry", "sad"]
    batch = ser_task.valid
    tokens = ser_task.tokens(model, batch)
    assert torch.equal(model(batch["audio"], tokens)[0], loaded(batch["audio"], tokens)[0])


def test_wrong_family_checkpoint_is_refused(tmp_path):
    from emotrt.training.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "tse", {"w": torch.zeros(1)}, {"family": "tse"})
    with pytest.raises(ConfigError, match="'tse' model, expected 'ser'"):
        load_ser(tmp_path / "tse")


@pytest.mark.parametrize("changes, field", [
    (dict(batch_size=1), "batch_size"),
    (dict(p_interferer=1.5), "p_interferer"),
    (dict(sir_db=(5.0, -5.0)), "sir_db"),
    (dict(p_no_text=-0.1), "p_no_text"),
    (dict(corpus=""), "corpus"),
])
def test_bad_data_settings_name_the_field(changes, field):
    with pytest.raises(ConfigError, match=field):
        SERDataConfig(**dict(dict(corpus="x"), **changes))
    with pytest.raises(ConfigError, match="ccc_weight"):
        SERLossConfig(ccc_weight=-1.0)


def test_missing_corpus_says_how_to_make_one(tmp_path, wordllama):
    with pytest.raises(CorpusError, match="environments.json") as err:
        SERTask(SERConfig(), SERDataConfig(corpus=str(tmp_path)), text_encoder=wordllama)
    assert "emotrt data synth" in str(err.value)


def test_text_dim_must_match_the_encoder(ser_corpus, wordllama):
    with pytest.raises(ConfigError, match="text_dim=256"):
        SERTask(SERConfig(text_dim=16), SERDataConfig(corpus=str(ser_corpus)), text_encoder=wordllama)


def test_joint_text_encoder_fine_tuning_trains_and_round_trips(ser_corpus, tiny_hf, tmp_path):
    from emotrt.training.checkpoint import save_checkpoint

    model_config = SERConfig(d_model=32, heads=2, layers=1, ff_dim=64, window_samples=16000, text_encoder="bert",
                             text_encoder_path=str(tiny_hf / "bert"), text_dim=16, text_fine_tune=True)
    task = SERTask(model_config, SERDataConfig(corpus=str(ser_corpus), batch_size=4, valid_size=4))
    torch.manual_seed(0)
    model = task.build_model()
    before = {n: p.detach().clone() for n, p in model.text.named_parameters()}
    optimiser = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss, _ = task.loss(model, next(task.train_batches(0)))
    loss.backward()
    optimiser.step()
    assert any(not torch.equal(before[n], p) for n, p in model.text.named_parameters())
    save_checkpoint(tmp_path / "joint", model.state_dict(), task.checkpoint_config(model))
    loaded, _ = load_ser(tmp_path / "joint")
    model.eval()
    assert torch.allclose(loaded.encode_env(["a busy cafe"]), model.encode_env(["a busy cafe"]), atol=1e-6)
    assert task.validate(loaded)["ua"] == task.validate(model)["ua"]


def test_fine_tuning_wordllama_is_refused():
    with pytest.raises(ConfigError, match="text_fine_tune"):
        SERConfig(text_fine_tune=True)


def test_shipped_ser_recipes_build_and_the_trainer_writes_a_loadable_checkpoint(ser_corpus, wordllama, tmp_path):
    from emotrt.training.models import load_model
    from emotrt.training.recipe import load_recipe
    from emotrt.training.ser_task import from_recipe
    from emotrt.training.trainer import train

    default = from_recipe(load_recipe("ser_fbank", ["data.corpus=" + str(ser_corpus), "data.valid_size=4"], task="ser"),
                          text_encoder=wordllama)
    assert default.model_config.window_samples == 32000 and default.data.batch_size == 32
    tiny = ["data.corpus=" + str(ser_corpus), "train.out=" + str(tmp_path / "run"), "train.steps=2",
            "train.epoch_steps=2", "data.batch_size=4", "data.valid_size=4", "model.d_model=16", "model.layers=1",
            "model.window_samples=8000"]
    recipe = load_recipe("ser_quick", tiny, task="ser")
    result = train(from_recipe(recipe, text_encoder=wordllama), recipe, progress=False)
    assert result.step == 2 and result.best_score is not None
    model, config = load_model(tmp_path / "run" / "best")
    assert config["family"] == "ser" and config["training"]["step"] == 2 and model.config.d_model == 16


def test_recipe_typos_are_errors(ser_corpus):
    from emotrt.training.recipe import load_recipe
    from emotrt.training.ser_task import from_recipe

    with pytest.raises(ConfigError, match="batchsize"):
        from_recipe(load_recipe("ser_quick", ["data.corpus=x", "data.batchsize=3"]))
    with pytest.raises(ConfigError, match="d_modle"):
        from_recipe(load_recipe("ser_quick", ["data.corpus=x", "model.d_modle=3"]))
    with pytest.raises(ConfigError, match="modle"):
        from_recipe(load_recipe("ser_quick", ["data.corpus=x", "modle.d_model=3"]))


@pytest.fixture(scope="module")
def teacher_ckpt(ser_task, tmp_path_factory):
    """A tiny SER checkpoint (random weights, the student's shape) to distil from."""
    from emotrt.training.checkpoint import save_checkpoint

    torch.manual_seed(1)
    teacher = ser_task.build_model()
    path = tmp_path_factory.mktemp("teacher") / "ser"
    save_checkpoint(path, teacher.state_dict(), teacher.checkpoint_config())
    return path


def test_distillation_adds_a_differentiable_term_that_changes_the_gradient(ser_task, teacher_ckpt, wordllama):
    loss_config = SERLossConfig(distill_weight=1.0, teacher=str(teacher_ckpt), temperature=2.0)
    distil = SERTask(ser_task.model_config, ser_task.data, loss_config, text_encoder=wordllama)
    torch.manual_seed(0)
    model = ser_task.build_model()
    batch = next(ser_task.train_batches(2))
    assert not torch.equal(batch["clean"], batch["audio"])  # the teacher hears the clean window

    def gradient(task):
        model.zero_grad()
        loss, parts = task.loss(model, batch)
        loss.backward()
        return torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None]), parts

    plain, _ = gradient(ser_task)
    distilled, parts = gradient(distil)
    assert parts["distill_kl"] > 0 and parts["distill_mse"] > 0
    assert not torch.allclose(plain, distilled)
    assert all(not p.requires_grad for p in distil.teacher.parameters())


@pytest.mark.parametrize("loss, message", [
    (dict(distill_weight=1.0, teacher="/nonexistent/ser"), "teacher checkpoint not found"),
    (dict(distill_weight=1.0), "no teacher checkpoint"),
    (dict(teacher="runs/x"), "distill_weight is 0"),
    (dict(distill_weight=1.0, teacher="runs/x", temperature=0.0), "temperature"),
])
def test_distillation_settings_are_one_clear_config_error(ser_task, wordllama, loss, message):
    with pytest.raises(ConfigError, match=message) as err:
        SERTask(ser_task.model_config, ser_task.data, SERLossConfig(**loss), text_encoder=wordllama)
    assert err.value.hint


def test_an_ser_recipe_warm_starts_from_a_checkpoint_and_records_its_parent(ser_task, ser_corpus, wordllama, tmp_path):
    from emotrt.runtime.manifest import sha256_file
    from emotrt.training.checkpoint import save_checkpoint
    from emotrt.training.recipe import recipe_from_dict
    from emotrt.training.ser_task import from_recipe

    parent = ser_task.build_model()
    save_checkpoint(tmp_path / "parent", parent.state_dict(), ser_task.checkpoint_config(parent))
    recipe = recipe_from_dict({"task": "ser", "train": {"out": str(tmp_path / "run"), "steps": 1},
                               "model": {"init": str(tmp_path / "parent"), "level_reference": "enrollment"},
                               "data": {"corpus": str(ser_corpus), "batch_size": 4, "valid_size": 4}})
    task = from_recipe(recipe, text_encoder=wordllama)
    child = task.build_model()
    assert task.model_config.d_model == 32 and task.model_config.level_reference == "enrollment"
    for name, value in parent.state_dict().items():
        assert torch.equal(child.state_dict()[name], value), name
    config = task.checkpoint_config(child)
    assert config["level_reference"] == "enrollment"
    assert config["warm_started_from"]["sha256"] == sha256_file(tmp_path / "parent" / "model.safetensors")


def test_a_level_reference_needs_the_absolute_level():
    from .conftest import TINY_SER

    with pytest.raises(ConfigError, match="level_reference 'enrollment' needs input_norm"):
        SERConfig(**dict(TINY_SER, level_reference="enrollment", input_norm="rms"))
    with pytest.raises(ConfigError, match="level_reference must be one of none, enrollment"):
        SERConfig(**dict(TINY_SER, level_reference="speaker"))


def test_the_level_reference_is_an_enrollment_recording_of_the_speaker(ser_corpus, wordllama):
    """Not the sampler's enrollment, which may be an emotional utterance several dB off the speaker's usual level."""
    import numpy as np

    from emotrt.training.corpus import load_manifest
    from emotrt.training.corpus.audio import read_audio
    from emotrt.training.ser_task import enrollment_clips, labelled_sampler, reference_enrollment

    from .conftest import TINY_SER

    enroll = load_manifest(ser_corpus / "manifests" / "enroll.jsonl", ser_corpus)
    clips = enrollment_clips(ser_corpus)
    assert sum(len(v) for v in clips.values()) == len(enroll) > 0
    task = SERTask(SERConfig(**dict(TINY_SER, level_reference="enrollment")),
                   SERDataConfig(corpus=str(ser_corpus), batch_size=8, valid_size=8), text_encoder=wordllama)
    item = labelled_sampler(ser_corpus, "train", task.labels, task.mix, 0)[0]
    chosen = reference_enrollment(task.enrollments, item, np.random.default_rng(0))
    assert any(np.array_equal(chosen, read_audio(u.file)) for u in clips[item.speaker])
