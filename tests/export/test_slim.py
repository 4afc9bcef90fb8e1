"""onnxslim with re-validation: fewer nodes, same numbers; a recipe that fails validation is not kept."""
import filecmp

import onnx

from emotrt.export.onnx_export import export_graph
from emotrt.export.parity import compare_graph
from emotrt.export.slim import SLIM_RECIPES, slim_validated
from emotrt.export.specs import TSE_OFFLINE
from tests.export.toy_models import toy_loader


class Verdict:
    def __init__(self, ok):
        self.ok = ok

    def mismatches(self):
        return [] if self.ok else ["rejected by the test"]


def _raw(toy_ckpts, tmp_path):
    model, config = toy_loader(toy_ckpts[0])
    raw = tmp_path / "raw.onnx"
    export_graph(TSE_OFFLINE, model, config, raw, 17)
    return model, config, raw


def test_first_recipe_shrinks_the_graph_and_keeps_parity(toy_ckpts, tmp_path):
    model, config, raw = _raw(toy_ckpts, tmp_path)
    recipe, (before, after), result = slim_validated(raw, tmp_path / "s.onnx", lambda p: compare_graph(TSE_OFFLINE, model, config, p))
    assert recipe == SLIM_RECIPES[0][0] and after < before and result.ok
    assert len(onnx.load(str(tmp_path / "s.onnx")).graph.node) == after


def test_rejected_recipes_fall_through_to_the_unsimplified_graph(toy_ckpts, tmp_path):
    _, _, raw = _raw(toy_ckpts, tmp_path)
    seen = []

    def second_only(path):
        seen.append(path)
        return Verdict(len(seen) == 2)

    recipe, _, _ = slim_validated(raw, tmp_path / "s.onnx", second_only)
    assert recipe == SLIM_RECIPES[1][0] and len(seen) == 2
    recipe, (before, after), _ = slim_validated(raw, tmp_path / "t.onnx", lambda p: Verdict(False))
    assert recipe == "none" and before == after and filecmp.cmp(str(raw), str(tmp_path / "t.onnx"), shallow=False)
