"""mammogan_lib.provenance: JSON written for other tools stays strict JSON."""

import json

import numpy as np

from mammogan_lib import provenance


def test_write_json_turns_nan_and_infinity_into_null(tmp_path):
    path = tmp_path / "out.json"
    provenance.write_json(
        path, {"fid": float("nan"), "rows": [np.float64("inf"), 1.5, np.int64(3)], "ok": "x"}
    )
    assert json.loads(path.read_text()) == {"fid": None, "rows": [None, 1.5, 3], "ok": "x"}
    assert "NaN" not in path.read_text()
