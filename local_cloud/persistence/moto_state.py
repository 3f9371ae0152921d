"""Each moto service's backends, snapshotted to ``<state>/moto/<service>.pickle`` and restored at start-up."""

from __future__ import annotations

import importlib
import logging
import sys
import time
from datetime import UTC
from pathlib import Path

from local_cloud.persistence.files import atomic_write, remove_stale_temporaries
from local_cloud.persistence.pickling import dump_backends, load_backends
from local_cloud.persistence.s3_bodies import _watch_fake_key_values, blobs_for, moto_dir

LOG = logging.getLogger(__name__)

# service -> (module, BackendDict attribute)
SERVICES: dict[str, tuple[str, str]] = {
    "s3": ("moto.s3.models", "s3_backends"),
    "iam": ("moto.iam.models", "iam_backends"),
    "sts": ("moto.sts.models", "sts_backends"),
    "iot": ("moto.iot.models", "iot_backends"),
    "lambda": ("moto.awslambda_simple.models", "lambda_simple_backends"),
    "logs": ("moto.logs.models", "logs_backends"),
    "sagemaker": ("moto.sagemaker.models", "sagemaker_backends"),
    "stepfunctions": ("moto.stepfunctions.parser.models", "stepfunctions_parser_backends"),
    # resources CloudFormation stacks make (the stacks themselves: services/cloudformation)
    "secretsmanager": ("moto.secretsmanager.models", "secretsmanager_backends"),
    "ssm": ("moto.ssm.models", "ssm_backends"),
    "events": ("moto.events.models", "events_backends"),
    "ecr": ("moto.ecr.models", "ecr_backends"),  # images that stand in for a stack's image assets
}


def save_service(state_dir: Path, service: str) -> str:
    """Snapshot one moto service durably; 'saved', 'untouched' (never imported) or raises."""
    module_name, attr = SERVICES[service]
    if module_name not in sys.modules:
        return "untouched"  # never imported in this run: it holds no state (an older file stays valid)
    blobs = None
    if service == "s3":
        _watch_fake_key_values()
        blobs = blobs_for(state_dir)
    backend_dict = getattr(sys.modules[module_name], attr)
    for attempt in range(5):
        try:
            data = dump_backends(backend_dict, blobs)
            break
        except RuntimeError as exc:  # another thread changed a dict while it was pickled
            if "changed size during iteration" not in str(exc) or attempt == 4:
                raise
            time.sleep(0.001 * (attempt + 1))
    atomic_write(moto_dir(state_dir) / f"{service}.pickle", data)
    return "saved"


def save_moto(state_dir: Path) -> dict[str, str]:
    """Snapshot each service's backends that exist; returns service -> 'saved' | error text."""
    out: dict[str, str] = {}
    for service in SERVICES:
        try:
            result = save_service(state_dir, service)
            if result == "saved":
                out[service] = result
        except Exception as exc:  # a service that cannot be pickled is skipped, not fatal
            LOG.warning("cannot persist moto %s state: %s", service, exc)
            out[service] = f"skipped: {exc}"
    return out


def _reindex_buckets(s3_backends: object, snapshot: dict[str, dict[str, object]]) -> None:
    """moto finds a bucket's owner in ``s3_backends.bucket_accounts``, a global outside the
    per-account backends we pickle. Without it, CreateBucket on a restored name "succeeds" and
    replaces the restored bucket, objects and all."""
    index = s3_backends.bucket_accounts  # type: ignore[attr-defined]
    for account, regions in snapshot.items():
        for backend in regions.values():
            for name, bucket in backend.buckets.items():  # type: ignore[attr-defined]
                index[name] = (bucket.partition, account)


def _abort_running_executions(snapshot: dict[str, dict[str, object]]) -> int:
    """An execution that was running at a crash has no worker any more: say so, as AWS would
    for an execution stopped from outside (``ABORTED``), instead of ``RUNNING`` for ever."""
    from datetime import datetime

    aborted = 0
    for regions in snapshot.values():
        for backend in regions.values():
            executions = [
                e for sm in getattr(backend, "state_machines", []) for e in getattr(sm, "executions", [])
            ]
            for execution in executions:
                status = getattr(execution, "exec_status", None)
                if status is not None and getattr(status, "value", status) == "RUNNING":
                    from moto.stepfunctions.parser.api import ExecutionStatus

                    execution.exec_status = ExecutionStatus.ABORTED
                    execution.stop_date = datetime.now(tz=UTC)
                    execution.error = "States.Runtime"
                    execution.cause = "The local endpoint stopped while this execution was running."
                    aborted += 1
    return aborted


def restore_moto(state_dir: Path) -> dict[str, str]:
    """Load what ``save_service`` wrote; a file that fails to load is ignored (fresh state)."""
    out: dict[str, str] = {}
    source = moto_dir(state_dir)
    if not source.exists():
        return out
    stale = remove_stale_temporaries(source)
    if stale:
        LOG.info("removed %d temporary file(s) a crash left in %s", stale, source)
    for service, (module_name, attr) in SERVICES.items():
        path = source / f"{service}.pickle"
        if not path.exists():
            continue
        try:
            backend_dict = getattr(importlib.import_module(module_name), attr)
            if service == "s3":
                _watch_fake_key_values()
                blobs = blobs_for(state_dir)
            snapshot = load_backends(backend_dict, path.read_bytes())
            if service == "s3":
                _reindex_buckets(backend_dict, snapshot)
                removed = blobs.collect_garbage()
                if removed:
                    LOG.info("removed %d S3 bodies no object refers to", removed)
            if service == "stepfunctions":
                aborted = _abort_running_executions(snapshot)
                if aborted:
                    LOG.info("%d Step Functions execution(s) running at the last stop: ABORTED", aborted)
            out[service] = "restored"
        except Exception as exc:
            LOG.warning("cannot restore moto %s state: %s", service, exc)
            out[service] = f"skipped: {exc}"
    return out
