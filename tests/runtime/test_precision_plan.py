"""The precision plan dataclass: partial plans round-trip, newer schemas are refused."""
import json

import pytest

from emotrt.runtime.errors import ConfigError
from emotrt.runtime.precision_plan import PrecisionPlan


def test_a_trimmed_plan_round_trips_and_answers_the_builds_questions(calibration_dir):
    raw = json.loads((calibration_dir / "ser.precision.json").read_text())
    plan = PrecisionPlan.read(calibration_dir / "ser.precision.json")
    assert plan.to_json() == raw
    assert plan.fp32_nodes == tuple(raw["fp32"]["fp32_nodes"]) and plan.kept_nodes == tuple(raw["fp16"]["nodes"])
    assert plan.calibration_set == "0" * 64 and plan.int8 is None


def test_missing_sections_mean_no_constraints():
    plan = PrecisionPlan.from_json({"schema": 1, "model": "enroll"})
    assert plan.fp32_nodes == () and plan.kept_nodes == () and plan.calibration_set is None


@pytest.mark.parametrize("data", [{"schema": 2}, {"schema": "1"}, [1]])
def test_other_schemas_are_refused(data):
    with pytest.raises(ConfigError, match="precision plan schema"):
        PrecisionPlan.from_json(data)
