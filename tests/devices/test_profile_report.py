"""End to end on the default bundle (checkpoints/tse_edge + ser_fbank, ONNX Runtime): JSON that validates,
a history row, and report.html rendered from profile.json alone in headless Chromium with no console error."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def default_bundle(repo_root, tmp_path_factory):
    """The default checkpoints exported (4-hop streaming check) and bundled with one speaker and environment."""
    from emotrt.devices.bundle_writer import collect_models, write_bundle
    from emotrt.export.exporter import ExportConfig, export_checkpoints
    from emotrt.runtime.backends import load_engine
    from emotrt.runtime.tables import VectorTable

    root = tmp_path_factory.mktemp("default-bundle")
    envs = root / "environments.json"
    envs.write_text(json.dumps({"busy_cafe": {"descriptions": ["a busy cafe with people talking"], "split": "seen"}}))
    models = root / "models"
    export_checkpoints([repo_root / "checkpoints" / "tse_edge", repo_root / "checkpoints" / "ser_fbank"], models,
                       ExportConfig(stream_hops=4, environments=str(envs)))
    with load_engine(models / "tse_step.onnx") as tse:
        spk_dim = tse.contract.spk_dim
    vector = np.random.default_rng(0).normal(size=spk_dim)
    VectorTable(root / "speakers", kind="speaker", dim=spk_dim).add("alice", vector / np.linalg.norm(vector),
                                                                     speech_level_db=-25.0)  # as `emotrt enroll` stores
    return write_bundle(root / "bundle", collect_models(models), models / "env", models / "testvectors",
                        speakers_dir=root / "speakers")


def _chromium(url: str, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                           "--v=0", *flags, url], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_default_bundle_profile_validates_lands_in_history_and_renders_in_chromium(default_bundle, tmp_path):
    from emotrt.devices.history import History
    from emotrt.devices.profile_document import read_profile, validate_profile

    out, db = tmp_path / "profile", tmp_path / "profiles.db"
    proc = subprocess.run([sys.executable, "-m", "emotrt", "profile", str(default_bundle), "-o", str(out),
                           "--duration", "3", "--warmup", "0.5", "--backend", "onnxruntime", "--history", str(db),
                           "--top", "5"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "end_to_end" in proc.stdout and "history rows #1" in proc.stdout
    doc = read_profile(out)
    validate_profile(doc)
    assert doc["runs"][0]["stages"]["ser"]["count"] >= 2 and doc["layers"]["fp32"]["ser"]["top"]
    with History(db) as history:
        rows = history.rows()
    assert len(rows) == 1 and rows[0]["bundle_id"] == doc["bundle"]["id"] and rows[0]["precision"] == "fp32"

    # the report from profile.json alone (as for a profile fetched from a device), in a folder of its own
    remote = tmp_path / "fetched"
    remote.mkdir()
    shutil.copy(str(out / "profile.json"), str(remote / "profile.json"))
    rendered = subprocess.run([sys.executable, "-m", "emotrt", "profile", "report", str(remote)],
                              capture_output=True, text=True, timeout=300)
    assert rendered.returncode == 0, rendered.stderr
    page = (remote / "report.html").read_text()
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?(https?:)?//""", page), "the report fetches something"
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/setup-system.sh installs it): report.html not opened")
    dom = _chromium((remote / "report.html").as_uri(), "--virtual-time-budget=10000", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    from emotrt.devices.report import FIGURES

    match = re.search(r'data-plots-rendered="(\d+)"', dom.stdout)
    assert match and int(match.group(1)) == FIGURES, "plots did not render: " + dom.stdout[:300]
    assert dom.stdout.count("main-svg") >= FIGURES
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert not console, "browser console: " + "\n".join(console)
    shot = tmp_path / "report.png"
    _chromium((remote / "report.html").as_uri(), "--window-size=1280,2400", "--virtual-time-budget=10000",
              "--screenshot=" + str(shot))
    assert shot.is_file() and shot.stat().st_size > 20000 and os.path.getsize(str(shot)) > 0
