"""Stages 01 and 02: reading the datasets' layouts, the embedded phantom, filtering and scoring breasts,
preprocessing to the array cache, lesion patches and the finding-type classes of conditional runs.

Imports :mod:`mammogan_lib.core` only.
"""
