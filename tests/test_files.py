"""mammogan_lib.core.files: JSON written for other tools stays strict JSON; writes are atomic."""

import json

import numpy as np
import pytest

from mammogan_lib.core import files


def test_write_json_turns_nan_and_infinity_into_null(tmp_path):
    path = tmp_path / "out.json"
    files.write_json(path, {"fid": float("nan"), "rows": [np.float64("inf"), 1.5, np.int64(3)], "ok": "x"})
    assert json.loads(path.read_text()) == {"fid": None, "rows": [None, 1.5, 3], "ok": "x"}
    assert "NaN" not in path.read_text()
    assert files.read_json(path)["ok"] == "x" and files.read_json_if_present(tmp_path / "none.json") is None


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = files.write_json(tmp_path / "sub" / "record.json", {"version": 1})

    def half_then_crash(tmp):
        tmp.write_text('{"version": 2, "trunc')
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        files.write_atomically(path, half_then_crash)
    assert files.read_json(path) == {"version": 1}
    assert sorted(p.name for p in path.parent.iterdir()) == ["record.json"]


def test_arrays_keep_their_name_and_values(tmp_path):
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    path = files.save_array(tmp_path / "images.npy", array)
    assert path.name == "images.npy" and np.array_equal(np.load(path), array)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images.npy"]
