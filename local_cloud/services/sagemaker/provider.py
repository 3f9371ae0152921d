"""SageMaker training jobs that really train; every other SageMaker operation falls to moto.

Served operations (JSON protocol, ``X-Amz-Target: SageMaker.<Op>``): CreateTrainingJob,
DescribeTrainingJob, StopTrainingJob, ListTrainingJobs. Job records persist under the state dir;
a job that was running when the endpoint stopped is reported Failed after restart.

moto's ``UpdateModelPackage`` is patched to update only what the request carries, as AWS does
(``model_packages.py``); moto still answers it, so the events provider sees the update.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from werkzeug.wrappers import Request, Response

from local_cloud.context import ServerContext
from local_cloud.services.sagemaker import model_packages
from local_cloud.services.sagemaker.exceptions import (
    ResourceInUse,
    SageMakerError,
    ValidationException,
)
from local_cloud.services.sagemaker.training import TrainingRun

SERVED = {"CreateTrainingJob", "DescribeTrainingJob", "StopTrainingJob", "ListTrainingJobs"}


class SageMakerProvider:
    def __init__(self, ctx: ServerContext) -> None:
        model_packages.patch_update_model_package()  # moto answers it, with AWS's semantics
        model_packages.patch_create_model_package()  # and refuses metadata AWS refuses
        self.ctx = ctx
        self.root = ctx.state_dir / "sagemaker"
        self.root.mkdir(parents=True, exist_ok=True)
        self._file = self.root / "training_jobs.json"
        self._lock = threading.RLock()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, TrainingRun] = {}
        if self._file.exists():
            self.jobs = json.loads(self._file.read_text())
            for job in self.jobs.values():
                if job["TrainingJobStatus"] in ("InProgress", "Stopping"):
                    job.update(
                        TrainingJobStatus="Failed",
                        SecondaryStatus="Failed",
                        FailureReason="InternalServerError: the local endpoint restarted during training",
                    )

    def stop(self) -> None:
        for run in list(self.runs.values()):
            run.stop()

    def _save(self) -> None:
        from local_cloud.persistence import atomic_write  # temp file, fsync, rename, fsync dir

        atomic_write(self._file, json.dumps(self.jobs))

    # -- routing -------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response | None:
        target = request.headers.get("X-Amz-Target", "")
        if not target.startswith("SageMaker."):
            return None
        op = target.split(".", 1)[1]
        if op not in SERVED:
            return None
        body = json.loads(request.get_data(cache=True) or b"{}")
        try:
            result = getattr(self, op)(body)
        except SageMakerError as exc:
            return Response(
                json.dumps({"__type": exc.code, "message": exc.message}),
                status=exc.status,
                headers={"x-amzn-ErrorType": exc.code},
                mimetype="application/x-amz-json-1.1",
            )
        return Response(json.dumps(result), status=200, mimetype="application/x-amz-json-1.1")

    # -- operations ----------------------------------------------------------------------------
    def _arn(self, name: str) -> str:
        return f"arn:aws:sagemaker:{self.ctx.region}:{self.ctx.account_id}:training-job/{name.lower()}"

    def _get(self, name: str) -> dict[str, Any]:
        job = self.jobs.get(name)
        if job is None:
            raise ValidationException("Requested resource not found.")
        return job

    def _update(self, name: str, **fields: Any) -> None:
        with self._lock:
            job = self.jobs[name]
            now = time.time()
            if "SecondaryStatus" in fields and fields["SecondaryStatus"] != job.get("SecondaryStatus"):
                transitions = job.setdefault("SecondaryStatusTransitions", [])
                if transitions:
                    transitions[-1]["EndTime"] = now
                transitions.append(
                    {"Status": fields["SecondaryStatus"], "StartTime": now, "StatusMessage": ""}
                )
            job.update(fields, LastModifiedTime=now)
            if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
                self.runs.pop(name, None)
            self._save()

    def CreateTrainingJob(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("TrainingJobName") or ""
        for required in (
            "TrainingJobName",
            "AlgorithmSpecification",
            "RoleArn",
            "OutputDataConfig",
            "ResourceConfig",
            "StoppingCondition",
        ):
            if required not in body:
                raise ValidationException(
                    f"1 validation error detected: Value null at '{required}' failed to satisfy constraint: Member must not be null"
                )
        with self._lock:
            if name in self.jobs:
                raise ResourceInUse(
                    f"Training job names must be unique within an AWS account and region, and a training job with this name already exists ({self._arn(name)})"
                )
            now = time.time()
            job = {
                **body,
                "TrainingJobArn": self._arn(name),
                "TrainingJobStatus": "InProgress",
                "SecondaryStatus": "Starting",
                "SecondaryStatusTransitions": [
                    {
                        "Status": "Starting",
                        "StartTime": now,
                        "StatusMessage": "Preparing the instances for training",
                    }
                ],
                "CreationTime": now,
                "LastModifiedTime": now,
                "EnableNetworkIsolation": body.get("EnableNetworkIsolation", False),
                "EnableInterContainerTrafficEncryption": False,
                "EnableManagedSpotTraining": False,
            }
            job.pop("Tags", None)
            self.jobs[name] = job
            self._save()
            run = TrainingRun(self.ctx, job, self.root / "jobs" / name, lambda **f: self._update(name, **f))
            self.runs[name] = run
        run.start()
        return {"TrainingJobArn": job["TrainingJobArn"]}

    def DescribeTrainingJob(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._get(body.get("TrainingJobName", ""))))

    def StopTrainingJob(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("TrainingJobName", "")
        with self._lock:
            job = self._get(name)
            if job["TrainingJobStatus"] != "InProgress":
                raise ValidationException(
                    f"The training job status is {job['TrainingJobStatus']}; only InProgress jobs can be stopped"
                )
            job["TrainingJobStatus"] = "Stopping"
            run = self.runs.get(name)
        if run is not None:
            run.stop()
        return {}

    def ListTrainingJobs(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            jobs = sorted(
                self.jobs.values(),
                key=lambda j: j["CreationTime"],
                reverse=body.get("SortOrder", "Descending") == "Descending",
            )
            if body.get("StatusEquals"):
                jobs = [j for j in jobs if j["TrainingJobStatus"] == body["StatusEquals"]]
            if body.get("NameContains"):
                jobs = [j for j in jobs if body["NameContains"] in j["TrainingJobName"]]
            summaries = [
                {
                    k: j.get(k)
                    for k in (
                        "TrainingJobName",
                        "TrainingJobArn",
                        "CreationTime",
                        "TrainingEndTime",
                        "LastModifiedTime",
                        "TrainingJobStatus",
                    )
                    if j.get(k) is not None
                }
                for j in jobs[: int(body.get("MaxResults", 100))]
            ]
        return {"TrainingJobSummaries": summaries}


__all__ = ["SageMakerProvider"]
