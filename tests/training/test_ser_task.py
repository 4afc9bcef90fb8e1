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
    (dict(p_clean=0.9, p_interferer=0.2), "p_interferer"),
    (dict(snr_db=(5.0, -5.0)), "snr_db"),
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
