"""DESIGN.md §1: streaming audio through the ONNX Runtime backend imports no workstation library."""
import subprocess
import sys

from tests.test_guards import FORBIDDEN

STREAM_WITH_IMPORT_HOOK = r"""
import sys
FORBIDDEN = set(sys.argv[2].split(","))

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ImportError("device-side code imported forbidden module " + name)
        return None

sys.meta_path.insert(0, Refuse())
import numpy as np
from pathlib import Path
from emotrt.runtime.backends import load_engine
from emotrt.runtime.offline import evaluate_offline
from emotrt.runtime.pipeline import Pipeline
from emotrt.runtime.tables import VectorTable
from emotrt.runtime.sinks import JsonlSink
import emotrt.runtime.audio, emotrt.runtime.runner, emotrt.runtime.capture, emotrt.runtime.loading

root = Path(sys.argv[1])
pipeline = Pipeline(load_engine(root / "tse_step.onnx"), load_engine(root / "ser.onnx"),
                    VectorTable(root / "env", kind="environment"), VectorTable(root / "speakers", kind="speaker"))
stream = pipeline.create_stream("alice", "busy_cafe")
audio = (0.2 * np.sin(np.arange(48000) / 7.0)).astype(np.float32)
stream.accept_waveform(48000, audio)
results = list(stream.results())
evaluate_offline(pipeline, 48000, audio, "alice", "busy_cafe")
print(len(results), sum(r.speech for r in results))
"""


def test_streaming_through_onnxruntime_needs_no_workstation_library(export_dir):
    proc = subprocess.run([sys.executable, "-c", STREAM_WITH_IMPORT_HOOK, str(export_dir), ",".join(FORBIDDEN)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    total, speech = map(int, proc.stdout.split())
    assert total > 0 and speech > 0
