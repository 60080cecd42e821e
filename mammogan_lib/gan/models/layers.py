"""Custom layers: the generators' upsampling convolution, the StyleGAN-like generator's (thesis 4.2.2)
constant input, noise and AdaIN, the discriminator's dropout (Keras's, made multi-GPU exact) and spectral
normalisation (one form for every Keras backend), and the fade-in of progressive training's new blocks.

All of them are registered with ``keras.saving.register_keras_serializable(package="mammogan")`` and
implement ``get_config``, so a generator saved with ``model.save('g.keras')`` reloads with
``keras.models.load_model`` without ``custom_objects``. They implement ``compute_output_shape`` so the
functional model is built without tracing ``call``.

Mixed precision: variables are float32 (the policy's variable dtype); arithmetic that is sensitive to
precision (instance-normalisation statistics, style) is done in float32 and cast back to the layer's
compute dtype.
"""

from __future__ import annotations

from typing import Any

from mammogan_lib.core.frameworks import import_keras
from mammogan_lib.gan import distribute

keras = import_keras()
ops = keras.ops

INSTANCE_NORM_EPSILON = 1e-5
SEED_STATE_KEY = "seed_state"
"""Key under which :class:`NoiseInjection` saves its noise generator's state in a ``.keras`` file."""


@keras.saving.register_keras_serializable(package="mammogan")
class LearnedConstant(keras.layers.Layer):
    """A trainable ``(size, size, channels)`` tensor repeated over the batch of its input.

    The input (any tensor whose first axis is the batch, e.g. the style vector ``w``) only provides the
    batch size; the values come from the learned weight (StyleGAN's constant input).
    """

    def __init__(self, size: int, channels: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = size
        self.channels = channels

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.constant = self.add_weight(
            name="constant", shape=(self.size, self.size, self.channels), initializer="ones"
        )

    def call(self, inputs: Any) -> Any:
        batch = ops.shape(inputs)[0]
        constant = ops.cast(self.constant, self.compute_dtype)
        return ops.broadcast_to(constant[None], (batch, self.size, self.size, self.channels))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], self.size, self.size, self.channels)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": self.size, "channels": self.channels}


@keras.saving.register_keras_serializable(package="mammogan")
class NoiseInjection(keras.layers.Layer):
    """Add per-pixel Gaussian noise, scaled by a learned per-channel factor (StyleGAN).

    ``x + scale[c] * n`` with ``n ~ N(0, 1)`` of shape ``(N, H, W, 1)`` (one noise image shared by the
    channels). ``scale`` starts at zero, as in StyleGAN, so noise only acts once it is learned. The noise
    is drawn with ``keras.random.normal`` from a ``keras.random.SeedGenerator`` stored on the layer: with
    ``seed=None`` the generator's seed comes from ``keras.utils.set_random_seed``, so runs repeat. Keras
    does not save a ``SeedGenerator``'s state with the model, so this layer saves it itself (under
    :data:`SEED_STATE_KEY`): a reloaded generator draws the same noise as the saved one would have.
    """

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name=f"{self.name}_seed")

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.scale = self.add_weight(name="scale", shape=(input_shape[-1],), initializer="zeros")

    def call(self, inputs: Any) -> Any:
        shape = ops.shape(inputs)
        noise = distribute.global_batch_draw(
            lambda full: keras.random.normal(full, seed=self.seed_generator, dtype=self.compute_dtype),
            (shape[0], shape[1], shape[2], 1),
        )
        return inputs + ops.cast(self.scale, self.compute_dtype) * noise

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed}

    def save_own_variables(self, store: Any) -> None:
        super().save_own_variables(store)
        store[SEED_STATE_KEY] = ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store: Any) -> None:
        if SEED_STATE_KEY in store:
            self.seed_generator.state.assign(store[SEED_STATE_KEY])
            store = {key: store[key] for key in store.keys() if key != SEED_STATE_KEY}
        super().load_own_variables(store)


@keras.saving.register_keras_serializable(package="mammogan")
class GlobalBatchDropout(keras.layers.Dropout):
    """Keras's ``Dropout``, whose mask on a multi-GPU step is the one a single device draws for the whole
    batch (:func:`mammogan_lib.gan.distribute.global_batch_draw`); on one device it is ``Dropout`` itself.

    Same variables and configuration as ``Dropout``, so weight files of either load into the other.
    """

    def call(self, inputs: Any, training: bool = False) -> Any:
        _, replicas = distribute.replica_position()
        if replicas == 1 or not training or self.rate == 0:
            return super().call(inputs, training=training)
        mask = distribute.global_batch_draw(
            lambda full: keras.random.dropout(
                ops.ones(full, dtype=inputs.dtype), self.rate, seed=self.seed_generator
            ),
            ops.shape(inputs),
        )
        return inputs * mask


@keras.saving.register_keras_serializable(package="mammogan")
class AdaIN(keras.layers.Layer):
    """Adaptive instance normalisation: ``(1 + s(w)) * instance_norm(x) + b(w)``.

    Inputs ``[x, w]`` with ``x`` of shape ``(N, H, W, C)`` and ``w`` of shape ``(N, w_dim)``. ``x`` is
    normalised per image and channel over ``H, W``; the style ``[s, b] = w @ kernel + bias`` (one affine
    map, ``w_dim * 2C + 2C`` parameters) gives each channel a scale around 1 and a bias around 0.
    """

    def build(self, input_shape: list[tuple[int | None, ...]]) -> None:
        x_shape, w_shape = input_shape
        self.channels = x_shape[-1]
        self.kernel = self.add_weight(
            name="style_kernel", shape=(w_shape[-1], 2 * self.channels), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="style_bias", shape=(2 * self.channels,), initializer="zeros")

    def call(self, inputs: list[Any]) -> Any:
        x, w = (ops.cast(t, "float32") for t in inputs)
        mean = ops.mean(x, axis=(1, 2), keepdims=True)  # (N, 1, 1, C)
        variance = ops.var(x, axis=(1, 2), keepdims=True)  # (N, 1, 1, C)
        normalised = (x - mean) * ops.rsqrt(variance + INSTANCE_NORM_EPSILON)
        style = ops.matmul(w, ops.cast(self.kernel, "float32")) + ops.cast(self.bias, "float32")
        scale, bias = ops.split(style[:, None, None, :], 2, axis=-1)  # each (N, 1, 1, C)
        return ops.cast((1.0 + scale) * normalised + bias, self.compute_dtype)

    def compute_output_shape(self, input_shape: list[tuple[int | None, ...]]) -> tuple[int | None, ...]:
        return input_shape[0]


@keras.saving.register_keras_serializable(package="mammogan")
class FadeIn(keras.layers.Layer):
    """``(1 - alpha) * old + alpha * new`` of its inputs ``[old, new]`` (same shape).

    ``alpha`` is a non-trainable scalar weight (saved with the model), set from outside with
    ``layer.alpha.assign(value)``: the trainer assigns it from the step number before every step, so it is
    a function of the step and a resume mid-fade continues exactly.
    """

    def build(self, input_shape: list[tuple[int | None, ...]]) -> None:
        self.alpha = self.add_weight(name="alpha", shape=(), initializer="zeros", trainable=False)

    def call(self, inputs: list[Any]) -> Any:
        old, new = inputs
        alpha = ops.cast(self.alpha, new.dtype)
        return (1.0 - alpha) * old + alpha * new

    def compute_output_shape(self, input_shape: list[tuple[int | None, ...]]) -> tuple[int | None, ...]:
        return input_shape[1]


@keras.saving.register_keras_serializable(package="mammogan")
class SpectralNorm(keras.layers.Wrapper):
    """A ``Conv2D`` or ``Dense`` computed with its kernel divided by the kernel's largest singular value
    (Miyato et al. 2018), estimated by power iteration.

    The kernel ``W`` stays the trainable weight, and the layer computes with ``W / sigma(W)``, so the
    gradient flows through ``sigma`` too, as in the paper and in ``torch.nn.utils.spectral_norm``.
    ``W`` is reshaped to ``(fan_in, filters)``. The left singular vector ``u``, shaped ``(1, filters)``, is a
    non-trainable weight. Checkpoints save it, and a call in training mode does ``power_iterations``
    steps from it and assigns the result::

        v = normalise(u W^T),  u = normalise(v W),  sigma = v W u^T      (u and v held constant)

    In inference the stored ``u`` is used without moving it (``v`` from ``u``). Only a weight that is not
    trained is assigned, never the kernel: Keras's ``SpectralNormalization`` writes ``W / sigma`` back into
    the trainable kernel during the forward pass, which a stateless JAX call drops and torch's autograd
    refuses, so this layer is what runs on every backend. ``sigma`` is computed in float32 under a mixed
    policy (``autocast=False``: the variables are read as stored), and the normalised kernel is then cast
    to the compute dtype.
    """

    EPSILON = 1e-12

    def __init__(self, layer: keras.layers.Layer, power_iterations: int = 1, **kwargs: Any) -> None:
        kwargs.setdefault("autocast", False)
        super().__init__(layer, **kwargs)
        if type(layer) not in (keras.layers.Conv2D, keras.layers.Dense):
            raise TypeError(f"SpectralNorm wraps a Conv2D or a Dense layer, not {type(layer).__name__}")
        if power_iterations < 1:
            raise ValueError(f"power_iterations must be at least 1, not {power_iterations}")
        self.power_iterations = power_iterations

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        super().build(input_shape)
        self.vector_u = self.add_weight(
            shape=(1, self.layer.kernel.shape[-1]),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            trainable=False,
            name="vector_u",
        )

    def normalised_kernel(self, training: bool = False) -> tuple[Any, Any]:
        """``(W / sigma(W), u)``: the kernel to compute with (float32) and the new left singular vector."""
        kernel = ops.cast(self.layer.kernel, "float32")
        matrix = ops.reshape(kernel, (-1, kernel.shape[-1]))  # (fan_in, filters)
        u = ops.cast(self.vector_u, "float32")
        iterations = self.power_iterations if training else 0
        v = ops.normalize(ops.matmul(u, ops.transpose(matrix)), axis=-1, epsilon=self.EPSILON)
        for iteration in range(1, iterations + 1):
            u = ops.normalize(ops.matmul(v, matrix), axis=-1, epsilon=self.EPSILON)
            if iteration < iterations:
                v = ops.normalize(ops.matmul(u, ops.transpose(matrix)), axis=-1, epsilon=self.EPSILON)
        u, v = ops.stop_gradient(u), ops.stop_gradient(v)
        sigma = ops.sum(ops.matmul(v, matrix) * u)
        return kernel / ops.maximum(sigma, self.EPSILON), u

    def call(self, inputs: Any, training: bool = False) -> Any:
        kernel, u = self.normalised_kernel(training)
        if training:
            self.vector_u.assign(u)
        kernel = ops.cast(kernel, self.compute_dtype)
        inputs = ops.cast(inputs, self.compute_dtype)
        if isinstance(self.layer, keras.layers.Conv2D):
            outputs = self.layer.convolution_op(inputs, kernel)
        else:
            outputs = ops.matmul(inputs, kernel)
        if self.layer.use_bias:
            outputs = ops.add(outputs, ops.cast(self.layer.bias, self.compute_dtype))  # channels last
        return self.layer.activation(outputs) if self.layer.activation is not None else outputs

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return self.layer.compute_output_shape(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "power_iterations": self.power_iterations}


@keras.saving.register_keras_serializable(package="mammogan")
class UpsampleConv2D(keras.layers.Conv2D):
    """``UpSampling2D`` (nearest, x2) followed by ``Conv2D 3x3 'same'``, computed as one stride-2 transposed
    convolution: the same function with the same weights, in 4/9 of the arithmetic.

    Every generator block of the thesis upsamples by repeating each pixel 2x2 and then convolves with a 3x3
    kernel ``K``. Along one axis, output pixel ``2i`` sees input pixels ``i-1, i, i`` (weights ``K0, K1,
    K2``) and output pixel ``2i+1`` sees ``i, i, i+1``: so it is ``K0 x[i-1] + (K1+K2) x[i]`` and
    ``(K0+K1) x[i] + K2 x[i+1]``, which is a stride-2 transposed convolution of the *small* input with the
    4-tap kernel ``[K2, K1+K2, K0+K1, K0]`` (:func:`upsampling_kernel`), zero padding included. The
    arithmetic drops from 9 to 4 multiply-adds per output pixel and input channel, and no upsampled copy of
    the input is stored for the backward pass.

    The layer holds exactly a ``Conv2D``'s variables (``kernel`` ``(3, 3, C_in, filters)`` and ``bias``),
    created in the same order with the same initialisers, so a model built with it starts from the same
    weights as one built with ``UpSampling2D`` + ``Conv2D``, and ``get_weights``/``set_weights`` move
    weights between the two (``tests/test_models.py`` checks both, and the outputs). Keras's weight files
    name their groups after layer classes, so files do not move between them:
    :mod:`mammogan_lib.gan.checkpoint`
    converts the older form's files.
    """

    def __init__(self, filters: int, kernel_size: Any = 3, padding: str = "same", **kwargs: Any) -> None:
        super().__init__(filters, kernel_size, padding=padding, **kwargs)
        if self.kernel_size != (3, 3) or self.padding != "same" or self.strides != (1, 1):
            raise ValueError("UpsampleConv2D is a 3x3 'same' convolution with stride 1 after a x2 upsampling")
        if self.data_format != "channels_last" or self.dilation_rate != (1, 1) or self.groups != 1:
            raise ValueError("UpsampleConv2D supports channels_last, no dilation and no groups only")

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        batch, height, width, _ = input_shape
        double = [None if size is None else 2 * size for size in (height, width)]
        return (batch, *double, self.filters)

    def call(self, inputs: Any) -> Any:
        if phases_are_faster():
            outputs = upsample_conv_by_phases(inputs, self.kernel)
        else:
            kernel = upsampling_kernel(self.kernel)  # (4, 4, filters, C_in)
            outputs = ops.conv_transpose(inputs, kernel, strides=2, padding="same")  # (N, 2H, 2W, filters)
        if self.use_bias:
            outputs = ops.add(outputs, ops.reshape(self.bias, (1, 1, 1, self.filters)))
        return self.activation(outputs) if self.activation is not None else outputs


def phases_are_faster() -> bool:
    """Whether :class:`UpsampleConv2D` computes by :func:`upsample_conv_by_phases`: on the jax backend on a
    CPU, where XLA runs a transposed convolution (a convolution of the zero-dilated input) about 4x slower
    than the four phases' one stride-1 convolution (measured on 32x32x128 -> 64x64x64 at batch 32, forward
    and backward: 3.9 s against 1.0 s). TensorFlow's and torch's transposed convolutions are the faster form
    there (0.27 and 0.35 s against 0.39 and 0.49 s), and on a GPU the usual form is kept."""
    if keras.backend.backend() != "jax":
        return False
    import jax

    return jax.default_backend() == "cpu"


def upsample_conv_by_phases(inputs: Any, kernel: Any) -> Any:
    """x2 nearest upsampling followed by the 3x3 'same' convolution ``kernel``, computed as its four output
    phases: the same function as :class:`UpsampleConv2D`'s transposed convolution, in one stride-1 2x2
    convolution of the (1-padded) small input with ``4 * filters`` outputs, then interleaved.

    Along one axis, output ``2i`` is ``K0 x[i-1] + (K1+K2) x[i]`` and ``2i+1`` is ``(K0+K1) x[i] + K2 x[i+1]``
    (see :class:`UpsampleConv2D`): phase ``a`` is a 2-tap filter (``[K0, K1+K2]`` or ``[K0+K1, K2]``) over
    the padded input, its outputs starting at padded index ``a``. The arithmetic is the transposed
    convolution's, 4 taps per output pixel, over an ``(H+1) x (W+1)`` grid of which each phase keeps
    ``H x W``.
    """
    filters = kernel.shape[-1]
    height, width = inputs.shape[1], inputs.shape[2]
    phase_kernels = [_phase_taps(_phase_taps(kernel, a, 0), b, 1) for a in (0, 1) for b in (0, 1)]
    padded = ops.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]])
    every = ops.conv(padded, ops.concatenate(phase_kernels, axis=-1), padding="valid")  # (N, H+1, W+1, 4F)
    phases = [
        every[:, a : a + height, b : b + width, (2 * a + b) * filters : (2 * a + b + 1) * filters]
        for a in (0, 1)
        for b in (0, 1)
    ]  # (N, H, W, F) each: output pixel (2i + a, 2j + b)
    rows = [ops.stack(phases[2 * a : 2 * a + 2], axis=3) for a in (0, 1)]  # (N, H, W, 2, F)
    interleaved = ops.stack(rows, axis=2)  # (N, H, 2, W, 2, F)
    return ops.reshape(interleaved, (-1, 2 * height, 2 * width, filters))


def _phase_taps(kernel: Any, phase: int, axis: int) -> Any:
    """The 2 taps of output phase ``phase`` along ``axis`` of a 3-tap kernel (see
    :func:`upsample_conv_by_phases`)."""
    k0, k1, k2 = (ops.take(kernel, index, axis=axis) for index in range(3))
    return ops.stack([k0, k1 + k2] if phase == 0 else [k0 + k1, k2], axis=axis)


def upsampling_kernel(kernel: Any) -> Any:
    """The ``(4, 4, C_out, C_in)`` transposed-convolution kernel equal to x2 nearest upsampling followed by
    the ``(3, 3, C_in, C_out)`` 'same' convolution ``kernel`` (see :class:`UpsampleConv2D`)."""

    def four_taps(k: Any, axis: int) -> Any:
        k0, k1, k2 = (ops.take(k, index, axis=axis) for index in range(3))
        return ops.stack([k2, k1 + k2, k0 + k1, k0], axis=axis)

    return ops.transpose(four_taps(four_taps(kernel, 0), 1), (0, 1, 3, 2))


@keras.saving.register_keras_serializable(package="mammogan")
class GatedLinearUnit(keras.layers.Layer):
    """``a * sigmoid(b)`` of the two halves ``[a, b]`` of the channels: ``(..., 2C) -> (..., C)`` (FastGAN's
    activation)."""

    def call(self, inputs: Any) -> Any:
        return ops.glu(inputs, axis=-1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        if input_shape[-1] % 2:
            raise ValueError(f"a gated linear unit needs an even number of channels, got {input_shape[-1]}")
        return (*input_shape[:-1], input_shape[-1] // 2)


def quadrant_of(maps: Any, quadrant: Any) -> Any:
    """Quadrant ``quadrant[i]`` of each ``maps[i]``: ``(N, H, W, C), (N,) int -> (N, H/2, W/2, C)``."""
    height, width = maps.shape[1] // 2, maps.shape[2] // 2
    slices = [
        maps[:, :height, :width],
        maps[:, :height, width:],
        maps[:, height:, :width],
        maps[:, height:, width:],
    ]
    weights = ops.cast(ops.one_hot(ops.cast(quadrant, "int32"), 4), maps.dtype)  # (N, 4)
    return sum(weights[:, index, None, None, None] * piece for index, piece in enumerate(slices))


@keras.saving.register_keras_serializable(package="mammogan")
class Quadrant(keras.layers.Layer):
    """The quadrant ``q`` of each map of ``[maps (N, H, W, C), q (N,) int32 in 0..3]``: ``(N, H/2, W/2, C)``
    (0 top left, 1 top right, 2 bottom left, 3 bottom right).

    A one-hot sum of the four slices rather than a gather, so every backend computes it alike and XLA
    compiles it."""

    def call(self, inputs: list[Any]) -> Any:
        return quadrant_of(*inputs)

    def compute_output_shape(self, input_shape: list[tuple[int | None, ...]]) -> tuple[int | None, ...]:
        batch, height, width, channels = input_shape[0]
        return (batch, height // 2, width // 2, channels)
