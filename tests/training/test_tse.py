"""The causal TD-SpeakerBeam: streaming equals offline, causality, sizes of the shipped configs."""
import doctest

import pytest
import torch

from emotrt.runtime.errors import ConfigError
from emotrt.training import tse as tse_module
from emotrt.training.tse import PRESETS, TSE, count_parameters, resolve_config


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = TSE.from_config("tiny").eval()
    # Non-trivial weights everywhere (biases and PReLU slopes included) so no path hides behind zeros.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def _stream(model, audio, emb, chunk):
    states = model.initial_state(audio.shape[0])
    outs = []
    for piece in audio.split(chunk, dim=1):
        out, *states = model.step(piece, emb, *states)
        outs.append(out)
    return torch.cat(outs, dim=1)


@pytest.mark.parametrize("strides", [1, 3, 20])
def test_hop_by_hop_equals_causal_forward(tiny, strides):
    chunk = strides * tiny.config.enc_stride
    hops = 60
    audio = torch.randn(2, chunk * hops)
    with torch.no_grad():
        emb = tiny.enroll(torch.randn(2, 2000))
        full = tiny(audio, emb)
        streamed = _stream(tiny, audio, emb, chunk)
    assert streamed.shape == full.shape
    assert (streamed - full).abs().max() < 1e-5


def test_output_is_causal_and_lags_by_the_latency(tiny):
    audio = torch.randn(1, 1600)
    changed = audio.clone()
    changed[:, 1000:] += torch.randn(1, 600)
    with torch.no_grad():
        emb = tiny.enroll(torch.randn(1, 1600))
        a, b = tiny(audio, emb), tiny(changed, emb)
    assert torch.equal(a[:, :1000], b[:, :1000])
    assert not torch.allclose(a[:, 1000:], b[:, 1000:])


def test_forward_accepts_lengths_that_are_not_a_stride_multiple(tiny):
    with torch.no_grad():
        out = tiny(torch.randn(3, 1001), tiny.enroll(torch.randn(3, 777)))
    assert out.shape == (3, 1001)


def test_state_specs_describe_initial_state(tiny):
    specs = tiny.state_specs()
    states = tiny.initial_state(batch=1)
    assert [tuple(s.shape) for s in states] == [shape for _, shape in specs]
    assert len({name for name, _ in specs}) == len(specs)
    assert tiny.state_bytes() == 4 * sum(s.numel() for s in states)


def test_speaker_embedding_changes_the_output(tiny):
    audio = torch.randn(1, 800)
    with torch.no_grad():
        a = tiny(audio, tiny.enroll(torch.randn(1, 1600)))
        b = tiny(audio, tiny.enroll(torch.randn(1, 1600) * 3))
    assert not torch.allclose(a, b)


def test_edge_fits_the_budget_and_paper_has_paper_dimensions():
    edge = TSE.from_config("edge")
    assert count_parameters(edge) <= 2_000_000
    assert edge.state_bytes() <= 1_000_000
    paper = PRESETS["paper"]
    assert (paper.n_filters, paper.bottleneck, paper.hidden, paper.blocks, paper.repeats) == (512, 128, 512, 8, 3)
    assert paper.enc_kernel / paper.sample_rate == 16 / 8000


def test_checkpoint_config_roundtrip(tiny):
    rebuilt = TSE.from_checkpoint_config(tiny.checkpoint_config())
    assert rebuilt.config == tiny.config
    assert tiny.checkpoint_config()["latency_samples"] == tiny.config.enc_kernel - tiny.config.enc_stride


@pytest.mark.parametrize("overrides, field", [
    ({"enc_kernel": 20, "enc_stride": 8}, "enc_kernel"),
    ({"chunk_samples": 100}, "chunk_samples"),
    ({"repeats": 1}, "repeats"),
    ({"hidden": 0}, "hidden"),
])
def test_bad_config_names_the_field(overrides, field):
    with pytest.raises(ConfigError, match=field):
        resolve_config("tiny", **overrides)


def test_unknown_preset_and_field_are_errors():
    with pytest.raises(ConfigError, match="huge"):
        resolve_config("huge")
    with pytest.raises(ConfigError, match="filters"):
        resolve_config("tiny", filters=3)


def test_docstring_example_runs():
    failures, tried = doctest.testmod(tse_module, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0


def test_exports_to_onnx_and_streams_in_onnx_runtime(tiny, tmp_path):
    """Designed for export: the traced graphs take other lengths and carry the state hop to hop."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is a workstation dependency")
    import numpy as np

    class Step(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, audio, emb, *states):
            return self.model.step(audio, emb, *states)

    names = [name for name, _ in tiny.state_specs()]
    emb = torch.randn(1, tiny.config.emb_dim)
    chunk = tiny.config.chunk_samples
    offline, step = str(tmp_path / "offline.onnx"), str(tmp_path / "step.onnx")
    torch.onnx.export(tiny, (torch.randn(1, 1600), emb), offline, dynamo=False, opset_version=17,
                      input_names=["audio", "spk_emb"], output_names=["audio_out"],
                      dynamic_axes={"audio": {1: "T"}, "audio_out": {1: "T"}})
    torch.onnx.export(Step(tiny), (torch.randn(1, chunk), emb) + tiny.initial_state(), step, dynamo=False,
                      opset_version=17, input_names=["audio", "spk_emb"] + ["state_in." + n for n in names],
                      output_names=["audio_out"] + ["state_out." + n for n in names])
    audio = torch.randn(1, chunk * 50)
    with torch.no_grad():
        expected = tiny(audio, emb).numpy()
    got = ort.InferenceSession(offline).run(None, {"audio": audio.numpy(), "spk_emb": emb.numpy()})[0]
    assert np.abs(got - expected).max() < 1e-4
    session = ort.InferenceSession(step)
    states, outs = [s.numpy() for s in tiny.initial_state()], []
    for piece in audio.split(chunk, dim=1):
        feed = dict({"audio": piece.numpy(), "spk_emb": emb.numpy()}, **{"state_in." + n: s for n, s in zip(names, states)})
        out, *states = session.run(None, feed)
        outs.append(out)
    assert np.abs(np.concatenate(outs, axis=1) - expected).max() < 1e-4
