"""``python -m edge_runtime.inference.accel build``: see the package docstring."""

import sys

from edge_runtime.inference.accel import main

sys.exit(main())
