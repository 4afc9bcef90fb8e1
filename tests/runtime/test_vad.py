from pathlib import Path

import numpy as np
import pytest

from emotrt.runtime.backends import load_engine
from emotrt.runtime.errors import ConfigError
from emotrt.runtime.vad import EnergyGate, SileroVad, VadConfig, make_vad


def test_energy_gate_with_hangover():
    gate = EnergyGate(16000, VadConfig(energy_threshold_db=-40.0, hangover_s=0.02))
    loud, quiet = np.full(160, 0.1, np.float32), np.full(160, 1e-4, np.float32)
    assert not gate.update(quiet)
    assert gate.update(loud) and gate.probability > 0.9
    assert gate.update(quiet) and gate.update(quiet), "hangover keeps speech on for 20 ms"
    assert not gate.update(quiet)


def test_vad_config_names_every_bad_field():
    with pytest.raises(ConfigError, match="energy_threshold_db=5.*silero_threshold=1.5.*hangover_s=-1"):
        VadConfig(energy_threshold_db=5.0, silero_threshold=1.5, hangover_s=-1)


@pytest.fixture(scope="module")
def silero_graph(tmp_path_factory):
    """The silero-vad wheel's fixed-shape graph (what bundles ship) with the contract export gives it."""
    import importlib.util

    import onnx

    from emotrt.runtime.contract import ModelContract, StateSpec

    spec = importlib.util.find_spec("silero_vad")
    if spec is None:
        pytest.skip("silero-vad is not installed (pip install silero-vad)")
    src = Path(list(spec.submodule_search_locations)[0]) / "data" / "silero_vad_openvino_16k.onnx"
    model = onnx.load(str(src))
    contract = ModelContract("vad", 16000, chunk_samples=512, states=(StateSpec("state", (2, 1, 128)),),
                             extra={"context_samples": 64, "io": {"audio": "input", "state_in.state": "state",
                                                                  "probability": "output", "state_out.state": "stateN"}})
    for key, value in contract.to_metadata().items():
        model.metadata_props.add(key=key, value=value)
    path = tmp_path_factory.mktemp("vad") / "vad.onnx"
    onnx.save(model, str(path))
    return path


def test_silero_finds_the_speech_and_not_the_silence(silero_graph, spoken):
    with load_engine(silero_graph) as engine:
        vad = make_vad(16000, VadConfig(hangover_s=0.0), engine)
        assert isinstance(vad, SileroVad)
        states = [vad.update(spoken[i:i + 320]) for i in range(0, spoken.shape[0], 320)]
    per_hop = np.array(states)
    assert not per_hop[:45].any(), "leading silence"
    assert per_hop[60:-60].mean() > 0.5, "the sentence"
    assert not per_hop[-40:].any(), "trailing silence"


def test_silero_needs_8_or_16_khz(silero_graph):
    with load_engine(silero_graph) as engine:
        with pytest.raises(ConfigError, match="8000 or 16000 Hz"):
            SileroVad(engine, 22050, VadConfig())
        assert isinstance(make_vad(22050, None, engine), EnergyGate)
