"""Checking an execution input against ``input.schema.json`` and filling the schema's defaults.

It lives beside the schema, not in the Configure handler, because two sides need the very same
rules: the Configure Lambda on every execution, and the operator's tools, which refuse a bad input
before anything is started (a bad ``--input`` costs a second and leaves nothing half-done).
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema

from pipeline.config.errors import InvalidInput
from pipeline.config.rollout import problems as rollout_problems

__all__ = ["InvalidInput", "fill_defaults", "monitoring_problems", "poll_problems", "validate"]


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not ref:
        return node
    target: Any = root
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}


def fill_defaults(value: dict[str, Any], node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Fills the schema's ``default`` keywords into ``value``; object defaults merge under the value."""
    node = _resolve(node, root)
    out = copy.deepcopy(value)
    for name, sub in node.get("properties", {}).items():
        sub = _resolve(sub, root)
        if "default" in sub:
            default = copy.deepcopy(sub["default"])
            if name not in out:
                out[name] = default
            elif isinstance(out[name], dict) and isinstance(default, dict):
                out[name] = {**default, **out[name]}
        if isinstance(out.get(name), dict) and "properties" in sub:
            out[name] = fill_defaults(out[name], sub, root)
    return out


def monitoring_problems(document: dict[str, Any]) -> list[str]:
    """What the schema cannot say about ``monitoring``: retraining on drift needs windows, and the
    newer data must not be part of the training data already (it would be counted twice)."""
    monitoring = document.get("monitoring") or {}
    found = []
    if monitoring.get("retrain_on_drift") and monitoring.get("window_s") == 0:
        found.append(
            "$.monitoring.retrain_on_drift: true needs the devices' windows, but window_s is 0 "
            "(monitoring off); set window_s > 0 or retrain_on_drift false"
        )
    extra = monitoring.get("retrain_data_uri")
    train = (document.get("dataset") or {}).get("train")
    if extra and train and (extra.startswith(train) or train.startswith(extra)):
        found.append(
            f"$.monitoring.retrain_data_uri: {extra} overlaps dataset.train ({train}); the newer "
            "data must be under another prefix (a retraining trains on both)"
        )
    return found


def poll_problems(document: dict[str, Any]) -> list[str]:
    """A back-off starts below its cap, and only where a function computes the next check's time
    (``pipeline.config.polling``): the training loop's Wait takes whole seconds."""
    from pipeline.config.polling import BACKOFF_LOOPS

    found = []
    for loop, poll in (document.get("poll") or {}).items():
        if not isinstance(poll, dict) or "first_interval_s" not in poll:
            continue
        if loop not in BACKOFF_LOOPS:
            found.append(
                f"$.poll.{loop}.first_interval_s: the {loop} loop waits interval_s each time (only "
                f"{' and '.join(BACKOFF_LOOPS)} back off); remove it or set interval_s"
            )
        elif poll["first_interval_s"] > poll.get("interval_s", poll["first_interval_s"]):
            found.append(
                f"$.poll.{loop}.first_interval_s: {poll['first_interval_s']} is longer than "
                f"interval_s {poll['interval_s']}, the longest wait of the back-off"
            )
    return found


def validate(document: Any, schema: dict[str, Any]) -> None:
    """Raises :class:`InvalidInput` naming every problem with its JSON path."""
    if not isinstance(document, dict):
        raise InvalidInput(f"execution input must be a JSON object, got {type(document).__name__}")
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    found = [f"{e.json_path}: {e.message}" for e in errors]
    if not found:
        # What the schema cannot say (decimal places AWS allows, unique names, disjoint targets).
        fleet = (document.get("deployment") or {}).get("thing_group")
        found = rollout_problems(document.get("rollout"), fleet)
        found += monitoring_problems(document)
        found += poll_problems(document)
    if found:
        problems = "; ".join(found[:10])
        more = f" (and {len(found) - 10} more)" if len(found) > 10 else ""
        raise InvalidInput(
            f"execution input is invalid: {problems}{more}. See pipeline/config/input.schema.json "
            "and pipeline/config/example-input.json."
        )
