"""Drift that starts a retraining: the EventBridge event, the retraining input, the rule's switch.

The monitoring function (``lambdas/core/monitoring.py``) raises one event per model version and
scope when violations appear (source :data:`EVENT_SOURCE`, detail-type :data:`EVENT_DETAIL_TYPE`);
the CDK app's rule (``infra/monitoring.py``, DISABLED unless an execution asked for
``monitoring.retrain_on_drift``) starts the state machine with ``$.detail.retraining_input``. Only
the fleet's event carries a retraining input: one device drifting is worth an alert (a broken
sensor, a device in an odd place), the fleet drifting is what a new model should learn.

A retraining runs with the source execution's input (``context.json``'s ``input``, what Configure
validated) with only the dataset replaced: "the same settings plus newer data". Training reads
every ``*.csv`` under its ``train`` channel, one S3 prefix (``pipeline/training/train.py``,
``read_channel``). With ``monitoring.retrain_data_uri`` set, the event's input trains on a
**snapshot** made at the event: every CSV under ``dataset.train`` copied (server side, CopyObject)
to ``datasets/retraining/<model_version>/<stamp>/base/`` and every CSV under ``retrain_data_uri``
to ``.../new/``, and ``dataset.train`` is that snapshot's prefix. The retraining is reproducible (files
added later do not change it), and the SageMaker role reads it where it reads every dataset. When
the dataset being retrained was itself a snapshot, its ``base/`` part is the base, so the newer
data is never counted twice.

Promote (``lambdas/core/promote.py``) switches the rule per ``monitoring.retrain_on_drift`` when
a model goes into service: the setting belongs to the model the devices run.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from botocore.exceptions import ClientError

from lambdas.core.aws import split_s3_uri, transient_errors
from lambdas.core.exceptions import ConfigurationError

__all__ = [
    "EVENT_DETAIL_TYPE",
    "EVENT_SOURCE",
    "MAX_SNAPSHOT_FILES",
    "RUN_ONLY",
    "SNAPSHOT_PREFIX",
    "drift_event",
    "put_drift_event",
    "retraining_input",
    "snapshot_dataset",
    "switch_rule",
]

EVENT_SOURCE = "mlops-edge.monitoring"
EVENT_DETAIL_TYPE = "Model drift detected"
#: Where snapshots go in the deployment's bucket: under ``datasets/`` (infra/storage.py's
#: PREFIXES), which the SageMaker role reads; infra/monitoring.py checks the two agree.
SNAPSHOT_PREFIX = "datasets/retraining/"
#: CopyObject calls one event may make (a Lambda has minutes, not hours).
MAX_SNAPSHOT_FILES = 1000
_DATASET_KEYS = ("train", "validation", "target", "task")
#: Fields of the source input a retraining does not take: the comments (its own says why it
#: runs) and ``model_package_arn`` (deploy that package instead of training: a retraining that
#: kept it would redeploy the model that drifted). The schema has no other per-execution field;
#: names and tokens derive from the execution's name, which every execution has its own of.
RUN_ONLY = ("Comment", "comment", "model_package_arn")


def retraining_input(context: dict[str, Any], *, model_version: str, scope: str, when: str) -> dict | None:
    """The execution input of a retraining: the source execution's input (``context["input"]``,
    as Configure validated it) with only the dataset replaced by the one the model was trained on
    and the source's own fields (:data:`RUN_ONLY`) dropped; so its rollout, polls, quality gate and
    the devices' configuration (``mlops-edge run``'s local ``PythonPath``) are kept, not defaulted.

    A context written before it kept the input gives dataset, hyperparameters and monitoring only.
    None when the context names no training data (the rule's pattern then does not match).
    """
    dataset = context.get("dataset")
    if not isinstance(dataset, dict) or not isinstance(dataset.get("train"), str):
        return None
    source = context.get("input")
    if isinstance(source, dict):
        doc = {k: copy.deepcopy(v) for k, v in source.items() if k not in RUN_ONLY}
    else:
        doc = {}
        if isinstance(context.get("hyperparameters"), dict) and context["hyperparameters"]:
            doc["hyperparameters"] = dict(context["hyperparameters"])
        if isinstance(context.get("monitoring"), dict) and context["monitoring"]:
            doc["monitoring"] = dict(context["monitoring"])
    doc["comment"] = f"retraining: {scope} drift of model {model_version} at {when}"
    doc["dataset"] = {k: dataset[k] for k in _DATASET_KEYS if k in dataset}
    return doc


def _csv_keys(s3: Any, uri: str) -> tuple[str, str, list[str]]:
    """(bucket, prefix, keys of the CSV files under ``uri``: a prefix, or one .csv object)."""
    bucket, prefix = split_s3_uri(uri)
    if prefix.endswith(".csv"):
        return bucket, prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else "", [prefix]
    keys: list[str] = []
    with transient_errors(f"s3 list {uri}"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".csv")]
            if len(keys) > MAX_SNAPSHOT_FILES:
                break
    return bucket, prefix, keys


def snapshot_dataset(s3: Any, *, bucket: str, train: str, newer: str, model_version: str, stamp: str) -> str:
    """Copy ``train``'s and ``newer``'s CSV files into one snapshot prefix; returns its URI.

    Raises :class:`ConfigurationError` naming the problem (no CSV under ``newer``, too many files,
    a copy refused) so the event can say why it carries no retraining input.
    """
    root = f"{SNAPSHOT_PREFIX}{re.sub(r'[^A-Za-z0-9._-]', '_', model_version)}/{stamp}/"
    base = train
    if train.startswith(f"s3://{bucket}/{SNAPSHOT_PREFIX}") and train.endswith("/"):
        base = train + "base/"  # an earlier snapshot: its original data, not its newer part again
    parts = [("base/", *_csv_keys(s3, base)), ("new/", *_csv_keys(s3, newer))]
    if not parts[1][3]:
        raise ConfigurationError(f"monitoring.retrain_data_uri {newer}: no .csv file there")
    if sum(len(p[3]) for p in parts) > MAX_SNAPSHOT_FILES:
        raise ConfigurationError(
            f"dataset.train and monitoring.retrain_data_uri hold more than {MAX_SNAPSHOT_FILES} "
            ".csv files together; merge them into fewer files"
        )
    for folder, source_bucket, prefix, keys in parts:
        for key in keys:
            target = f"{root}{folder}{key[len(prefix) :]}"
            try:
                with transient_errors(f"s3 copy s3://{source_bucket}/{key}"):
                    s3.copy_object(
                        Bucket=bucket, Key=target, CopySource={"Bucket": source_bucket, "Key": key}
                    )
            except ClientError as exc:
                raise ConfigurationError(
                    f"cannot copy s3://{source_bucket}/{key} into the retraining snapshot: {exc}"
                ) from exc
    return f"s3://{bucket}/{root}"


def drift_event(detail: dict[str, Any], *, bus: str = "default") -> dict[str, Any]:
    """One PutEvents entry of the drift event."""
    return {
        "Source": EVENT_SOURCE,
        "DetailType": EVENT_DETAIL_TYPE,
        "Detail": json.dumps(detail),
        "EventBusName": bus,
    }


def put_drift_event(events: Any, detail: dict[str, Any]) -> str:
    """PutEvents; returns the event id (a failed entry is an error: the alert is retried)."""
    with transient_errors("events PutEvents"):
        out = events.put_events(Entries=[drift_event(detail)])
    entry = (out.get("Entries") or [{}])[0]
    if out.get("FailedEntryCount") or not entry.get("EventId"):
        raise ConfigurationError(
            f"PutEvents refused the drift event: {entry.get('ErrorCode')} {entry.get('ErrorMessage')}"
        )
    return str(entry["EventId"])


def switch_rule(events: Any, rule: str, enabled: bool) -> str:
    """EnableRule/DisableRule on the retraining rule; returns its state (``ENABLED``/``DISABLED``)."""
    with transient_errors(f"events {'EnableRule' if enabled else 'DisableRule'} {rule}"):
        if enabled:
            events.enable_rule(Name=rule)
        else:
            events.disable_rule(Name=rule)
    return "ENABLED" if enabled else "DISABLED"
