"""``python -m homecare`` is the ``homecare`` command (used by tests to spawn workers)."""

import sys

from homecare.cli import main

sys.exit(main())
