"""Build the Greengrass components: deterministic artifacts, content-derived versions, recipes.

Why deterministic: the inference component's version *is* a hash of its artifact, so the same code
must give the same bytes (fixed timestamps, order and permissions), and publishing is idempotent.
The recipe templates in ``components/<kind>/recipe.yaml`` keep GDK's placeholders
(``{COMPONENT_NAME}``, ``{COMPONENT_VERSION}``, ``{COMPONENT_AUTHOR}``) plus our own
(``{ARTIFACT_URI}``, ``{ARTIFACT_NAME}``, ``{MODEL_COMPONENT_NAME}``,
``{MODEL_VERSION_REQUIREMENT}``); every other ``{...}`` is a Greengrass recipe variable and is left
for the device to interpolate.

Also GDK's custom build command (``gdk-config.json``: ``python ../build.py gdk inference``): it
writes ``greengrass-build/recipes/recipe.yaml`` and ``greengrass-build/artifacts/<name>/<version>/``
from the same functions the pipeline publishes with, so ``gdk component publish`` creates the same
component version with the same artifact bytes; only the bucket differs (GDK's
``{bucket}-{region}-{account}``). The model's zip carries the same optional files as
PublishComponents' (``OPTIONAL_MODEL_FILES``: the drift baseline, the accelerated variant) when
the exported model in ``components/model/model/`` has them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any, Literal

import yaml

if __name__ == "__main__":  # GDK runs this file as a script from the component folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline.archive import deterministic_zip
from pipeline.ml.model_files import OPTIONAL_MODEL_FILES

__all__ = [
    "DEFAULT_MODEL_VERSION_REQUIREMENT",
    "GDK_ARTIFACT_URI",
    "gdk_build",
    "gdk_config",
    "inference_artifact",
    "inference_version",
    "model_artifact",
    "model_version",
    "recipe_template",
    "render_recipe",
]

COMPONENTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = COMPONENTS_DIR.parent
INFERENCE_SRC = COMPONENTS_DIR / "inference" / "src"
ENGINE_SRC = REPO_ROOT / "edge_runtime" / "inference"

#: Range on the model's major version. The deployment pins the exact model version; the recipe only
#: states compatibility, so a model update does not force a new inference component version.
DEFAULT_MODEL_VERSION_REQUIREMENT = ">=1.0.0 <2.0.0"
DEFAULT_AUTHOR = "mlops-edge"

_SKIP_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}

Kind = Literal["model", "inference"]


def _tree(root: Path, prefix: str) -> list[tuple[str, bytes]]:
    """Files under ``root`` as zip entries below ``prefix``, skipping caches and bytecode."""
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or _SKIP_PARTS & set(rel.parts) or path.suffix in _SKIP_SUFFIXES:
            continue
        out.append((f"{prefix}{rel.as_posix()}", path.read_bytes()))
    return out


def model_artifact(model_dir: Path, optional: tuple[str, ...] = ()) -> bytes:
    """Deterministic zip of ``model.onnx`` + ``model.json`` from an exported model directory, plus
    each of ``optional`` (paths relative to it, e.g. ``baseline/statistics.json``) that exists, at
    the same relative path: the training baseline the inference component counts windows on."""
    model_dir = Path(model_dir)
    entries = []
    for name in ("model.onnx", "model.json"):
        path = model_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: export the model first")
        entries.append((name, path.read_bytes()))
    for name in optional:
        path = model_dir / name
        if ".." in Path(name).parts or Path(name).is_absolute():
            raise ValueError(f"optional model file {name!r} must be a path inside the model directory")
        if path.is_file():
            entries.append((Path(name).as_posix(), path.read_bytes()))
    return deterministic_zip(entries)


def inference_artifact() -> bytes:
    """Deterministic zip of the inference component code and the engine it imports.

    Layout at the zip root: ``inference_component/``, ``edge_runtime/__init__.py``,
    ``edge_runtime/inference/``, ``requirements.txt`` — so ``PYTHONPATH=<unzipped dir>`` is all
    the device needs.
    """
    entries = _tree(INFERENCE_SRC, "")
    entries.append(("edge_runtime/__init__.py", b'"""On-device runtime (bundled subset)."""\n'))
    entries.extend(_tree(ENGINE_SRC, "edge_runtime/inference/"))
    return deterministic_zip(entries)


def inference_version(artifact: bytes) -> str:
    """``1.0.<n>`` with ``n`` from the artifact's SHA-256 (7 hex digits: fits a Java int)."""
    return f"1.0.{int(hashlib.sha256(artifact).hexdigest()[:7], 16)}"


def model_version(registry_version: int) -> str:
    """``1.0.<registry version>``: the model package version is the component's patch number."""
    if int(registry_version) < 1:
        raise ValueError(f"registry version must be >= 1, got {registry_version!r}")
    return f"1.0.{int(registry_version)}"


def recipe_template(kind: Kind) -> str:
    """The raw recipe template of ``kind`` (YAML text with placeholders)."""
    if kind not in ("model", "inference"):
        raise ValueError(f"unknown component kind {kind!r}")
    return (COMPONENTS_DIR / kind / "recipe.yaml").read_text()


def _artifact_name(artifact_uri: str) -> str:
    """Folder Greengrass unzips an artifact into: the file name without its extension."""
    name = artifact_uri.rstrip("/").rsplit("/", 1)[-1]
    if not name.lower().endswith(".zip"):
        raise ValueError(f"artifact URI must name a .zip file, got {artifact_uri!r}")
    return name[: -len(".zip")]


def render_recipe(
    kind: Kind,
    *,
    component_name: str,
    component_version: str,
    artifact_uri: str,
    model_component_name: str | None = None,
    model_version_requirement: str | None = None,
    configuration: dict[str, Any] | None = None,
    author: str = DEFAULT_AUTHOR,
) -> dict[str, Any]:
    """The recipe of ``kind`` as a dict, placeholders filled, ready for CreateComponentVersion.

    ``configuration`` is merged (top-level keys) over the template's DefaultConfiguration.
    """
    values = {
        "{COMPONENT_NAME}": component_name,
        "{COMPONENT_VERSION}": component_version,
        "{COMPONENT_AUTHOR}": author,
        "{ARTIFACT_URI}": artifact_uri,
        "{ARTIFACT_NAME}": _artifact_name(artifact_uri),
    }
    if kind == "inference":
        if not model_component_name:
            raise ValueError("the inference recipe needs model_component_name")
        values["{MODEL_COMPONENT_NAME}"] = model_component_name
        values["{MODEL_VERSION_REQUIREMENT}"] = model_version_requirement or DEFAULT_MODEL_VERSION_REQUIREMENT
    text = recipe_template(kind)
    for key, value in values.items():
        text = text.replace(key, value)
    recipe = yaml.safe_load(text)
    if configuration:
        conf = recipe.setdefault("ComponentConfiguration", {}).setdefault("DefaultConfiguration", {})
        conf.update(copy.deepcopy(configuration))
    return recipe


#: The artifact URI GDK's own build systems write into ``greengrass-build/recipes``; ``gdk component
#: publish`` replaces it with ``s3://{bucket}-{region}-{account}/{name}/{version}/{file}``, the
#: bucket being gdk-config.json's ``publish.bucket`` with the region and account appended.
GDK_ARTIFACT_URI = "s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/{file}"
GDK_BUILD_DIR = "greengrass-build"

_MODEL_VERSION = re.compile(r"^1\.0\.([1-9][0-9]*)$")


def gdk_config(component_dir: Path) -> tuple[str, dict[str, Any]]:
    """The one component of a folder's ``gdk-config.json``: its name and settings."""
    config = json.loads((Path(component_dir) / "gdk-config.json").read_text())
    ((name, spec),) = config["component"].items()
    return name, spec


def gdk_build(kind: Kind, component_dir: Path) -> Path:
    """Do what ``gdk component build`` runs as the custom build command; return the artifact's path.

    Why it must agree with gdk-config.json: GDK creates ``greengrass-build/artifacts/<name>/<the
    config's version>/`` before the build and ``gdk component publish`` uploads that folder under
    the config's version. So the config states the version the pipeline would publish — for the
    inference component the artifact's content hash — and a config that says anything else is an
    error here, not a component that differs from the pipeline's under a reused version.
    """
    component_dir = Path(component_dir)
    name, spec = gdk_config(component_dir)
    version = str(spec["version"])
    if kind == "model":
        if not _MODEL_VERSION.match(version):
            raise ValueError(
                f"{component_dir / 'gdk-config.json'}: version {version!r} is not a model version "
                "1.0.<registry version>, the form the pipeline publishes"
            )
        data = model_artifact(component_dir / "model", OPTIONAL_MODEL_FILES)
        model_name = None
    else:
        data = inference_artifact()
        built = inference_version(data)
        if version != built:
            raise ValueError(
                f"{component_dir / 'gdk-config.json'}: version is {version!r} but the inference code "
                f'hashes to {built!r}; set "version": "{built}" (the version is the artifact\'s '
                "content hash, as the pipeline publishes it)"
            )
        model_name, _ = gdk_config(COMPONENTS_DIR / "model")
    file_name = f"{kind}.zip"
    recipe = render_recipe(
        kind,
        component_name=name,
        component_version=version,
        artifact_uri=GDK_ARTIFACT_URI.format(file=file_name),
        model_component_name=model_name,
        author=spec["author"],
    )
    out = component_dir / GDK_BUILD_DIR
    (out / "recipes").mkdir(parents=True, exist_ok=True)
    artifact_dir = out / "artifacts" / name / version
    artifact_dir.mkdir(parents=True, exist_ok=True)
    (artifact_dir / file_name).write_bytes(data)
    (out / "recipes" / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    return artifact_dir / file_name


def main(argv: list[str]) -> int:
    """``python ../build.py gdk model|inference`` from the component folder, as GDK runs it.

    A wrong config is a message and exit status 1, not a traceback: GDK shows the command's output
    and stops the build on a non-zero exit.
    """
    if len(argv) != 2 or argv[0] != "gdk" or argv[1] not in ("model", "inference"):
        print("usage: python build.py gdk model|inference  (run from the component folder)", file=sys.stderr)
        return 2
    kind: Kind = "model" if argv[1] == "model" else "inference"
    try:
        artifact = gdk_build(kind, Path.cwd())
    except (ValueError, FileNotFoundError) as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    print(f"built {artifact.relative_to(Path.cwd())}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
