"""The CDK app's cloud assembly (``cdk.out``): synthesized as ``cdk synth`` does, cached by its inputs.

Synthesis runs the app command of ``cdk.json`` in a child process with the CDK CLI's contract
(``CDK_OUTDIR``, ``CDK_CONTEXT_JSON``), so the local run deploys what ``cdk synth`` writes. It
costs tens of seconds (jsii, Node, cdk-nag), so the result is kept under a key made of everything
the app reads: the files ``cdk.json`` lists under ``watch`` (the CLI's own list of the app's
sources), ``cdk.json`` and ``cdk.context.json``, the context and settings given, and the installed
distributions (aws-cdk-lib, cdk-nag, the SageMaker SDK's image table...). Same key, same assembly.

The local synth is environment-agnostic (no account, no region): the local cloud resolves
``AWS::AccountId`` and ``AWS::Region`` at deploy time, as CloudFormation does.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
#: How many synthesized assemblies a cache keeps (the newest ones).
KEEP = 3
#: Settings read from the environment that would make the synth account- or region-specific.
_ENVIRONMENT_SETTINGS = (
    "CDK_DEFAULT_ACCOUNT",
    "CDK_DEFAULT_REGION",
    "MLOPS_EDGE_ACCOUNT",
    "MLOPS_EDGE_REGION",
)
#: Context of the local synth on top of cdk.json's: no account and no region (see module doc).
LOCAL_CONTEXT = {"account": "", "region": ""}


class AssemblyError(RuntimeError):
    """No usable cloud assembly: synthesis failed, or a given directory is not one."""


@dataclass(frozen=True)
class StackArtifact:
    """One stack of an assembly, as ``manifest.json`` describes it."""

    assembly: Path
    artifact_id: str
    properties: Mapping[str, Any]
    environment: str
    dependencies: tuple[str, ...]

    @property
    def stack_name(self) -> str:
        return str(self.properties.get("stackName") or self.artifact_id)

    @property
    def template_path(self) -> Path:
        return self.assembly / str(self.properties["templateFile"])

    def template(self) -> dict[str, Any]:
        return dict(json.loads(self.template_path.read_text()))


@dataclass(frozen=True)
class Assembly:
    directory: Path
    manifest: Mapping[str, Any]

    @classmethod
    def read(cls, directory: Path) -> Assembly:
        manifest = directory / "manifest.json"
        if not manifest.is_file():
            raise AssemblyError(
                f"{directory} is not a cloud assembly (no manifest.json): give the cdk.out of a synth"
            )
        return cls(directory.resolve(), json.loads(manifest.read_text()))

    @property
    def artifacts(self) -> Mapping[str, Any]:
        return dict(self.manifest.get("artifacts") or {})

    def stacks(self) -> list[StackArtifact]:
        return [
            StackArtifact(
                assembly=self.directory,
                artifact_id=artifact_id,
                properties=artifact.get("properties") or {},
                environment=str(artifact.get("environment", "")),
                dependencies=tuple(artifact.get("dependencies") or ()),
            )
            for artifact_id, artifact in self.artifacts.items()
            if artifact.get("type") == "aws:cloudformation:stack"
        ]

    def asset_manifests(self, stack: StackArtifact) -> list[Path]:
        """The ``*.assets.json`` files a stack depends on (its assets, its template)."""
        return [
            self.directory / str(self.artifacts[dep]["properties"]["file"])
            for dep in stack.dependencies
            if self.artifacts.get(dep, {}).get("type") == "cdk:asset-manifest"
        ]

    def stack_with_output(self, output: str) -> StackArtifact:
        """The one stack whose template declares ``output`` (e.g. the pipeline's state machine)."""
        found = [s for s in self.stacks() if output in (s.template().get("Outputs") or {})]
        if len(found) != 1:
            names = ", ".join(s.stack_name for s in found) or "none"
            raise AssemblyError(f"{self.directory}: expected one stack with output {output}, found {names}")
        return found[0]


# -- synthesis -------------------------------------------------------------------------------------
def _cdk_json(root: Path) -> dict[str, Any]:
    return dict(json.loads((root / "cdk.json").read_text()))


def _excluded(relative: str, patterns: list[str]) -> bool:
    parts = relative.split("/")
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        if fnmatch.fnmatch(relative, pattern) or any(fnmatch.fnmatch(part, bare) for part in parts):
            return True
    return relative.endswith(".pyc")


def app_sources(root: Path = REPO_ROOT) -> Iterator[Path]:
    """Every file the CDK app reads, by ``cdk.json``'s ``watch`` include/exclude lists."""
    watch = _cdk_json(root).get("watch") or {}
    excludes = list(watch.get("exclude") or [])
    seen: set[Path] = set()
    for pattern in watch.get("include") or []:
        candidates = (root / pattern[:-3]).rglob("*") if pattern.endswith("/**") else root.glob(pattern)
        for path in candidates:
            if path.is_file() and path not in seen and not _excluded(str(path.relative_to(root)), excludes):
                seen.add(path)
    for name in ("cdk.json", "cdk.context.json"):
        if (root / name).is_file():
            seen.add(root / name)
    yield from sorted(seen)


def synth_context(root: Path = REPO_ROOT) -> dict[str, Any]:
    """What the CLI hands the app as ``CDK_CONTEXT_JSON``: cdk.context.json, then local settings."""
    context_file = root / "cdk.context.json"
    cached = json.loads(context_file.read_text()) if context_file.is_file() else {}
    return {**cached, **LOCAL_CONTEXT}


def _synth_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _ENVIRONMENT_SETTINGS}


def input_key(root: Path = REPO_ROOT) -> str:
    """Hash of everything the synth reads: sources, context, settings, installed distributions."""
    digest = hashlib.sha256()
    for path in app_sources(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(json.dumps(synth_context(root), sort_keys=True).encode())
    # where the broker listens (the local cloud's MLOPS_EDGE_MQTT_*, a new port at each start, put
    # in this process's environment before the deploy) is no input of the app: with it in the key,
    # every `mlops-edge run` synthesized again (15-75 s)
    settings = {
        k: v
        for k, v in _synth_environ().items()
        if k.startswith(("MLOPS_EDGE_", "CDK_")) and not k.startswith("MLOPS_EDGE_MQTT_")
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    distributions = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions())
    digest.update("\n".join(distributions).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Synthesized:
    directory: Path
    key: str
    cached: bool
    seconds: float


def synthesize(
    cache_dir: Path, *, root: Path = REPO_ROOT, log: Callable[[str], None] = lambda _: None
) -> Synthesized:
    """The app's assembly for the current inputs: from the cache, else synthesized into it."""
    started = time.perf_counter()
    key = input_key(root)
    target = cache_dir / f"assembly-{key[:16]}"
    if (target / "manifest.json").is_file():
        os.utime(target)  # most recently used: kept by the pruning below
        return Synthesized(target, key, True, time.perf_counter() - started)
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = cache_dir / f".staging-{key[:16]}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    app = _cdk_json(root).get("app")
    if not app:
        raise AssemblyError(f"{root / 'cdk.json'} has no 'app' command")
    log(f"synthesizing the CDK app ({app}) into {target}")
    environ = {
        **_synth_environ(),
        "CDK_OUTDIR": str(staging),
        "CDK_CONTEXT_JSON": json.dumps(synth_context(root)),
    }
    result = subprocess.run(
        app, shell=True, cwd=root, env=environ, capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or not (staging / "manifest.json").is_file():
        shutil.rmtree(staging, ignore_errors=True)
        tail = (result.stderr or result.stdout)[-3000:]
        raise AssemblyError(f"cdk synth ({app}) failed with exit code {result.returncode}:\n{tail}")
    try:
        staging.rename(target)
    except OSError:  # another process synthesized the same inputs meanwhile: keep theirs
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / "manifest.json").is_file():
            raise
    _prune(cache_dir, keep=KEEP)
    return Synthesized(target, key, False, time.perf_counter() - started)


def _prune(cache_dir: Path, keep: int) -> None:
    assemblies = sorted(cache_dir.glob("assembly-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in assemblies[keep:]:
        shutil.rmtree(old, ignore_errors=True)
