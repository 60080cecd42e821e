"""Data-parallel training on every visible GPU with ``tf.distribute.MirroredStrategy``, equal to one device.

With more than one GPU (Kaggle's T4 machine has two) each replica takes an equal share of the global batch
(``batch_size`` stays the global batch), Keras's optimiser all-reduces the gradients, and BatchNormalization
is synchronised across replicas, so a step computes the same losses and updates as on one device. The
random draws of a step (latents, dropout masks, noise images, DiffAugment) are made for the whole global
batch and each replica takes its own rows (:func:`global_batch_draw`): the same seed gives the same step
whatever the number of devices, so a run can be resumed on a machine with a different number of GPUs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mammogan_lib.core import frameworks, progress
from mammogan_lib.gan import precision


def training_devices(data_parallel: bool) -> list[str] | None:
    """The GPUs to mirror over: every visible one when there are two or more and ``data_parallel``, else
    ``None`` (one device, no strategy; always on the jax and torch backends, which train on one device, and
    say so when several GPUs are visible)."""
    backend = frameworks.selected_backend()
    if backend != "tensorflow":
        gpus = precision.gpu_devices()
        if data_parallel and len(gpus) > 1:
            progress.warn(
                f"{len(gpus)} GPUs are visible, but the {backend} backend trains on one of them: "
                "data_parallel is TensorFlow's MirroredStrategy (backend: tensorflow trains on all)"
            )
        return None
    import tensorflow as tf

    gpus = [device.name for device in tf.config.list_logical_devices("GPU")]
    return gpus if data_parallel and len(gpus) > 1 else None


def make_strategy(devices: Sequence[str] | None) -> Any:
    """``MirroredStrategy(devices)`` for two or more devices, else TensorFlow's default (no-op) strategy."""
    import tensorflow as tf

    if devices and len(devices) > 1:
        return tf.distribute.MirroredStrategy(list(devices))
    return tf.distribute.get_strategy()


def device_names(strategy: Any) -> list[str]:
    """The devices a strategy trains on: the mirrored ones, or the one device TensorFlow places work on;
    with no strategy (the jax and torch backends), the one device that backend trains on."""
    if strategy is None:
        if frameworks.selected_backend() == "jax":
            import jax

            return [str(jax.devices()[0])]
        import torch

        return ["cuda:0" if torch.cuda.is_available() else "cpu"]
    import tensorflow as tf

    if strategy.num_replicas_in_sync > 1:
        return list(strategy.extended.worker_devices)
    gpus = tf.config.list_logical_devices("GPU")
    return [gpus[0].name if gpus else tf.config.list_logical_devices("CPU")[0].name]


def replica_share(batch_size: int, replicas: int) -> int:
    """The images per replica; ``ValueError`` naming ``batch_size`` when it does not split evenly."""
    if batch_size % replicas:
        raise ValueError(
            f"batch_size {batch_size} does not split evenly over {replicas} devices: use a multiple of "
            f"{replicas}, or data_parallel: false to train on one GPU"
        )
    return batch_size // replicas


def replica_position() -> tuple[int, int]:
    """``(replica id, number of replicas)`` of the calling code: ``(0, 1)`` outside a multi-device step
    (and always on the jax and torch backends, which train on one device)."""
    if frameworks.selected_backend() != "tensorflow":
        return 0, 1
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return 0, 1
    return context.replica_id_in_sync_group, context.num_replicas_in_sync


def global_batch_draw(draw: Callable[[list[Any]], Any], local_shape: Sequence[Any]) -> Any:
    """``draw(shape)`` for this replica's rows of the global batch.

    ``local_shape`` is the shape this replica needs as a sequence (its batch first; entries may be scalar
    tensors). On one device that is simply ``draw(local_shape)``; on ``n`` replicas the draw is made for
    ``n`` times the batch with the same seed on every replica, and replica ``i`` keeps rows
    ``i*b .. (i+1)*b - 1``, the rows a single device would have given those images.
    """
    replica, replicas = replica_position()
    if replicas == 1:
        return draw(list(local_shape))
    batch, *rest = local_shape
    values = draw([batch * replicas, *rest])
    return values[replica * batch : (replica + 1) * batch]
