"""The corpus package stays torch-free (docs/contracts.md): calibration and host tools import it."""
import subprocess
import sys

IMPORT_ALL = r"""
import importlib, pkgutil, sys

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchaudio", "transformers", "onnx", "optimum"):
            raise ImportError("corpus code imported " + name)

sys.meta_path.insert(0, Refuse())
import numpy as np
import emotrt.training.corpus as corpus
names = [i.name for i in pkgutil.walk_packages(corpus.__path__, corpus.__name__ + ".")]
for name in names:
    importlib.import_module(name)
mixture, _, _ = corpus.compose(np.ones(100, np.float32), np.random.default_rng(0), noise=np.ones(10, np.float32), snr_db=0.0)
print(len(names))
"""


def test_every_corpus_module_imports_without_torch():
    proc = subprocess.run([sys.executable, "-c", IMPORT_ALL], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) >= 18
