"""The inference component's code is imported the way the device runs it: from its ``src`` folder.

On a device the artifact's root is on ``PYTHONPATH`` (recipe ``Setenv``); here ``components/inference/src``
is, so tests import ``inference_component`` exactly as the nucleus does.
"""

from __future__ import annotations

import sys
from pathlib import Path

INFERENCE_SRC = Path(__file__).resolve().parents[3] / "components" / "inference" / "src"
if str(INFERENCE_SRC) not in sys.path:
    sys.path.insert(0, str(INFERENCE_SRC))
