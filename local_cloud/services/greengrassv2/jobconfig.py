"""CreateDeployment's ``iotJobConfiguration`` checked against the ranges AWS documents.

A bad value is refused before anything is created, as the service's request validation does: a
``ValidationException`` (reason FIELD_VALIDATION_FAILED) whose message is AWS's "N validation
error(s) detected: Value 'x' at 'field' failed to satisfy constraint: ..." and whose ``fields``
name each member by its path (``iotJobConfiguration.jobExecutionsRolloutConfig.maximumPerMinute``).
Ranges: IoTJobExecutionsRolloutConfig, IoTJobExponentialRolloutRate, IoTJobRateIncreaseCriteria,
IoTJobAbortCriteria and IoTJobTimeoutConfig in the greengrassv2 API reference, with the bounds
the IoT API gives for the same CreateJob members (number of things up to 1,000,000; in-progress
timeout up to 10,080 minutes, 7 days).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from local_cloud.services.greengrassv2.exceptions import ValidationException

ROOT = "iotJobConfiguration"
FAILURE_TYPES = ("FAILED", "REJECTED", "TIMED_OUT", "ALL")


class _Errors:
    """Collects one message per bad member, in AWS's words."""

    def __init__(self) -> None:
        self.fields: list[dict[str, str]] = []

    def add(self, path: str, value: Any, constraint: str) -> None:
        self.fields.append(
            {
                "name": path,
                "message": f"Value '{value}' at '{path}' failed to satisfy constraint: {constraint}",
            }
        )

    def number(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        low: float | None,
        high: float | None,
        *,
        integer: bool,
        decimals: int | None = None,
        required: bool = True,
    ) -> None:
        """One numeric member: present when required, of the right type, within its range."""
        full = f"{path}.{key}"
        if key not in parent or parent[key] is None:
            if required:
                self.add(full, None, "Member must not be null")
            return
        value = parent[key]
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            self.add(full, value, f"Member must be {'an integer' if integer else 'a number'}")
            return
        if low is not None and value < low:
            self.add(full, value, f"Member must have value greater than or equal to {low}")
        elif high is not None and value > high:
            self.add(full, value, f"Member must have value less than or equal to {high}")
        elif decimals is not None and round(value, decimals) != value:
            self.add(full, value, f"Member must have at most {decimals} digit(s) after the decimal point")

    def structure(
        self, parent: Mapping[str, Any], key: str, path: str, required: bool = False
    ) -> dict[str, Any]:
        """A nested structure (an empty dict when absent); a wrong type is an error."""
        value = parent.get(key)
        if value is None:
            if required:
                self.add(f"{path}.{key}", None, "Member must not be null")
            return {}
        if not isinstance(value, Mapping):
            self.add(f"{path}.{key}", value, "Member must be a structure")
            return {}
        return dict(value)


def validate_job_configuration(config: Any) -> None:
    """Raise ``ValidationException`` naming every member out of AWS's documented ranges."""
    if config is None:
        return
    errors = _Errors()
    if not isinstance(config, Mapping):
        errors.add(ROOT, config, "Member must be a structure")
    else:
        _rollout(errors, errors.structure(config, "jobExecutionsRolloutConfig", ROOT))
        _abort(errors, errors.structure(config, "abortConfig", ROOT))
        timeout = errors.structure(config, "timeoutConfig", ROOT)
        errors.number(
            timeout,
            "inProgressTimeoutInMinutes",
            f"{ROOT}.timeoutConfig",
            1,
            10080,
            integer=True,
            required=False,
        )
    if errors.fields:
        count = len(errors.fields)
        detail = "; ".join(f["message"] for f in errors.fields)
        noun = "error" if count == 1 else "errors"
        raise ValidationException(f"{count} validation {noun} detected: {detail}", fields=errors.fields)


def _rollout(errors: _Errors, rollout: dict[str, Any]) -> None:
    path = f"{ROOT}.jobExecutionsRolloutConfig"
    errors.number(rollout, "maximumPerMinute", path, 1, 1000, integer=True, required=False)
    exponential = errors.structure(rollout, "exponentialRate", path)
    if not exponential:
        return
    path = f"{path}.exponentialRate"
    errors.number(exponential, "baseRatePerMinute", path, 1, 1000, integer=True)
    # greengrassv2's model says 1 to 5, but the IoT job a deployment becomes takes 1.1 to 5 (IoT CreateJob)
    errors.number(exponential, "incrementFactor", path, 1.1, 5, integer=False, decimals=1)
    criteria = errors.structure(exponential, "rateIncreaseCriteria", path, required=True)
    path = f"{path}.rateIncreaseCriteria"
    for key in ("numberOfNotifiedThings", "numberOfSucceededThings"):
        errors.number(criteria, key, path, 1, 1_000_000, integer=True, required=False)
    if "rateIncreaseCriteria" in exponential and not any(
        criteria.get(k) is not None for k in ("numberOfNotifiedThings", "numberOfSucceededThings")
    ):
        errors.add(path, criteria, "Member must set numberOfNotifiedThings or numberOfSucceededThings")


def _abort(errors: _Errors, abort: dict[str, Any]) -> None:
    if not abort:
        return
    path = f"{ROOT}.abortConfig.criteriaList"
    criteria = abort.get("criteriaList")
    if not isinstance(criteria, list) or not criteria:
        errors.add(path, criteria, "Member must have length greater than or equal to 1")
        return
    for index, criterion in enumerate(criteria):
        item = f"{path}.{index + 1}.member"
        if not isinstance(criterion, Mapping):
            errors.add(item, criterion, "Member must be a structure")
            continue
        if criterion.get("failureType") not in FAILURE_TYPES:
            errors.add(
                f"{item}.failureType",
                criterion.get("failureType"),
                f"Member must satisfy enum value set: [{', '.join(FAILURE_TYPES)}]",
            )
        if criterion.get("action") != "CANCEL":
            errors.add(
                f"{item}.action", criterion.get("action"), "Member must satisfy enum value set: [CANCEL]"
            )
        errors.number(criterion, "thresholdPercentage", item, 0, 100, integer=False, decimals=2)
        errors.number(criterion, "minNumberOfExecutedThings", item, 1, None, integer=True)
