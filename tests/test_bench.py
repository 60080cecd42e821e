"""mammogan_lib.bench: the step timer runs and reports what it measured (speed itself is never asserted)."""

from mammogan_lib import bench


def test_step_timer_reports_its_configuration_and_a_positive_time():
    result = bench.time_train_step(resolution=64, batch_size=4, width=0.125, precision="mixed", warmup=1,
                                   repeats=2)  # fmt: skip
    assert result["dtype_policy"] == "mixed_bfloat16" and result["resolution"] == 64
    assert result["ms_per_step"] > 0
    assert abs(result["images_per_s"] - 4 / (result["ms_per_step"] / 1000)) < 0.1 * result["images_per_s"]
