"""DESIGN.md §1: streaming audio through the ONNX Runtime backend imports no workstation library."""
import subprocess
import sys

from tests.test_guards import FORBIDDEN, REFUSE_FORBIDDEN

STREAM_WITH_IMPORT_HOOK = REFUSE_FORBIDDEN + r"""
import numpy as np
from pathlib import Path
from emotrt.runtime.backends import load_engine
from emotrt.runtime.offline import evaluate_offline
from emotrt.runtime.pipeline import Pipeline
from emotrt.runtime.tables import VectorTable
from emotrt.runtime.sinks import JsonlSink
import emotrt.runtime.audio, emotrt.runtime.runner, emotrt.runtime.capture, emotrt.runtime.loading

root = Path(sys.argv[2])
pipeline = Pipeline(load_engine(root / "tse_step.onnx"), load_engine(root / "ser.onnx"),
                    VectorTable(root / "env", kind="environment"), VectorTable(root / "speakers", kind="speaker"))
stream = pipeline.create_stream("alice", "busy_cafe")
audio = (0.2 * np.sin(np.arange(48000) / 7.0)).astype(np.float32)
stream.accept_waveform(48000, audio)
results = list(stream.results())
evaluate_offline(pipeline, 48000, audio, "alice", "busy_cafe")
print(len(results), sum(r.speech for r in results))
"""


def test_streaming_through_onnxruntime_needs_no_workstation_library(runtime_models):
    proc = subprocess.run([sys.executable, "-c", STREAM_WITH_IMPORT_HOOK, ",".join(FORBIDDEN), str(runtime_models)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    total, speech = map(int, proc.stdout.split())
    assert total > 0 and speech > 0
