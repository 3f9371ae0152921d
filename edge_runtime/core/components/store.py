"""The component store on disk: recipes, verified artifacts, unzipped artifacts.

Artifacts are downloaded to a staging file, their SHA-256 compared with the recipe's digest, and
only then moved into place and unzipped. A mismatch raises before anything is written where a
component could run it; an artifact already on disk is re-verified instead of re-downloaded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

from ..exceptions import ArtifactChecksumMismatch, ArtifactDownloadError
from .interpolation import Paths
from .recipe import Artifact, Recipe


def digest_b64(data: bytes) -> str:
    """Base64 SHA-256, the form Greengrass puts in ``Artifacts[].Digest``."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _check(artifact: Artifact, data: bytes, component: str) -> None:
    if not artifact.digest:
        return  # the cloud fills digests in; a recipe without one has nothing to check
    algorithm = (artifact.algorithm or "SHA-256").upper()
    if algorithm != "SHA-256":
        raise ArtifactDownloadError(f"{component}: unsupported digest algorithm {algorithm}")
    actual = digest_b64(data)
    if actual != artifact.digest:
        raise ArtifactChecksumMismatch(
            f"{component}: artifact {artifact.uri} has digest {actual}, recipe says {artifact.digest}"
        )


def _unzip(data_path: Path, target: Path) -> None:
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with zipfile.ZipFile(data_path) as zf:
        root = staging.resolve()
        for member in zf.infolist():
            dest = (staging / member.filename).resolve()
            if not str(dest).startswith(str(root) + os.sep) and dest != root:
                raise ArtifactDownloadError(f"zip entry escapes its folder: {member.filename}")
        zf.extractall(staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)


class ComponentStore:
    """Prepares component versions under the core root."""

    def __init__(self, paths: Paths, download: Callable[[str], bytes]) -> None:
        self.paths = paths
        self._download = download

    def save_recipe(self, recipe: Recipe) -> None:
        path = self.paths.recipe(recipe.name, recipe.version)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(recipe.raw, indent=1, sort_keys=True))

    def load_recipe_raw(self, name: str, version: str) -> dict | None:
        path = self.paths.recipe(name, version)
        return json.loads(path.read_text()) if path.is_file() else None

    def fetch_all(self, recipe: Recipe) -> dict[Artifact, bytes | Path]:
        """Download (or find on disk) and verify every artifact; writes nothing in place."""
        fetched: dict[Artifact, bytes | Path] = {}
        for artifact in recipe.artifacts:
            local = self.paths.artifacts(recipe.name, recipe.version) / artifact.file_name
            if local.is_file():
                try:
                    _check(artifact, local.read_bytes(), recipe.name)
                    fetched[artifact] = local
                    continue
                except ArtifactChecksumMismatch:
                    pass  # a stale or damaged copy: fetch again
            data = self._download(artifact.uri)
            _check(artifact, data, recipe.name)
            fetched[artifact] = data
        return fetched

    def install(self, recipe: Recipe, fetched: dict[Artifact, bytes | Path]) -> None:
        """Move verified artifacts into place and unzip those marked ``Unarchive: ZIP``."""
        art_dir = self.paths.artifacts(recipe.name, recipe.version)
        art_dir.mkdir(parents=True, exist_ok=True)
        for artifact, data in fetched.items():
            local = art_dir / artifact.file_name
            if not isinstance(data, Path):
                tmp = local.with_name(local.name + ".partial")
                tmp.write_bytes(data)
                tmp.replace(local)
            if artifact.unarchive == "ZIP":
                target = self.paths.decompressed(recipe.name, recipe.version) / artifact.unarchive_dir
                marker = target / ".mlops-edge-unarchived"
                if not marker.is_file() or marker.read_text() != (artifact.digest or ""):
                    try:
                        _unzip(local, target)
                    except zipfile.BadZipFile as exc:
                        raise ArtifactDownloadError(
                            f"{recipe.name}: {artifact.uri} is not a zip: {exc}"
                        ) from exc
                    marker.write_text(artifact.digest or "")
        self.save_recipe(recipe)

    def remove(self, name: str, version: str) -> None:
        """Delete a component version's artifacts and recipe (it was removed or replaced)."""
        shutil.rmtree(self.paths.artifacts(name, version), ignore_errors=True)
        shutil.rmtree(self.paths.decompressed(name, version), ignore_errors=True)
        self.paths.recipe(name, version).unlink(missing_ok=True)
