"""Streaming equivalence of tse_step against the offline model, and its failure."""
import pytest

from emotrt.export.streaming import StreamingMismatchError, check_streaming
from emotrt.export.exporter import contract_for
from emotrt.export.onnx_export import export_graph, write_contract
from emotrt.export.specs import TSE_STEP
from tests.export.toy_models import TSE_CONFIG, ToyTSE, toy_loader


def test_200_hops_match_the_offline_model(toy_export, toy_ckpts):
    out, report = toy_export
    assert report.streaming.hops >= 200
    assert report.streaming.max_abs_vs_torch <= 1e-4 and report.streaming.max_abs_vs_offline_onnx <= 1e-4
    model, config = toy_loader(toy_ckpts[0])
    result = check_streaming(model, config, out / "tse_step.onnx", hops=201, offline_path=out / "tse_offline.onnx", seed=3)
    assert result.ok and result.hops == 201
    result.require()


class ForgetfulTSE(ToyTSE):
    """Drops the depthwise cache between hops: correct per hop, wrong as a stream."""

    def step(self, audio, spk_emb, input_cache, dw_cache):
        return super().step(audio, spk_emb, input_cache, dw_cache * 0.0)


def test_a_step_that_forgets_its_state_is_caught(toy_ckpts, tmp_path):

    model, config = toy_loader(toy_ckpts[0])
    forgetful = ForgetfulTSE(TSE_CONFIG)
    forgetful.load_state_dict(model.state_dict())
    path = tmp_path / "tse_step.onnx"
    export_graph(TSE_STEP, forgetful.eval(), config, path, 17)
    write_contract(path, contract_for(TSE_STEP, forgetful, config, 17, {}))
    result = check_streaming(model, config, path, hops=20)
    assert not result.ok and result.max_abs_vs_torch > 10 * result.allowed  # far outside, not at the edge
    with pytest.raises(StreamingMismatchError, match="over 20 hops of 16 samples"):
        result.require()
