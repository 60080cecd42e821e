"""Stages 03 and 04: the GAN's architectures, its train step on each Keras backend, the training loop with
exact resume, checkpoints, precision, randomness, augmentation, several devices, and generating from a
trained generator.

Imports :mod:`mammogan_lib.data` and :mod:`mammogan_lib.core`; Keras (so TensorFlow, JAX or torch) only
inside the functions that build or run models, because of the frameworks' import order
(:mod:`mammogan_lib.core.frameworks`).
"""
