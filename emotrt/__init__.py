"""emotrt: noise-robust speech emotion recognition, from PyTorch checkpoints to Jetson TensorRT engines.

The stages install as sub-packages: ``emotrt.training`` -> ``emotrt.export`` ->
``emotrt.calibration`` -> ``emotrt.devices`` -> ``emotrt.runtime``. This package
itself holds only the command-line interface; it imports nothing heavy.
"""

__version__ = "0.1.0"
