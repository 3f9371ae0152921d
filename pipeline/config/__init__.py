"""The execution input: its JSON schema and an example for the console's Start execution box.

``input.schema.json`` is the single source of the defaults (``default`` keywords); the Configure
handler and the operator's tools fill them in and validate with :mod:`pipeline.config.validation`
(which needs jsonschema, so it is not imported here: zip-packaged handlers import this package).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

__all__ = ["EXAMPLE_PATH", "SCHEMA_PATH", "example_input", "schema"]

SCHEMA_PATH = Path(__file__).with_name("input.schema.json")
EXAMPLE_PATH = Path(__file__).with_name("example-input.json")


@functools.cache
def _schema_text() -> str:
    return SCHEMA_PATH.read_text()


def schema() -> dict[str, Any]:
    """A fresh copy of the input schema."""
    return json.loads(_schema_text())


def example_input() -> dict[str, Any]:
    return json.loads(EXAMPLE_PATH.read_text())
