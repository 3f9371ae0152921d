"""Deploying the synthesized pipeline stack locally: synth (cold, cached) and deploy figures.

- **synth cold**: the CDK app run as ``cdk synth`` runs it, into an empty cache;
- **synth cached**: the same inputs again (the input hash is computed, nothing runs);
- **deploy create**: bootstrap, asset publishing and CreateStack on a fresh local cloud, until
  ``CREATE_COMPLETE`` and the verifier certificate is in its secret (what `mlops-edge run` waits for);
- **deploy unchanged**: the same assembly again after a restart on the same state directory
  (UpdateStack answers "No updates are to be performed");
- **deploy update**: an assembly with one function's timeout changed (UpdateStack of one function).

Prints a table; ``--json PATH`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from local_cloud import LocalCloud
from mlops_edge.environment.assembly import Assembly, synthesize
from mlops_edge.environment.deploy import STATE_MACHINE_OUTPUT, deploy_pipeline


def _deploy(cloud: LocalCloud, state: Path, cdk_out: Path) -> float:
    os.environ.update(cloud.env())
    started = time.perf_counter()
    deploy_pipeline(cache_dir=state / "cache", verifier=cloud.pipeline_identity, cdk_out=cdk_out)
    return time.perf_counter() - started


def measure() -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cold = synthesize(root / "assemblies")
        figures["synth_cold_s"] = cold.seconds
        figures["synth_cached_s"] = synthesize(root / "assemblies").seconds
        changed = root / "changed"
        shutil.copytree(cold.directory, changed)
        artifact = Assembly.read(changed).stack_with_output(STATE_MACHINE_OUTPUT)
        template = artifact.template()
        function = next(r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function")
        function["Properties"]["Timeout"] = int(function["Properties"]["Timeout"]) + 1
        artifact.template_path.write_text(json.dumps(template))
        state = root / "state"
        with LocalCloud(state / "cloud") as cloud:
            figures["cloud_start_s"] = cloud.startup_seconds
            figures["deploy_create_s"] = _deploy(cloud, state, cold.directory)
        with LocalCloud(state / "cloud") as cloud:
            figures["deploy_unchanged_s"] = _deploy(cloud, state, cold.directory)
            figures["deploy_update_s"] = _deploy(cloud, state, changed)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    saved = dict(os.environ)
    try:
        figures = measure()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    for name, value in figures.items():
        print(f"{name:20} {value:8.2f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
