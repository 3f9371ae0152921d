"""The execution input's error, apart from the validator so that raising it needs no jsonschema.

Every zip-packaged handler imports the Lambda errors (which re-export this class); the managed
runtime has no jsonschema, so only the Configure image function may import the validator itself.
"""

from __future__ import annotations

__all__ = ["InvalidInput"]


class InvalidInput(ValueError):
    """The execution input does not match pipeline/config/input.schema.json.

    The class name is the Lambda ``errorType`` the state machine matches, so it is part of the
    interface (``pipeline/statemachine/errors.py``).
    """
