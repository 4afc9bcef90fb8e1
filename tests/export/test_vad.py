"""vad.onnx: silero's fixed-shape graph with an emotrt contract, runnable hop by hop."""
import numpy as np
import onnx

from emotrt.export.vad import CHUNK, CONTEXT, find_silero_vad
from emotrt.runtime.backends import load_engine


def test_vad_graph_carries_a_contract_and_runs(toy_export):
    out, _ = toy_export
    assert find_silero_vad() is not None
    with load_engine(out / "vad.onnx") as engine:
        contract = engine.contract
        assert contract.model == "vad" and contract.chunk_samples == CHUNK and contract.sample_rate == 16000
        io = contract.extra["io"]
        state = np.zeros((2, 1, 128), np.float32)
        feed = {io["audio"]: np.zeros((1, CONTEXT + CHUNK), np.float32), io["state_in.state"]: state}
        result = engine.run(feed)
    prob = result[io["probability"]]
    assert prob.shape == (1, 1) and 0.0 <= float(prob[0, 0]) < 0.5  # silence is not speech
    assert result[io["state_out.state"]].shape == state.shape
    assert onnx.load(str(out / "vad.onnx")).metadata_props
