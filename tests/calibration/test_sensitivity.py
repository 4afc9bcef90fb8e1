import pytest

from emotrt.calibration.sensitivity import Budget, BudgetError, choose_mixed, node_blocks, rank_blocks
from emotrt.runtime.errors import ConfigError

BLOCKS = {"encoder": ["/encoder/Conv"], "blocks.0": ["/blocks.0/pw/Conv"], "blocks.1": ["/blocks.1/pw/Conv"],
          "decoder": ["/decoder/Conv"]}
DROPS = {"/encoder/Conv": 0.05, "/blocks.0/pw/Conv": 0.5, "/blocks.1/pw/Conv": 0.02, "/decoder/Conv": 0.2}
REFERENCE = {"sisdri": 10.0}


def evaluate(nodes):
    """SI-SDRi drops add up per INT8 node (blocks.0 alone breaks a 0.3 dB budget)."""
    return {"sisdri": 10.0 - sum(DROPS[n] for n in nodes)}


def test_blocks_follow_module_paths():
    blocks = node_blocks(["/encoder/Conv", "/separator/blocks.3/pw/Conv", "/separator/blocks.3/dw/Conv",
                          "/separator/blocks.10/pw/Conv", "/MatMul_1", "/head/Gemm"])
    assert list(blocks) == ["encoder", "separator/blocks.3", "separator/blocks.10", "/MatMul_1", "head"]
    assert blocks["separator/blocks.3"] == ["/separator/blocks.3/pw/Conv", "/separator/blocks.3/dw/Conv"]


def test_leave_one_out_ranks_the_worst_block_first():
    ranking = rank_blocks(evaluate, BLOCKS, REFERENCE, Budget())
    assert [r.block for r in ranking][:2] == ["blocks.0", "decoder"]
    assert ranking[0].cost_alone == pytest.approx(0.5 / 0.3)


def test_mixed_plan_keeps_the_fewest_blocks_out_of_int8():
    ranking = rank_blocks(evaluate, BLOCKS, REFERENCE, Budget())
    plan = choose_mixed(evaluate, BLOCKS, REFERENCE, Budget(), ranking)
    assert plan.kept_blocks == ("blocks.0",) and plan.evaluations == 2
    assert plan.int8_blocks == ("encoder", "blocks.1", "decoder")
    assert plan.metrics["sisdri"] == pytest.approx(10.0 - 0.27)
    assert len(plan.ranking) == 4


def test_without_ranking_the_search_still_prunes_to_the_fewest():
    assert choose_mixed(evaluate, BLOCKS, REFERENCE, Budget()).kept_blocks == ("blocks.0",)


def test_a_single_block_that_meets_the_budget_is_found_when_the_order_leaves_another_last():
    """Graph order keeps encoder, blocks.0 and blocks.1 out and leaves the decoder (0.2 dB) last;
    blocks.1 alone (0.02 dB) meets a 0.03 dB budget."""
    plan = choose_mixed(evaluate, BLOCKS, REFERENCE, Budget(sisdri=0.03))
    assert plan.int8_blocks == ("blocks.1",) and plan.metrics["sisdri"] == pytest.approx(10.0 - 0.02)


def test_a_budget_no_plan_meets_is_one_clear_error():
    with pytest.raises(BudgetError, match="no mixed INT8 plan meets the accuracy budget") as info:
        choose_mixed(evaluate, BLOCKS, REFERENCE, Budget(sisdri=0.01))
    assert "--max-sisdr-drop" in info.value.hint


def test_negative_budget_is_refused():
    with pytest.raises(ConfigError, match="ua=-1"):
        Budget(ua=-1)


def test_a_graph_without_quantisable_blocks_stays_out_of_int8():
    plan = choose_mixed(evaluate, {}, REFERENCE, Budget())
    assert plan.int8_nodes == () and plan.metrics == REFERENCE and plan.evaluations == 0


def test_unindexed_modules_under_a_shared_wrapper_are_separate_blocks():
    blocks = node_blocks(["/model/encoder/MatMul", "/model/tcn.0/pw/MatMul", "/model/mask/MatMul", "/model/decoder/MatMul"])
    assert list(blocks) == ["model/encoder", "model/tcn.0", "model/mask", "model/decoder"]
    assert list(node_blocks(["/model/head/Gemm"])) == ["model/head"]


def test_a_metric_of_one_group_has_the_limit_of_its_metric():
    reference = {"ua": 0.80, "ua.talker": 0.60, "agreement": 1.0, "agreement.talker": 1.0, "other": 1.0}
    metrics = {"ua": 0.80, "ua.talker": 0.58, "agreement": 0.995, "agreement.talker": 0.985, "other": 0.0}
    assert Budget().cost(reference, metrics) == pytest.approx(2.0)
    assert Budget().violations(reference, metrics) == ["ua.talker 0.5800 vs FP32 0.6000 (allowed drop 0.01)",
                                                       "agreement.talker 0.9850 vs FP32 1.0000 (allowed drop 0.01)"]
