import json

import pytest

from emotrt.calibration.plan import file_sha256, precision_plan, read_plan, recipe_sha256
from emotrt.runtime.errors import ConfigError


def test_recipe_hash_changes_with_any_decision(tmp_path):
    source = tmp_path / "m.onnx"
    source.write_bytes(b"graph")
    base = dict(recipe={"method": "minmax"}, int8={"nodes": ["/a/Conv"]}, fp16={"nodes": []}, fp32={"fp32_nodes": []},
                caches={"10.3.0": "m.trt-100300.calib.cache"})
    plan = precision_plan("m", source, **base)
    assert plan["onnx_sha256"] == file_sha256(source) and plan["source_onnx"] == "m.onnx"
    moved = dict(base, int8={"nodes": []}, fp16={"nodes": ["/a/Conv"]})
    assert precision_plan("m", source, **moved)["recipe_sha256"] != plan["recipe_sha256"]
    assert recipe_sha256({"a": 1, "b": 2}) == recipe_sha256({"b": 2, "a": 1})


def test_plan_from_a_newer_emotrt_is_refused(calibrated, tmp_path):
    out, _ = calibrated
    assert read_plan(out / "ser.precision.json")["model"] == "ser"
    (tmp_path / "p.json").write_text(json.dumps({"schema": 2}))
    with pytest.raises(ConfigError, match="schema 2"):
        read_plan(tmp_path / "p.json")
