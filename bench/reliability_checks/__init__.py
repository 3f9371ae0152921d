"""The sections of ``bench/reliability.py`` (issue 13), one module each.

- :mod:`.identities`: client ids and subscriptions an IoT policy refuses, tried on the broker;
- :mod:`.load`: an open-loop request rate, every answer matched by id;
- :mod:`.fuzz_payloads` and :mod:`.fuzzing`: seeded valid/invalid payloads, and the run that
  sends them and watches the component process;
- :mod:`.report`: the pass criteria and the printed table.

``bench/reliability.py`` is the entry point; it runs them against one deployed device set up by
``bench/device_roundtrip.py``, loaded here as :data:`roundtrip` (bench/ is not a package).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

_BENCH = Path(__file__).resolve().parent.parent


def _sibling(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", _BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


roundtrip = _sibling("device_roundtrip")
