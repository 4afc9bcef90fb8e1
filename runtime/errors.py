"""The one error hierarchy of emotrt (DESIGN.md §6).

An :class:`EmotrtError` is a user error: its message says what was expected, what
was found and, in ``hint``, the command that fixes it. The CLI prints it on one
line without a traceback and exits non-zero. Anything else is a bug and keeps its
traceback. Every stage raises these (or subclasses defined next to the code that
raises them); they live here because ``emotrt.runtime`` imports nothing else.
"""
from __future__ import annotations

from typing import Optional


class EmotrtError(Exception):
    """A user error with an actionable message."""

    exit_code = 2

    def __init__(self, message: str, hint: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return "{} (fix: {})".format(self.message, self.hint)
        return self.message


class ConfigError(EmotrtError):
    """A configuration, recipe or checkpoint config is invalid."""


class OutputError(ConfigError, OSError):
    """An output cannot be written there (missing, read-only, a file in the way); also an ``OSError``, so
    callers that treat an unwritable cache as a cost rather than a failure still catch it."""


class DependencyError(EmotrtError):
    """A library or system tool the command needs is missing."""


class AudioError(EmotrtError):
    """Audio input is unusable: wrong rate, corrupt file, missing device."""


class CorpusError(EmotrtError):
    """A corpus or manifest is missing, in the wrong layout, or invalid."""


class ModelContractError(EmotrtError):
    """An ONNX graph lacks or violates the emotrt contract in its metadata."""


class TensorRTLintError(ModelContractError):
    """A graph uses something the target TensorRT's ONNX parser (or emotrt's policy) refuses."""


class BundleError(EmotrtError):
    """A bundle is incomplete, tampered with, or from an unsupported schema."""


class FingerprintMismatchError(BundleError):
    """An engine was built for another device or software stack."""


class BackendError(EmotrtError):
    """An inference backend cannot load or run a model."""
