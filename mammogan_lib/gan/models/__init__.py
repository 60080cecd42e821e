"""GAN models of the three experiments, selected by ``architecture`` (see :mod:`.registry`).

Importing this package imports keras on the TensorFlow backend: it is for the GAN notebooks (03/04) only.
"""

from mammogan_lib.gan.models.registry import (
    ARCHITECTURES,
    build_discriminator,
    build_generator,
    build_models,
)

__all__ = ["ARCHITECTURES", "build_discriminator", "build_generator", "build_models"]
