"""Device profiles, TensorRT engine builds, bundles, flashing and profiling (DESIGN.md §2.4, §4).

Runs on the device (Python 3.8+) and on the workstation; TensorRT is imported lazily.
"""
