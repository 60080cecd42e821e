"""mammogan_lib.gan.regularisers: the comparison table's words for a run's regularisers."""

from __future__ import annotations

import json

from mammogan_lib.core.run_paths import RunPaths
from mammogan_lib.evaluate import metrics
from mammogan_lib.gan.regularisers import describe_regularisers


def test_regularisers_are_named_with_their_weights_and_absent_ones_are_off():
    assert describe_regularisers({"r1_gamma": 10.0, "d_spectral_norm": True, "lecam_weight": 0.1}) == (
        "R1 gamma 10, spectral norm, LeCam 0.1"
    )
    assert describe_regularisers({"r1_gamma": 0.0, "d_spectral_norm": False, "lecam_weight": 0.0}) == "none"
    assert describe_regularisers({"architecture": "baseline"}) == "none"  # a run from before them


def test_the_comparison_table_says_which_regulariser_each_run_used(tmp_path):
    for run_id, extra in (("exp4_diffaug", {}), ("exp5_r1", {"r1_gamma": 1.0})):
        paths = RunPaths(tmp_path / run_id)
        paths.train_summary.parent.mkdir(parents=True)
        params = {"architecture": "baseline", "augment_policy": "translation", **extra}
        paths.train_summary.write_text(json.dumps({"epoch": 2, "step": 4, "params": params}))
        paths.metrics.write_text(json.dumps({"headline": {"fid": 1.0}}))
    table = metrics.compare_runs(tmp_path, ["exp4_diffaug", "exp5_r1"]).set_index("run")
    assert table["regularisers"].to_dict() == {"exp4_diffaug": "none", "exp5_r1": "R1 gamma 1"}
    assert table.loc["exp4_diffaug", "augment"] == "translation"  # exp4 keeps DiffAugment
