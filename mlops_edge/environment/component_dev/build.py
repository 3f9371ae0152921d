"""`component build`: the working tree's component in GDK's layout, under a dev version.

Why not ``components.build.gdk_build`` as it is: it insists that ``gdk-config.json`` states the
version the pipeline would publish (the artifact's content hash), which is exactly what a working
tree being edited does not do. Everything else is its code: the artifact bytes
(``inference_artifact``/``model_artifact``), the recipe (``render_recipe``), the names
(``gdk_config``) and the layout (``greengrass-build/recipes/recipe.yaml`` +
``greengrass-build/artifacts/<name>/<version>/<file>``).

How versions are chosen (:func:`dev_version`): the inference component gets
``<release>-dev.g<10 hex>``, where ``<release>`` is the version the pipeline would publish for the
same code (``1.0.<content hash>``) and the hex is a SHA-256 over the recipe (without its version and
artifact URIs) and every artifact's bytes. So the same build is the same version (deploying it again
reuses it), any edit of code *or* recipe is a new one (Greengrass versions are immutable), and a
dev version is a semver pre-release: it never satisfies a range such as ``>=1.0.0 <2.0.0`` and
never sorts above the release it came from. The model component keeps its release version
``1.0.<registry version>`` instead: the inference recipe depends on it by such a range, which a
pre-release would not meet, and its bytes are fixed by the registry anyway.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from components import build
from pipeline.ml.model_files import OPTIONAL_MODEL_FILES

Kind = Literal["inference", "model"]
KINDS: tuple[Kind, ...] = ("inference", "model")
RELEASE = re.compile(r"^(\d+\.\d+\.\d+)(?:[-+].*)?$")
MODEL_RELEASE = re.compile(r"^1\.0\.[1-9][0-9]*$")
RECIPE_SUFFIXES = (".yaml", ".yml", ".json")


class ComponentDevError(Exception):
    """Something the user can fix: a bad build directory, recipe, option or target."""


@dataclass(frozen=True)
class Built:
    """A component ready to publish: its recipe (artifact URIs still GDK's placeholders) and bytes."""

    kind: Kind
    recipe: dict[str, Any]
    #: file name -> bytes, one per artifact URI of the recipe
    artifacts: dict[str, bytes]
    recipe_dir: Path | None = None
    artifact_dir: Path | None = None

    @property
    def name(self) -> str:
        return str(self.recipe["ComponentName"])

    @property
    def version(self) -> str:
        return str(self.recipe["ComponentVersion"])


def component_names(prefix: str | None = None) -> dict[Kind, str]:
    """{kind: component name}: gdk-config.json's names, or ``<prefix>.Model``/``<prefix>.Inference``
    (the pipeline names its components ``<component_prefix>.<Kind>``)."""
    names: dict[Kind, str] = {}
    for kind in KINDS:
        name, _ = build.gdk_config(build.COMPONENTS_DIR / kind)
        names[kind] = f"{prefix}.{name.rsplit('.', 1)[1]}" if prefix else name
    return names


def artifact_file(uri: str) -> str:
    """The file name an artifact URI ends in (what the artifact directory holds)."""
    return str(uri).rstrip("/").rsplit("/", 1)[-1]


def _artifact_entries(recipe: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for m in recipe.get("Manifests") or [] for a in (m.get("Artifacts") or []) if a.get("URI")]


def dev_version(recipe: dict[str, Any], artifacts: dict[str, bytes]) -> str:
    """``<release>-dev.g<hex>`` of a recipe and its artifacts (see the module docstring)."""
    found = RELEASE.match(str(recipe.get("ComponentVersion") or ""))
    if not found:
        raise ComponentDevError(
            f"recipe version {recipe.get('ComponentVersion')!r} is not a semantic version major.minor.patch"
        )
    neutral = copy.deepcopy(recipe)
    neutral.pop("ComponentVersion", None)
    for artifact in _artifact_entries(neutral):
        artifact["URI"] = artifact_file(artifact["URI"])
        artifact.pop("Digest", None)
        artifact.pop("Algorithm", None)
    digest = hashlib.sha256(json.dumps(neutral, sort_keys=True, default=str).encode())
    for name in sorted(artifacts):
        digest.update(f"\0{name}\0".encode() + hashlib.sha256(artifacts[name]).digest())
    return f"{found.group(1)}-dev.g{digest.hexdigest()[:10]}"


def versioned(kind: Kind, recipe: dict[str, Any], artifacts: dict[str, bytes]) -> dict[str, Any]:
    """The recipe under the version it is published as: a dev version, or the model's release."""
    recipe = copy.deepcopy(recipe)
    if kind == "model":
        if not MODEL_RELEASE.match(str(recipe.get("ComponentVersion"))):
            raise ComponentDevError(
                f"model component version {recipe.get('ComponentVersion')!r} is not 1.0.<registry version>: "
                "the inference component requires the model by the range >=1.0.0 <2.0.0"
            )
        return recipe
    recipe["ComponentVersion"] = dev_version(recipe, artifacts)
    return recipe


def _model_version(model_dir: Path, given: str | None) -> str:
    if given:
        return given
    try:
        manifest = json.loads((model_dir / "model.json").read_text())
    except (OSError, ValueError) as exc:
        raise ComponentDevError(
            f"{model_dir / 'model.json'}: cannot read the model manifest ({exc})"
        ) from exc
    version = manifest.get("model_version")
    if not version:
        raise ComponentDevError(
            f"{model_dir / 'model.json'} has no model_version (the registry's, stamped by the pipeline); "
            "build it with `mlops-edge component build model --version 1.0.<n>`"
        )
    return str(version)


def build_component(
    kind: Kind,
    *,
    out_dir: Path | None = None,
    model_dir: Path | None = None,
    model_version: str | None = None,
    prefix: str | None = None,
) -> Built:
    """Build ``kind`` from the working tree into ``out_dir`` (default: GDK's
    ``components/<kind>/greengrass-build``): ``recipes/recipe.yaml`` + ``artifacts/<name>/<version>/``."""
    if kind not in KINDS:
        raise ComponentDevError(f"unknown component {kind!r}: choose inference or model")
    names = component_names(prefix)
    file_name = f"{kind}.zip"
    uri = build.GDK_ARTIFACT_URI.format(file=file_name)
    if kind == "inference":
        data = build.inference_artifact()
        release = build.inference_version(data)
    else:
        if model_dir is None:
            raise ComponentDevError("component build model needs --model-dir (an exported model directory)")
        try:
            data = build.model_artifact(Path(model_dir), OPTIONAL_MODEL_FILES)
        except FileNotFoundError as exc:
            raise ComponentDevError(str(exc)) from exc
        release = _model_version(Path(model_dir), model_version)
    recipe = build.render_recipe(
        kind,
        component_name=names[kind],
        component_version=release,
        artifact_uri=uri,
        model_component_name=names["model"],
    )
    recipe = versioned(kind, recipe, {file_name: data})
    out = Path(out_dir) if out_dir else build.COMPONENTS_DIR / kind / build.GDK_BUILD_DIR
    recipe_dir, artifact_root = out / "recipes", out / "artifacts"
    target = artifact_root / names[kind] / str(recipe["ComponentVersion"])
    recipe_dir.mkdir(parents=True, exist_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    (target / file_name).write_bytes(data)
    (recipe_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    return Built(kind, recipe, {file_name: data}, recipe_dir, artifact_root)


def _recipes(recipe_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    if not recipe_dir.is_dir():
        raise ComponentDevError(f"--recipe-dir {recipe_dir}: no such directory")
    found = []
    for path in sorted(recipe_dir.iterdir()):
        if path.suffix.lower() not in RECIPE_SUFFIXES or not path.is_file():
            continue
        try:
            recipe = yaml.safe_load(path.read_text())
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ComponentDevError(f"{path}: not a readable YAML/JSON recipe ({exc})") from exc
        if (
            not isinstance(recipe, dict)
            or not recipe.get("ComponentName")
            or not recipe.get("ComponentVersion")
        ):
            raise ComponentDevError(f"{path}: not a recipe (it needs ComponentName and ComponentVersion)")
        found.append((path, recipe))
    if not found:
        raise ComponentDevError(f"--recipe-dir {recipe_dir}: no recipe (*.yaml, *.yml, *.json) in it")
    return found


def _find_artifact(artifact_dir: Path, name: str, version: str, file_name: str) -> Path:
    """GDK / greengrass-cli layout ``<dir>/<name>/<version>/<file>``, else any single match below."""
    exact = artifact_dir / name / version / file_name
    if exact.is_file():
        return exact
    matches = sorted(p for p in artifact_dir.rglob(file_name) if p.is_file())
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ComponentDevError(f"--artifact-dir {artifact_dir}: no {file_name} (looked for {exact} first)")
    raise ComponentDevError(
        f"--artifact-dir {artifact_dir}: {len(matches)} files named {file_name} and none at {exact}"
    )


def load_build(
    recipe_dir: Path, artifact_dir: Path, *, kind: Kind = "inference", prefix: str | None = None
) -> Built:
    """A built component (``component build``'s output, GDK's or greengrass-cli's layout) with its
    artifacts, under the version it is published as (:func:`versioned`). With several recipes in
    the directory, the one named as ``kind`` is (``<prefix>.Inference`` / ``<prefix>.Model``)."""
    recipes = _recipes(Path(recipe_dir))
    if len(recipes) > 1:
        wanted = component_names(prefix)[kind]
        recipes = [(p, r) for p, r in recipes if r["ComponentName"] == wanted]
        if len(recipes) != 1:
            raise ComponentDevError(
                f"--recipe-dir {recipe_dir} holds several recipes and {len(recipes) or 'none'} of "
                f"component {wanted}; point it at a directory with one recipe"
            )
    _, recipe = recipes[0]
    if not Path(artifact_dir).is_dir():
        raise ComponentDevError(f"--artifact-dir {artifact_dir}: no such directory")
    artifacts = {}
    for entry in _artifact_entries(recipe):
        file_name = artifact_file(entry["URI"])
        version = str(recipe["ComponentVersion"])
        artifacts[file_name] = _find_artifact(
            Path(artifact_dir), str(recipe["ComponentName"]), version, file_name
        ).read_bytes()
    return Built(kind, versioned(kind, recipe, artifacts), artifacts, Path(recipe_dir), Path(artifact_dir))
