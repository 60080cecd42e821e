"""Stages 05 and 06: feature networks, image-quality metrics (FD/FID, KID, FRD, precision/recall/coverage,
PSNR/SSIM) and the SVM classifier of real and generated lesions.

Imports :mod:`mammogan_lib.gan`, :mod:`mammogan_lib.data` and :mod:`mammogan_lib.core`.
"""
