"""Test vectors: the stored reference outputs are what the shipped graph computes from the stored inputs."""
import json

import numpy as np

from emotrt.export.testvectors import read_testvectors
from emotrt.runtime.backends import load_engine


def test_every_graph_has_vectors_that_the_graph_reproduces(toy_export):
    out, _ = toy_export
    index = json.loads((out / "testvectors" / "index.json").read_text())
    assert sorted(index) == ["enroll", "ser", "tse_offline", "tse_step", "vad"]
    for kind, entry in index.items():
        inputs, outputs = read_testvectors(out / "testvectors", kind)
        assert sorted(inputs) == entry["inputs"] and sorted(outputs) == entry["outputs"]
        with load_engine(out / (kind + ".onnx")) as engine:
            got = engine.run(inputs)
        for name, ref in outputs.items():
            np.testing.assert_allclose(got[name], ref, atol=entry["fp32_atol"])
