"""A training job runs with the framework versions of the image it names, or fails as SageMaker does.

``AlgorithmSpecification.TrainingImage`` picks the interpreter: ``sagemaker-xgboost:1.7-1`` runs
in the environment scripts/setup builds from that image's versions (Python 3.8, XGBoost 1.7.4,
…); an image the local cloud has no environment for fails the job with a ClientError reason.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from local_cloud.services.sagemaker.images import (
    ANY_IMAGE_PYTHON_VAR,
    CONTAINERS_ROOT_VAR,
    ImageNotFound,
    known_images,
    parse_image_uri,
    resolve,
)
from pipeline.config.function_env import DEFAULT_TRAINING_IMAGE
from tests.integration.local_cloud.conftest import wait_until
from tests.integration.local_cloud.training_support import training_job_request, upload_inputs

pytestmark = pytest.mark.integration
ROLE = "arn:aws:iam::123456789012:role/sagemaker"

# Reports what it runs with; imports what train.py imports, as the container has them.
VERSIONS_PROGRAM = b"""
import json, os, sys
import numpy, pandas, scipy, sklearn, xgboost
out = {
    "python": "%d.%d" % sys.version_info[:2],
    "xgboost": xgboost.__version__, "numpy": numpy.__version__, "pandas": pandas.__version__,
    "scikit-learn": sklearn.__version__, "scipy": scipy.__version__,
    "from_request": os.environ.get("FROM_REQUEST"), "pythonpath": os.environ.get("PYTHONPATH"),
}
json.dump(out, open(os.path.join(os.environ["SM_MODEL_DIR"], "versions.json"), "w"))
print("#metric validation:rmse=1")
"""


def _pins(requirements: Path) -> dict[str, str]:
    pins = {}
    for line in requirements.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.strip()] = version.strip()
    return pins


@pytest.fixture(scope="module")
def xgboost_image() -> object:
    [image] = [i for i in known_images() if "sagemaker-xgboost:1.7-1" in i.references]
    try:
        resolve(DEFAULT_TRAINING_IMAGE)
    except ImageNotFound as exc:
        pytest.skip(f"the training container's environment is missing: {exc}")
    return image


def _done(sm, name):  # type: ignore[no-untyped-def]
    job = sm.describe_training_job(TrainingJobName=name)
    return job if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped") else None


# -- the image table --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (DEFAULT_TRAINING_IMAGE, ("sagemaker-xgboost", "1.7-1")),
        (
            "246618743249.dkr.ecr.us-west-2.amazonaws.com/sagemaker-xgboost:1.7-1-cpu-py3",
            ("sagemaker-xgboost", "1.7-1-cpu-py3"),
        ),
        ("localhost:5000/team/trainer", ("team/trainer", "latest")),
        ("sagemaker-xgboost@sha256:" + "0" * 64, ("sagemaker-xgboost", "")),
    ],
)
def test_image_uri_names_repository_and_tag(uri: str, expected: tuple[str, str]) -> None:
    assert parse_image_uri(uri) == expected


def test_pipeline_image_resolves_to_its_environment(xgboost_image) -> None:  # type: ignore[no-untyped-def]
    runtime = resolve(DEFAULT_TRAINING_IMAGE)
    assert runtime.environment is not None and runtime.environment.name == xgboost_image.name
    assert runtime.env["PYTHONUNBUFFERED"] == "1" and runtime.env["LC_ALL"] == "C.UTF-8"
    # Any region's registry: the repository and tag name the image.
    assert resolve("492215442770.dkr.ecr.eu-central-1.amazonaws.com/sagemaker-xgboost:1.7-1") == runtime


def test_environment_holds_the_image_framework_versions(xgboost_image) -> None:  # type: ignore[no-untyped-def]
    """What set-up installed is exactly what the requirements file pins, on the image's Python."""
    runtime = resolve(DEFAULT_TRAINING_IMAGE)
    pins = _pins(xgboost_image.requirements)
    assert {"xgboost", "numpy", "pandas", "scikit-learn", "scipy"} <= set(pins)
    assert pins["xgboost"].startswith("1.7.")
    script = (
        "import importlib.metadata as m, json, sys; "
        "print(json.dumps({'python': '%d.%d' % sys.version_info[:2], "
        "'dists': {n: m.version(n) for n in sys.argv[1:]}}))"
    )
    out = subprocess.run([runtime.python, "-c", script, *pins], capture_output=True, text=True, check=True)
    found = json.loads(out.stdout)
    assert found["python"] == xgboost_image.python == "3.8"
    assert found["dists"] == pins


def test_unknown_image_and_missing_environment_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFound, match=r"^Cannot find the requested image: .*/no-such-image:1\. "):
        resolve("123456789012.dkr.ecr.us-east-1.amazonaws.com/no-such-image:1", environ={})
    # The same repository under a digest or another tag is another image.
    with pytest.raises(ImageNotFound, match=r"sagemaker-xgboost:1\.7-1"):
        resolve(DEFAULT_TRAINING_IMAGE.replace(":1.7-1", ":1.5-1"), environ={})
    # A known image whose environment set-up has not built says what to run.
    with pytest.raises(ImageNotFound, match=r"is not installed at .*; run scripts/setup$"):
        resolve(DEFAULT_TRAINING_IMAGE, environ={CONTAINERS_ROOT_VAR: str(tmp_path)})


def test_escape_hatch_runs_unknown_images_only(xgboost_image, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    environ = {ANY_IMAGE_PYTHON_VAR: "/usr/bin/python3"}
    runtime = resolve("123456789012.dkr.ecr.us-east-1.amazonaws.com/mine:dev", environ=environ)
    assert runtime.python == "/usr/bin/python3" and runtime.environment is None
    assert resolve(DEFAULT_TRAINING_IMAGE, environ=environ) == resolve(DEFAULT_TRAINING_IMAGE)
    # Nor does it stand in for a known image whose environment is missing.
    with pytest.raises(ImageNotFound, match="run scripts/setup"):
        resolve(DEFAULT_TRAINING_IMAGE, environ={**environ, CONTAINERS_ROOT_VAR: str(tmp_path)})


# -- through the local cloud ------------------------------------------------------------------


def _tarball(program: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("train.py")
        info.size = len(program)
        tar.addfile(info, io.BytesIO(program))
    return buf.getvalue()


def test_job_runs_with_the_named_image_versions(local_cloud, xgboost_image) -> None:  # type: ignore[no-untyped-def]
    s3, sm = local_cloud.client("s3"), local_cloud.client("sagemaker")
    bucket = f"images-{uuid.uuid4().hex[:8]}"
    upload_inputs(s3, bucket, real=False)
    s3.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz", Body=_tarball(VERSIONS_PROGRAM))
    name = f"versions-{uuid.uuid4().hex[:8]}"
    request = training_job_request(name, bucket, ROLE)
    request["Environment"] = {"FROM_REQUEST": "yes"}
    sm.create_training_job(**request)
    job = wait_until(lambda: _done(sm, name), timeout=120, interval=0.2)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    body = s3.get_object(Bucket=bucket, Key=f"output/{name}/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        versions = json.load(tar.extractfile("versions.json"))
    pins = _pins(xgboost_image.requirements)
    assert versions["python"] == "3.8"
    for dist in ("xgboost", "numpy", "pandas", "scikit-learn", "scipy"):
        assert versions[dist] == pins[dist], dist
    assert versions["from_request"] == "yes" and versions["pythonpath"] is None


def test_job_naming_an_unknown_image_fails_with_client_error(local_cloud) -> None:  # type: ignore[no-untyped-def]
    s3, sm = local_cloud.client("s3"), local_cloud.client("sagemaker")
    bucket = f"images-{uuid.uuid4().hex[:8]}"
    upload_inputs(s3, bucket, real=False)
    name = f"noimage-{uuid.uuid4().hex[:8]}"
    request = training_job_request(name, bucket, ROLE)
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/no-such-image:1"
    request["AlgorithmSpecification"]["TrainingImage"] = image
    sm.create_training_job(**request)
    job = wait_until(lambda: _done(sm, name), timeout=60, interval=0.1)
    assert job["TrainingJobStatus"] == "Failed" and job["SecondaryStatus"] == "Failed"
    assert job["FailureReason"].startswith(f"ClientError: Cannot find the requested image: {image}.")
    assert re.search(r"sagemaker-xgboost:1\.7-1", job["FailureReason"])
    assert "ModelArtifacts" not in job
