"""Issue 15 item 5: hypothesis feeds arbitrary bytes and JSON to the readers of files a user or a device
hands emotrt. Each either reads the file or raises one ``EmotrtError`` (one line at the CLI); never
another exception."""
import json
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emotrt.runtime.errors import EmotrtError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=20)


def read_or_refuse(path, data, read):
    """Write ``data`` to ``path`` and ``read`` it: what it returns, or None when refused by one error line naming the file."""
    path.write_bytes(data)
    try:
        return read(path)
    except EmotrtError as exc:
        assert str(path) in exc.message and "\n" not in exc.message
        return None


def _json_or_bytes():
    return st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()),
                     st.fixed_dictionaries({"schema": st.just(1), "kind": st.just("speaker"), "dim": json_values,
                                            "entries": json_values}).map(lambda v: json.dumps(v).encode()))


@FUZZ
@given(index=_json_or_bytes(), vector=st.binary(max_size=300))
def test_vector_table_reads_or_refuses(tmp_path, index, vector):
    from emotrt.runtime.tables import VectorTable

    (tmp_path / "index.json").write_bytes(index)
    try:
        table = VectorTable(tmp_path, kind="speaker")
    except EmotrtError:
        return
    for name in table.names():
        (tmp_path / table.entries[name]["file"]).write_bytes(vector)
        try:
            got = table.get(name)
        except EmotrtError:
            continue
        assert got.shape == (table.dim,) and np.isfinite(got).all()


PLAN_KEYS = ["model", "recipe", "int8", "fp16", "fp32", "recipe_sha256", "source_onnx", "onnx_sha256", "calib_caches",
             "sensitivity"]


@FUZZ
@given(data=st.one_of(_json_or_bytes(), st.dictionaries(st.sampled_from(PLAN_KEYS), json_values).map(
    lambda d: json.dumps(dict(d, schema=1)).encode())))
def test_precision_plan_reads_or_refuses(tmp_path, data):
    from emotrt.runtime.precision_plan import PrecisionPlan

    (tmp_path / "p.json").write_bytes(data)
    try:
        PrecisionPlan.read(tmp_path / "p.json")
    except EmotrtError:
        pass


def _wav_like():
    """Valid-looking RIFF headers with arbitrary chunk sizes, and arbitrary bytes."""
    header = st.builds(lambda size, align, data_size, tail: b"RIFF" + struct.pack("<I", size) + b"WAVEfmt " +
                       struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, align, 16) + b"data" + struct.pack("<I", data_size) + tail,
                       st.integers(0, 2 ** 32 - 1), st.integers(0, 8), st.integers(0, 2 ** 32 - 1), st.binary(max_size=64))
    return st.one_of(header, st.binary(max_size=200), st.binary(max_size=40).map(lambda b: b"RIFF" + b[:4] + b"WAVE" + b[4:]))


@FUZZ
@given(data=_wav_like())
def test_wav_readers_read_or_refuse(tmp_path, data):
    from emotrt.runtime.audio import FileSource, declared_wav_frames

    path = tmp_path / "x.wav"
    path.write_bytes(data)
    declared = declared_wav_frames(path)
    assert declared is None or declared >= 0
    try:
        source = FileSource(path)
    except EmotrtError:
        return
    for block in source.blocks():
        assert block.ndim == 1


@FUZZ
@given(data=st.one_of(st.binary(max_size=600), st.binary(max_size=100).map(lambda b: b"ustar".rjust(262, b"\0") + b)))
def test_bundle_tar_reader_reads_or_refuses(tmp_path_factory, data):
    from emotrt.runtime.bundle_reader import unpack_tar

    work = tmp_path_factory.mktemp("tar")
    (work / "b.tar").write_bytes(data)
    try:
        unpack_tar(work / "b.tar", work / "out")
    except EmotrtError:
        pass


@FUZZ
@given(data=_json_or_bytes())
def test_manifest_reader_reads_or_refuses(tmp_path, data):
    from emotrt.runtime.manifest import Manifest

    (tmp_path / "manifest.json").write_bytes(data)
    try:
        Manifest.read(tmp_path)
    except EmotrtError:
        pass


cache_lines = st.lists(st.one_of(
    st.text(max_size=30),
    st.builds(lambda n, h: "{}: {}".format(n, h), st.text(max_size=8), st.text("0123456789abcdef", max_size=10))),
    max_size=5)


@FUZZ
@given(header=st.one_of(st.just("TRT-100300-EntropyCalibration2"), st.just("TRT-8502-MinMaxCalibration"),
                        st.text(max_size=30)), lines=cache_lines)
def test_calibration_cache_reader_reads_or_refuses(header, lines):
    from emotrt.calibration.cache import CalibrationCache

    try:
        cache = CalibrationCache.from_text("\n".join([header] + lines) + "\n", source="fuzz")
    except EmotrtError:
        return
    assert CalibrationCache.from_text(cache.to_text()).to_text() == cache.to_text()


@FUZZ
@given(props=st.dictionaries(st.sampled_from(["emotrt.model", "emotrt.schema", "emotrt.sample_rate", "emotrt.chunk_samples",
                                              "emotrt.window_samples", "emotrt.spk_dim", "emotrt.d_model", "emotrt.labels",
                                              "emotrt.states", "emotrt.opset"]),
                             st.one_of(st.text(max_size=10), json_values.map(json.dumps))))
def test_onnx_contract_reader_reads_or_refuses(props):
    from emotrt.runtime.contract import ModelContract

    try:
        ModelContract.from_metadata(props, source="fuzz")
    except EmotrtError:
        pass
