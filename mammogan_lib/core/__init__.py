"""The ground floor: plain data and plumbing that know nothing of mammograms' pixels or of GANs.

The stages' parameters (:mod:`~mammogan_lib.core.config`, plain dataclasses checked for type and range), the
run-folder contract (:mod:`~mammogan_lib.core.run_paths`), the words datasets use for their labels
(:mod:`~mammogan_lib.core.vocabulary`), file writing, the terminal and progress bars, failures' one-line
messages, timing, process pools, plotting helpers and the frameworks' order-safe loading. Nothing here
imports from a floor above.
"""
