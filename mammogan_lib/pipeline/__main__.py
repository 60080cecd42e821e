"""``python -m mammogan_lib.pipeline``: run the stages' notebooks (see :mod:`mammogan_lib.pipeline`)."""

import sys

from mammogan_lib.pipeline import main

sys.exit(main())
