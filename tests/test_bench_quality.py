"""mammogan_lib.bench.quality (make bench-quality): configurations, the table over seeds, the figure, and
(slow tier) the whole bench on the tiny phantom."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from mammogan_lib.bench import quality
from mammogan_lib.core import files
from tests.conftest import PROJECT_ROOT


def plan(tmp_path, **options) -> quality.Plan:
    """Two configurations (exp3, exp4), two seeds, two points of 1 minute."""
    configurations = tuple(
        quality.Configuration.parse(f"{name}={PROJECT_ROOT / 'params' / file}")
        for name, file in (("a", "exp3_baseline.yaml"), ("b", "exp4_diffaug.yaml"))
    )
    values = {"seeds": (0, 1), "minutes": 2.0, "points": 2, "data": "", "overrides": (), "out": tmp_path}
    return quality.Plan(configurations, **{**values, **options})


def test_a_configuration_is_files_and_overrides_joined_by_plus(tmp_path):
    base = PROJECT_ROOT / "params" / "exp3_baseline.yaml"
    parsed = quality.Configuration.parse(f"exp3_r1={base}+r1_gamma=1.0+augment_policy=translation,cutout")
    assert parsed == quality.Configuration(
        "exp3_r1", (base,), ("r1_gamma=1.0", "augment_policy=translation,cutout")
    )
    for bad, message in (
        ("no_equals", "expected NAME=ITEM"),
        (f"bad name!={base}", "expected NAME=ITEM"),
        (f"x={tmp_path / 'missing.yaml'}", "no such file"),
    ):
        with pytest.raises(quality.BenchError, match=message):
            quality.Configuration.parse(bad)


def test_every_point_has_its_own_minutes_and_a_run_folder_named_by_the_configuration(tmp_path):
    bench = plan(tmp_path)
    assert bench.point_minutes == [1.0, 2.0]
    first = quality.merged_params(bench, bench.configurations[0], 0, 1.0).values
    later = quality.merged_params(bench, bench.configurations[0], 0, 2.0).values
    other_seed = quality.merged_params(bench, bench.configurations[0], 1, 2.0).values
    other = quality.merged_params(bench, bench.configurations[1], 0, 2.0).values
    # a later point resumes the same run; another seed or configuration is another run
    assert first["exp_id"] == later["exp_id"] and first["exp_id"].startswith("a_s0_")
    assert other_seed["exp_id"].startswith("a_s1_") and other["exp_id"].startswith("b_s0_")
    assert (first["train_minutes"], later["train_minutes"], later["seed"]) == (1.0, 2.0, 0)
    assert later["feature_networks"] == ["effnet_lite0"] and later["frd"] and later["curve_count"] == 0
    assert later["runs_dir"] == str(tmp_path / "runs") and later["augment_policy"] == ""
    assert other["augment_policy"]  # exp4's DiffAugment
    # evaluation settings are not the configuration: the same run, measured anew
    evaluated = dataclasses.replace(bench, overrides=("bootstrap_repeats=7",))
    again = quality.merged_params(evaluated, evaluated.configurations[0], 0, 2.0)
    assert again.values["exp_id"] == later["exp_id"]
    assert quality.evaluation_digest(again) != quality.evaluation_digest(
        quality.merged_params(bench, bench.configurations[0], 0, 2.0)
    )
    changed = quality.Plan(
        (quality.Configuration("a", bench.configurations[0].files, ("lr_d=0.001",)),),
        (0,),
        2.0,
        2,
        "",
        (),
        tmp_path,
    )
    assert (
        quality.merged_params(changed, changed.configurations[0], 0, 1.0).values["exp_id"] != first["exp_id"]
    )


def fake_rows(bench, values):
    """Result rows as run_bench appends them: ``values[name][seed]`` = (FD, FRD) at each point."""
    rows = []
    for name, by_seed in values.items():
        for seed, (fd, frd) in by_seed.items():
            for index, minutes in enumerate(bench.point_minutes):
                scale = 2 - index  # the first point is twice as far from the floor
                rows.append(
                    {
                        "exp_id": f"{name}_s{seed}",
                        "configuration": name,
                        "seed": seed,
                        "train_minutes": minutes,
                        "train_seconds": minutes * 60,
                        "step": 100 * (index + 1),
                        "epoch": 10,
                        "fd_effnet_lite0_equal_n": 25 + scale * (fd - 25),
                        "fd_effnet_lite0_equal_n_low": 25 + scale * (fd - 25) - 1,
                        "fd_effnet_lite0_equal_n_high": 25 + scale * (fd - 25) + 1,
                        "fd_effnet_lite0_real_floor_equal_n": 25.0,
                        "fd_effnet_lite0_floor_ratio": 25 / (25 + scale * (fd - 25)),
                        "frd_equal_n": frd * scale,
                        "frd_equal_n_low": frd * scale - 0.1,
                        "frd_equal_n_high": frd * scale + 0.1,
                        "frd_real_floor_equal_n": 1.0,
                        "frd_gap_to_floor": frd * scale - 1.0,
                        "n_equal": 300,
                        "n_heldout": 77,
                        "precision_heldout": 0.5,
                        "recall_heldout": 0.4,
                        "coverage_heldout": 0.3,
                    }
                )
    return rows


def test_the_table_takes_the_last_point_with_an_interval_over_seeds_and_says_what_overlaps(tmp_path):
    bench = plan(tmp_path)
    rows = fake_rows(bench, {"a": {0: (100.0, 3.0), 1: (102.0, 3.2)}, "b": {0: (50.0, 2.0), 1: (51.0, 2.1)}})
    table = quality.final_table(rows, bench).set_index("configuration")
    assert table.loc["a", "fd_effnet_lite0_equal_n"] == 101.0 and table.loc["a", "seeds"] == 2
    half = stats.t.ppf(0.975, 1) * np.std([100.0, 102.0], ddof=1) / np.sqrt(2)  # one degree of freedom
    assert table.loc["a", "fd_effnet_lite0_equal_n_high"] == pytest.approx(101 + half)
    assert table.loc["b", "fd_effnet_lite0_equal_n_high"] == pytest.approx(50.5 + half / 2)
    assert table.loc["b", "step"] == 200 and table.loc["b", "fd_overlaps_a"] is False
    assert table.loc["a", "fd_overlaps_a"] is None  # the reference is not compared with itself
    text = quality.markdown_table(quality.final_table(rows, bench), bench)
    assert "| b | 2 | 200 | 50.5 [" in text and "N = 300 against 77 held-out images" in text
    assert text.count("| reference |") == 1 and "| no, " in text
    points = quality.points_table(rows, bench).splitlines()
    assert points[0] == "| configuration | seeds | 1 min | 2 min |"
    early = stats.t.ppf(0.975, 1) * np.std([75.0, 77.0], ddof=1) / np.sqrt(2)  # b's FDs at the first point
    assert points[3].startswith(f"| b | 2 | 76 [{76 - early:.3g}, {76 + early:.3g}] / 4.1 | 50.5 [")
    figure = quality.quality_figure(rows, bench)
    assert [ax.get_title() for ax in figure.axes][0].startswith("FD, EfficientNet-Lite0")
    one_seed = quality.final_table([r for r in rows if r["seed"] == 0], bench).set_index("configuration")
    assert one_seed.loc["b", "fd_effnet_lite0_equal_n_low"] == 49.0  # one seed: 05's own interval
    # which ranks nothing: an interval over draws of one generator is not compared with another's
    assert one_seed.loc["b", "fd_overlaps_a"] is None


def test_finished_points_are_read_back_and_bad_options_are_named(tmp_path, capsys):
    row = {"exp_id": "a_s0_x", "train_minutes": 1.0, "step": 5, "evaluation": "e1"}
    (tmp_path / "results.jsonl").write_text(json.dumps(row) + "\n")
    assert quality.done_points(tmp_path / "results.jsonl") == {("a_s0_x", 1.0, "e1"): row}
    with pytest.raises(
        quality.BenchError, match=r"--minutes 0.0: must be above 0; --points 0: must be at least 1"
    ):
        quality.parse_plan(["--minutes", "0", "--points", "0"])
    with pytest.raises(quality.BenchError, match="--seeds 'a'"):
        quality.parse_plan(["--seeds", "a"])
    assert quality.main(["--set", "no_such_key=1", "--out", str(tmp_path)]) == 2
    assert "unknown parameter 'no_such_key' (set in --set)" in capsys.readouterr().err


@pytest.mark.slow
def test_the_bench_trains_measures_resumes_and_writes_its_table_on_the_tiny_phantom(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny = PROJECT_ROOT / "params" / "tiny.yaml"
    argv = [
        "--config",
        f"tiny={tiny}",
        "--config",
        f"tiny_r1={tiny}+r1_gamma=1.0",
        "--minutes",
        "0.05",
        "--points",
        "2",
        "--set",
        f"data_dir={tmp_path / 'data'}",
        "--set",
        "bootstrap_repeats=3",
        "--set",
        "generate_count=16",
        "--set",
        "allow_random_weights=false",
        "--set",
        "pathology=MALIGNANT",
        "--out",
        str(tmp_path / "bench"),
    ]
    assert quality.main(argv) == 0
    rows = [json.loads(line) for line in (tmp_path / "bench" / "results.jsonl").read_text().splitlines()]
    assert [(r["configuration"], r["train_minutes"]) for r in rows] == [
        ("tiny", 0.025),
        ("tiny", 0.05),
        ("tiny_r1", 0.025),
        ("tiny_r1", 0.05),
    ]
    assert all(
        r["train_seconds"] >= r["train_minutes"] * 60 and r["fd_effnet_lite0_equal_n"] > 0 for r in rows
    )
    assert rows[1]["step"] > rows[0]["step"]  # the second point resumed the first
    for name in ("table.md", "table.csv", "quality_vs_time.png", "grids.png", "final.json"):
        assert (tmp_path / "bench" / name).is_file()
    assert len(files.read_json(tmp_path / "bench" / "final.json")) == 2
    assert quality.main(argv) == 0  # finished points are read back: nothing trains again
    assert len((tmp_path / "bench" / "results.jsonl").read_text().splitlines()) == 4


def test_a_run_that_trained_past_a_point_is_not_measured_as_that_point(tmp_path):
    bench = plan(tmp_path)
    run_dir = tmp_path / "runs" / "a_s0_x"
    files.write_json(run_dir / "train_summary.json", {"train_seconds": 600.0, "step": 9, "epoch": 1})
    files.write_json(run_dir / "metrics.json", {"headline": {}, "sets": [], "epoch": 1})
    with pytest.raises(quality.BenchError, match=r"a_s0_x has trained 10.00 minutes, past this point's 1"):
        quality.point_row(bench, bench.configurations[0], 0, 1.0, run_dir)


def test_reference_sets_are_the_training_images_with_known_faults(monkeypatch):
    from mammogan_lib.bench import references

    rng = np.random.default_rng(0)
    train = rng.uniform(-0.6, 0.6, (24, 64, 64)).astype("float32")
    sets = references.reference_sets(train)
    assert list(sets) == ["training images", "Gaussian noise, sigma 20", "blurred, sigma 2 px", "flat grey"]
    assert all(images.shape == train.shape and images.dtype == train.dtype for images in sets.values())
    noise = sets["Gaussian noise, sigma 20"] - train  # nothing clipped: the images stay inside [-0.6, 0.6]
    assert abs(noise.std() / references.GREY_LEVEL - 20) < 0.5
    assert sets["blurred, sigma 2 px"].std() < train.std() / 3
    assert np.ptp(sets["flat grey"]) == 0 and sets["flat grey"][0, 0, 0] == pytest.approx(train.mean())

    heldout = rng.uniform(-0.6, 0.6, (12, 64, 64)).astype("float32")
    monkeypatch.setattr(
        references.preprocess,
        "load_split_images",
        lambda run, split: (train if split == "train" else heldout, None),
    )
    table = references.reference_table(Path("unused"), repeats=2).set_index("reference set")
    assert table["n_candidates"].tolist() == [24] * 4 and table["n_reference"].tolist() == [12] * 4
    assert table.loc["training images", "fd_equal_n"] < table.loc["flat grey", "fd_equal_n"]
