"""benchmarks/soak.py on the small runtime bundle for a few seconds: the harness runs, changes rates between
streams, meets NaN and clipping, and reports an RSS slope (the hour-long figures are README's)."""
import shutil

import pytest


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (scripts/setup-system.sh)")
def test_a_short_soak_reports_without_errors(runtime_bundle):
    from benchmarks.soak import slope_mb_per_hour, soak

    report = soak(str(runtime_bundle), "alice", "busy_cafe", hours=130 / 3600.0, stream_minutes=0.5,
                  backend="onnxruntime")
    assert report["errors"] == [] and report["totals"]["streams"] == 5
    assert report["totals"]["nonfinite_samples"] > 0 and report["totals"]["clipped_samples"] > 0
    assert report["totals"]["results"] > 0 and len(report["rss_samples"]) == 3
    assert slope_mb_per_hour([[0, 0, 100.0], [3600, 1, 102.0], [7200, 2, 104.0]]) == pytest.approx(2.0)
