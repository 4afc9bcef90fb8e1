import doctest

import numpy as np
import pytest

import emotrt.runtime.pipeline
from emotrt.runtime.backends import load_engine
from emotrt.runtime.errors import ConfigError, ModelContractError
from emotrt.runtime.pipeline import Pipeline
from emotrt.runtime.tables import VectorTable


def test_the_docstring_example_runs(runtime_bundle):
    finder = doctest.DocTestFinder()
    tests = finder.find(emotrt.runtime.pipeline.Pipeline, "Pipeline", globs={"bundle_dir": runtime_bundle})
    assert tests and tests[0].examples
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_from_bundle_loads_the_optional_offline_graph(runtime_bundle):
    with Pipeline.from_bundle(runtime_bundle, backend="onnxruntime") as pipeline:
        assert pipeline.backend == "onnxruntime" and pipeline.backend_reason == "ONNX Runtime requested"
        assert callable(pipeline._tse_offline), "tse_offline loads on first use, not with the stream engines"
        assert pipeline.tse_offline.contract.model == "tse_offline" and pipeline.vad is None
        assert pipeline.tse_offline is pipeline.tse_offline
        assert pipeline.labels == ("neutral", "happy", "angry", "sad")
        assert pipeline.speakers.names() == ["alice", "bob"]


def test_swapped_graphs_are_a_contract_error(runtime_models):
    env = VectorTable(runtime_models / "env", kind="environment")
    speakers = VectorTable(runtime_models / "speakers", kind="speaker")
    with pytest.raises(ModelContractError, match="ser.onnx should be a tse_step graph, found ser"):
        Pipeline(load_engine(runtime_models / "ser.onnx"), load_engine(runtime_models / "tse_step.onnx"), env, speakers)


def test_tables_of_the_wrong_width_are_refused(runtime_models, tmp_path):
    narrow = VectorTable(tmp_path / "speakers", kind="speaker", dim=3)
    narrow.add("alice", np.ones(3))
    with pytest.raises(ConfigError, match=r"speaker table .* holds 3-d vectors, the model's spk_dim is 4"):
        Pipeline(load_engine(runtime_models / "tse_step.onnx"), load_engine(runtime_models / "ser.onnx"),
                 VectorTable(runtime_models / "env", kind="environment"), narrow)
