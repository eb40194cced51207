"""``python -m worker.cli``: the steadyhand command."""

import sys

from worker.cli import main

sys.exit(main())
