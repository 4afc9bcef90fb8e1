"""The export directory is what the next stages take: a bundle built from it passes the self-test."""
from emotrt.devices.bundle_writer import collect_models, write_bundle
from emotrt.devices.selftest import run_selftest
from emotrt.runtime.bundle_reader import Bundle
from emotrt.runtime.tables import VectorTable


def test_bundle_from_the_export_passes_the_selftest(toy_export, tmp_path):
    out, _ = toy_export
    assert VectorTable(out / "env", kind="environment").names() == ["none"]
    models = collect_models(out)
    assert sorted(models) == ["enroll", "ser", "tse_offline", "tse_step", "vad"]
    path = write_bundle(tmp_path / "bundle", models, out / "env", out / "testvectors", targets=["orin-nano-8gb"])
    with Bundle.open(path) as bundle:
        report = run_selftest(bundle, backends=["onnxruntime"])
    assert [(r.model, r.status) for r in report.rows] == [(m, "pass") for m in sorted(models)]
