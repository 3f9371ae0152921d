"""One training job run under SageMaker's script-mode contract (docs/contracts.md §7).

The job root mirrors ``/opt/ml``: ``input/data/<channel>``, ``input/config/hyperparameters.json``,
``model``, ``output``, ``code``. The program runs with the interpreter of the image the job names
(``images.py``: the framework container's Python and library versions, installed by set-up), so
what the container has is importable and nothing else is.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from local_cloud.context import ServerContext
from local_cloud.services.sagemaker.container import lay_out, script_mode_env
from local_cloud.services.sagemaker.images import ImageNotFound, Runtime, resolve

#: Variables of the endpoint's own Python that must not leak into the image's interpreter.
_HOST_PYTHON_VARS = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV")


def split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


class TrainingRun:
    """Runs one job in a background thread and reports through ``update(**fields)``."""

    def __init__(
        self, ctx: ServerContext, job: dict[str, Any], root: Path, update: Callable[..., None]
    ) -> None:
        self.ctx = ctx
        self.job = job
        self.root = root
        self.update = update
        self.process: subprocess.Popen[bytes] | None = None
        self.stop_requested = False
        self.thread = threading.Thread(
            target=self._run, daemon=True, name=f"training-{job['TrainingJobName']}"
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_requested = True
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)

    # -- steps ---------------------------------------------------------------------------------
    def _download(self, s3: Any, uri: str, target: Path) -> int:
        bucket, prefix = split_s3(uri)
        count = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.endswith("/"):
                    continue
                rel = key[len(prefix) :].lstrip("/") or Path(key).name
                dest = target / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, key, str(dest))
                count += 1
        return count

    def _image_env(self, runtime: Runtime) -> dict[str, str]:
        """The machine's environment less the endpoint's Python, plus the image's ENV and PATH."""
        env = {k: v for k, v in os.environ.items() if k not in _HOST_PYTHON_VARS}
        env.update(runtime.env)
        if runtime.environment is not None:
            env["PATH"] = os.pathsep.join([str(runtime.environment / "bin"), env.get("PATH", "")])
        return env

    def _prepare(self, s3: Any, runtime: Runtime) -> tuple[list[str], dict[str, str]]:
        hps: dict[str, str] = dict(self.job.get("HyperParameters") or {})
        program = str(_decode(hps.get("sagemaker_program", '"train.py"')))
        submit = hps.get("sagemaker_submit_directory")
        code = self.root / "code"
        code.mkdir(parents=True, exist_ok=True)
        if submit:
            bucket, key = split_s3(str(_decode(submit)))
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
                tar.extractall(code, filter="data")
        if not (code / program).exists():
            raise FileNotFoundError(f"training program {program} not found in the submit directory")
        channels = []
        for channel in self.job.get("InputDataConfig") or []:
            name = channel["ChannelName"]
            uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
            target = self.root / "input" / "data" / name
            target.mkdir(parents=True, exist_ok=True)
            if self._download(s3, uri, target) == 0:
                raise FileNotFoundError(
                    f"No S3 objects found under S3 URL '{uri}' given in input data source"
                )
            channels.append(name)
        lay_out(self.root, channels, hps)
        user_hps = {k: _decode(v) for k, v in hps.items() if not k.startswith("sagemaker_")}
        env = {
            **self._image_env(runtime),
            **(self.job.get("Environment") or {}),
            **self.ctx.aws_env(),
            **script_mode_env(
                self.root,
                channels,
                user_hps,
                job_name=self.job["TrainingJobName"],
                entry_point=program,
                module_dir=str(_decode(submit)) if submit else "",
            ),
        }
        env.pop("MOTO_PORT", None)
        args = [runtime.python, program]
        for key, value in user_hps.items():
            args += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
        return args, env

    def _run(self) -> None:
        image = (self.job.get("AlgorithmSpecification") or {}).get("TrainingImage", "")
        try:
            runtime = resolve(image)
        except ImageNotFound as exc:
            self._finish_failed(f"ClientError: {exc}")
            return
        s3 = self.ctx.client("s3")
        self.update(SecondaryStatus="Downloading", TrainingStartTime=time.time())
        log_path = self.root / "output" / "training.log"
        try:
            args, env = self._prepare(s3, runtime)
        except Exception as exc:
            self._finish_failed(f"ClientError: {exc}")
            return
        self.update(SecondaryStatus="Training")
        max_runtime = float((self.job.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds", 86400))
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                args,
                cwd=self.root / "code",
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                returncode = self.process.wait(timeout=max_runtime)
                timed_out = False
            except subprocess.TimeoutExpired:
                self.stop()
                returncode = self.process.wait()
                timed_out = True
        output = log_path.read_text(errors="replace")
        self._write_logs(output)
        metrics = self._metrics(output)
        if self.stop_requested or timed_out:
            self.update(
                TrainingJobStatus="Stopped",
                SecondaryStatus="MaxRuntimeExceeded" if timed_out else "Stopped",
                TrainingEndTime=time.time(),
                FinalMetricDataList=metrics,
            )
            return
        if returncode != 0:
            failure = self.root / "output" / "failure"
            reason = failure.read_text().strip() if failure.exists() else ""
            tail = output.strip().splitlines()[-1:] if output.strip() else []
            self._finish_failed(
                reason or f"AlgorithmError: ExecuteUserScriptError: exit code {returncode}: {' '.join(tail)}",
                metrics,
            )
            return
        self.update(SecondaryStatus="Uploading")
        try:
            artifact = self._upload(s3)
        except Exception as exc:
            self._finish_failed(f"ClientError: could not upload model artifacts: {exc}", metrics)
            return
        self.update(
            TrainingJobStatus="Completed",
            SecondaryStatus="Completed",
            TrainingEndTime=time.time(),
            FinalMetricDataList=metrics,
            ModelArtifacts={"S3ModelArtifacts": artifact},
        )

    def _finish_failed(self, reason: str, metrics: list[dict[str, Any]] | None = None) -> None:
        self.update(
            TrainingJobStatus="Failed",
            SecondaryStatus="Failed",
            FailureReason=reason[:1024],
            TrainingEndTime=time.time(),
            FinalMetricDataList=metrics or [],
        )

    def _metrics(self, output: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        definitions = (self.job.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []
        for definition in definitions:
            values = re.findall(definition["Regex"], output)
            if values:
                last = values[-1][0] if isinstance(values[-1], tuple) else values[-1]
                try:
                    found.append(
                        {"MetricName": definition["Name"], "Value": float(last), "Timestamp": time.time()}
                    )
                except ValueError:
                    continue
        return found

    def _upload(self, s3: Any) -> str:
        bucket, prefix = split_s3(self.job["OutputDataConfig"]["S3OutputPath"].rstrip("/"))
        key = "/".join(p for p in (prefix, self.job["TrainingJobName"], "output", "model.tar.gz") if p)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            model_dir = self.root / "model"
            for path in sorted(model_dir.rglob("*")):
                tar.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)
        s3.put_object(Bucket=bucket, Key=key, Body=buf.getvalue())
        return f"s3://{bucket}/{key}"

    def _write_logs(self, output: str) -> None:
        """Training output to CloudWatch Logs, as SageMaker does (/aws/sagemaker/TrainingJobs)."""
        from moto.logs.models import logs_backends

        backend = logs_backends[self.ctx.account_id][self.ctx.region]
        group = "/aws/sagemaker/TrainingJobs"
        stream = f"{self.job['TrainingJobName']}/algo-1-{int(time.time())}"
        try:
            if group not in backend.groups:
                backend.create_log_group(group, {})
            backend.create_log_stream(group, stream)
            now = int(time.time() * 1000)
            lines = [line for line in output.splitlines() if line.strip()][-5000:]
            if lines:
                backend.put_log_events(group, stream, [{"timestamp": now, "message": m} for m in lines])
        except Exception:
            pass
