import json

import pytest

from emotrt.calibration.plan import precision_plan, recipe_sha256
from emotrt.runtime.errors import ConfigError
from emotrt.runtime.manifest import sha256_file
from emotrt.runtime.precision_plan import PrecisionPlan


def test_recipe_hash_changes_with_any_decision(tmp_path):
    source = tmp_path / "m.onnx"
    source.write_bytes(b"graph")
    base = dict(recipe={"method": "minmax"}, int8={"nodes": ["/a/Conv"]}, fp16={"nodes": []}, fp32={"fp32_nodes": []},
                caches={"10.3.0": "m.trt-100300.calib.cache"})
    plan = precision_plan("m", source, **base)
    assert plan.onnx_sha256 == sha256_file(source) and plan.source_onnx == "m.onnx"
    moved = dict(base, int8={"nodes": []}, fp16={"nodes": ["/a/Conv"]})
    assert precision_plan("m", source, **moved).recipe_sha256 != plan.recipe_sha256
    assert recipe_sha256({"a": 1, "b": 2}) == recipe_sha256({"b": 2, "a": 1})


def test_plan_from_a_newer_emotrt_is_refused(calibrated, tmp_path):
    out, _ = calibrated
    assert PrecisionPlan.read(out / "ser.precision.json").model == "ser"
    (tmp_path / "p.json").write_text(json.dumps({"schema": 2}))
    with pytest.raises(ConfigError, match="schema 2"):
        PrecisionPlan.read(tmp_path / "p.json")


def test_written_plans_round_trip_through_the_dataclass(calibrated):
    out, _ = calibrated
    for path in sorted(out.glob("*.precision.json")):
        raw = json.loads(path.read_text())
        plan = PrecisionPlan.read(path)
        assert plan.to_json() == raw, path.name
        assert recipe_sha256(plan.decisions()) == plan.recipe_sha256
        assert plan.fp32_nodes == tuple(raw["fp32"]["fp32_nodes"]) and plan.kept_nodes == tuple(raw["fp16"]["nodes"])
