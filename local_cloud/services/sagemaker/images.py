"""Which interpreter runs a training job: the environment of the image the job names.

SageMaker runs a script-mode program inside the container image that
``AlgorithmSpecification.TrainingImage`` names, with that image's Python and libraries. The local
cloud runs no containers, so ``scripts/setup`` builds one virtual environment per image from
``containers/<name>.txt`` (the image's framework versions, with where they come from) and a job
runs with that environment's interpreter. A requirements file describes its image in header lines:

    # image: <repository>:<tag> [<repository>:<tag> ...]
    # python: <major.minor>
    # env: KEY=VALUE ...          (the image's ENV)

An image with no such file fails the job, as SageMaker fails a job whose image it cannot find.
Two environment variables of the endpoint process change where environments are looked up:

* ``MLOPS_EDGE_SAGEMAKER_CONTAINERS``: the folder holding one environment per image (default
  ``<sys.prefix>/containers``, i.e. ``.venv/containers`` where set-up puts them);
* ``MLOPS_EDGE_SAGEMAKER_ANY_IMAGE_PYTHON``: an interpreter that runs images the local cloud does
  not know (an escape hatch for trying a program under another image name; never set by the
  project, and a job that uses it proves nothing about that image).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

__all__ = [
    "ANY_IMAGE_PYTHON_VAR",
    "CONTAINERS_DIR",
    "CONTAINERS_ROOT_VAR",
    "ContainerImage",
    "ImageNotFound",
    "Runtime",
    "environments_root",
    "known_images",
    "parse_image_uri",
    "resolve",
]

#: The requirements files, one per image.
CONTAINERS_DIR = Path(__file__).with_name("containers")
CONTAINERS_ROOT_VAR = "MLOPS_EDGE_SAGEMAKER_CONTAINERS"
ANY_IMAGE_PYTHON_VAR = "MLOPS_EDGE_SAGEMAKER_ANY_IMAGE_PYTHON"


class ImageNotFound(Exception):
    """The job's image cannot run here; the message is the job's FailureReason after ``ClientError: ``."""


@dataclass(frozen=True)
class ContainerImage:
    """One framework image the local cloud can run, as its requirements file describes it."""

    name: str
    references: tuple[str, ...]
    python: str
    requirements: Path
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Runtime:
    """How a job's program runs: the interpreter, and the environment variables the image sets."""

    python: str
    env: Mapping[str, str]
    environment: Path | None = None


def parse_image_uri(uri: str) -> tuple[str, str]:
    """``(repository, tag)`` of ``registry/repository[:tag]`` or ``repository@digest`` (tag "" then).

    A registry is the first path element when it holds a dot or a colon (Docker's rule), as in
    ``683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1``.
    """
    first, sep, rest = uri.partition("/")
    path = rest if sep and ("." in first or ":" in first or first == "localhost") else uri
    if "@" in path:
        return path.split("@", 1)[0], ""
    repository, _, tag = path.rpartition(":") if ":" in path else (path, "", "latest")
    return repository, tag


def _header(path: Path) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            continue
        key, sep, value = line[1:].strip().partition(":")
        if sep and key in ("image", "python", "env") and key not in fields:
            fields[key] = value.strip()
    return fields


@cache
def known_images(directory: Path = CONTAINERS_DIR) -> tuple[ContainerImage, ...]:
    """Every image with a requirements file, in name order."""
    images = []
    for path in sorted(directory.glob("*.txt")):
        head = _header(path)
        if "image" not in head or "python" not in head:
            raise ValueError(f"{path}: needs '# image:' and '# python:' header lines")
        env = dict(item.split("=", 1) for item in head.get("env", "").split())
        images.append(ContainerImage(path.stem, tuple(head["image"].split()), head["python"], path, env))
    return tuple(images)


def environments_root(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ.get(CONTAINERS_ROOT_VAR) or Path(sys.prefix) / "containers")


def _find(uri: str) -> ContainerImage | None:
    repository, tag = parse_image_uri(uri)
    wanted = f"{repository}:{tag}"
    return next((image for image in known_images() if wanted in image.references), None)


def resolve(uri: str, environ: Mapping[str, str] | None = None) -> Runtime:
    """The runtime of ``TrainingImage`` ``uri``; ``ImageNotFound`` when it cannot run here."""
    environ = os.environ if environ is None else environ
    image = _find(uri)
    if image is None:
        fallback = environ.get(ANY_IMAGE_PYTHON_VAR)
        if fallback:
            return Runtime(python=fallback, env={})
        runnable = ", ".join(ref for known in known_images() for ref in known.references[:1])
        raise ImageNotFound(
            f"Cannot find the requested image: {uri}. The local cloud runs the training images it "
            f"has an environment for: {runnable or 'none'}"
        )
    environment = environments_root(environ) / image.name
    python = environment / "bin" / "python"
    if not python.exists():
        raise ImageNotFound(
            f"Cannot pull the requested image: {uri}. Its environment ({image.references[0]}: Python "
            f"{image.python}, {image.requirements.name}) is not installed at {environment}; "
            "run scripts/setup"
        )
    return Runtime(python=str(python), env=dict(image.env), environment=environment)
