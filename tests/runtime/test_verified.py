"""Verifying a bundle once per content (``verify="cached"``) without letting a tampered file through."""
import os

import pytest

from emotrt.runtime import bundle_reader as bundle_module
from emotrt.runtime.bundle_reader import Bundle
from emotrt.runtime.errors import BundleError


@pytest.fixture
def hashed(monkeypatch):
    """The bundle-relative names hashed by each open, in order."""
    seen = []
    real = bundle_module.sha256_file

    def counting(path):
        seen.append(os.path.basename(str(path)))
        return real(path)

    monkeypatch.setattr(bundle_module, "sha256_file", counting)
    return seen


def test_cached_verification_hashes_each_file_once(bundle_copy, hashed):
    Bundle.open(bundle_copy, verify="cached")
    first = len(hashed)
    assert first == len(Bundle.open(bundle_copy, verify=False).manifest.files)
    Bundle.open(bundle_copy, verify="cached")
    assert len(hashed) == first, "an unchanged bundle is not hashed again"
    Bundle.open(bundle_copy)
    assert len(hashed) == 2 * first, "the default (selftest) verification ignores the record"


def test_a_file_changed_after_caching_is_hashed_again_and_caught(bundle_copy, hashed):
    Bundle.open(bundle_copy, verify="cached")
    target = bundle_copy / "models" / "ser.onnx"
    before = os.stat(str(target))
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    os.utime(str(target), ns=(before.st_atime_ns, before.st_mtime_ns))  # same size and mtime: only ctime tells
    del hashed[:]
    with pytest.raises(BundleError, match="models/ser.onnx does not match its sha256"):
        Bundle.open(bundle_copy, verify="cached")
    assert hashed == ["ser.onnx"]


def test_an_unwritable_cache_only_costs_rehashing(bundle_copy, hashed, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    Bundle.open(bundle_copy, verify="cached")
    first = len(hashed)
    Bundle.open(bundle_copy, verify="cached")
    assert len(hashed) == 2 * first


def test_an_unknown_verify_mode_is_refused(bundle_copy):
    with pytest.raises(BundleError, match="verify='lazy' must be one of"):
        Bundle.open(bundle_copy, verify="lazy")
