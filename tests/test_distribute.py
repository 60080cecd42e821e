"""Data-parallel training (mammogan_lib.gan.distribute): two logical CPU devices stand in for Kaggle's two
T4s.

TensorFlow fixes its logical devices when it first starts, so the comparison runs in a fresh process.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT

COMPARE_SCRIPT = r"""
import json, sys
import torchvision  # noqa: F401  (the torch side first: see mammogan_lib.core.frameworks)
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[1])
from mammogan_lib.gan import checkpoint as ckpt, training_report
from mammogan_lib.gan import training
from mammogan_lib.gan import trainers
from tests.test_training import small_settings, training_images

architecture, augment, run_root = sys.argv[2], sys.argv[3], sys.argv[4]
regularisers = json.loads(sys.argv[5])
two_cpus = ["/cpu:0", "/cpu:1"]
images = training_images()


def settings(name, **overrides):
    return small_settings(
        f"{run_root}/{name}",
        architecture=architecture,
        augment_policy=augment,
        **{"d_dropout": 0.3, **regularisers},
        **overrides,
    )


def weights(trainer):
    return [np.asarray(w) for m in trainer.models.values() for w in m.weights]


one = trainers.build_trainer(images, settings("one"))
two = trainers.build_trainer(images, settings("two"), devices=two_cpus)
steps = [(one.train_step(idx), two.train_step(idx)) for idx in (np.arange(8), np.arange(8, 16))]
# per weight: the largest difference, and how large its gradient was (Adam's first moment, one device)
moments = {
    v.path.split("/")[-1]: float(np.max(np.abs(np.asarray(v))))
    for optimizer in one.optimizers.values()
    for v in optimizer.variables
    if v.path.endswith("_momentum")
}
gaps = {
    w.path: (
        float(np.max(np.abs(np.asarray(w) - np.asarray(v)))),
        moments.get(w.path.replace("/", "_") + "_momentum"),
    )
    for m1, m2 in zip(one.models.values(), two.models.values())
    for w, v in zip(m1.weights, m2.weights, strict=True)
}

# a run trained on two devices, checkpointed, resumed on two devices in a new trainer: exact
whole = settings("whole", epochs=2)
list(training.train(trainers.build_trainer(images, whole, devices=two_cpus)))
split = settings("split", epochs=1)
list(training.train(trainers.build_trainer(images, split, devices=two_cpus)))
resumed = trainers.build_trainer(images, settings("split", epochs=2), devices=two_cpus)
list(training.train(resumed))
whole_trainer = trainers.build_trainer(images, whole, devices=two_cpus)
ckpt.load_checkpoint(ckpt.latest_checkpoint(whole.run_dir), whole_trainer.models, whole_trainer.optimizers)
resume_exact = all(
    np.array_equal(a, b) for a, b in zip(weights(resumed), weights(whole_trainer), strict=True)
)
print(json.dumps({
    "replicas": [one.replicas, two.replicas],
    "losses": [[list(a.values()), list(b.values())] for a, b in steps],
    "gaps": gaps,
    "lr": max(whole.lr_g, whole.lr_d),
    "resume_exact": resume_exact,
    "anchors": [one.lecam_anchors.numpy().tolist(), two.lecam_anchors.numpy().tolist()],
    "summary_replicas": training_report.run_summary(resumed, resumed.settings.run_dir, [])["replicas"],
}))
"""


@pytest.mark.parametrize(
    ("architecture", "augment", "regularisers"),
    [
        pytest.param("baseline", "", {}, marks=pytest.mark.slow),  # a fresh process with two devices
        # R1 per replica share over the replica count, LeCam's anchors from the global batch's logits
        pytest.param(
            "baseline",
            "translation",
            {"r1_gamma": 10.0, "lecam_weight": 0.1, "d_spectral_norm": True},
            marks=pytest.mark.slow,
            id="baseline-regularised",
        ),
        # noise images, AdaIN and every DiffAugment transform draw per image: slow tier
        pytest.param("stylegan", "translation,cutout,brightness,contrast", {}, marks=pytest.mark.slow),
        # exp7: hinge and reconstruction losses over the global batch, quadrants drawn for it, D's BatchNorm
        # synchronised, and the generator's moving average mirrored on both devices
        pytest.param(
            "fastgan",
            "translation",
            {"d_dropout": 0.0, "d_spectral_norm": True, "g_ema_decay": 0.9},
            marks=pytest.mark.slow,
            id="fastgan-average",
        ),
    ],
)
def test_two_devices_train_like_one_and_resume_exactly(tmp_path, architecture, augment, regularisers):
    arguments = [str(PROJECT_ROOT), architecture, augment, str(tmp_path), json.dumps(regularisers)]
    result = subprocess.run(
        [sys.executable, "-c", COMPARE_SCRIPT, *arguments],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=PROJECT_ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["replicas"] == [1, 2] and outcome["summary_replicas"] == 2
    for one_device, two_devices in outcome["losses"]:  # two steps: the second starts from updated weights
        assert two_devices == pytest.approx(one_device, rel=1e-5)
    # Adam's first steps move a weight by about lr whatever the size of its gradient: where the gradient is
    # zero in exact arithmetic (biases in front of BatchNorm, which subtracts them again) rounding alone
    # decides the move, so those are only required to have a negligible gradient
    lr = outcome["lr"]
    agree = {name: gap for name, (gap, moment) in outcome["gaps"].items() if gap < 0.01 * lr}
    rounding_only = {
        name for name, (gap, moment) in outcome["gaps"].items() if moment is not None and moment < 1e-6
    }
    assert len(agree) > 0.8 * len(outcome["gaps"])
    if architecture == "fastgan":
        # Adam divides each element's step by its own gradient's size, so an element whose gradient is a
        # near-cancelling sum moves by a share of lr that its rounding decides: in exp7's first generator
        # layers (3 of 151 variables) two devices and one differ by up to 2 % of lr at the second step. A
        # wrong gradient (a replica's share counted twice or not at all) would move weights by about lr.
        assert max(gap for gap, _ in outcome["gaps"].values()) < 0.05 * lr, outcome["gaps"]
    else:
        assert set(outcome["gaps"]) - set(agree) <= rounding_only, outcome["gaps"]
    assert outcome["resume_exact"]
    assert outcome["anchors"][1] == pytest.approx(outcome["anchors"][0], rel=1e-5, abs=1e-9)
