"""``python -m mammogan_lib.bench``."""

import sys

from mammogan_lib.bench.cli import main

sys.exit(main())
