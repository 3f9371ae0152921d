"""The function environment: per-deployment defaults the execution input may override.

The same names are set by the CDK stack on AWS and by the local deployment of the pipeline, so no
code path asks where it runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

#: Region's SageMaker XGBoost framework image (script mode); override per region with the env var.
DEFAULT_TRAINING_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


@dataclass(frozen=True)
class Settings:
    """Values every handler may need; empty strings mean "not configured"."""

    bucket: str = ""
    model_package_group: str = ""
    thing_group: str = ""
    component_prefix: str = "com.example.mlopsedge"
    artifact_prefix: str = "artifacts/"
    state_prefix: str = "state/"
    dataset_uri: str = ""
    validation_uri: str = ""
    training_image: str = DEFAULT_TRAINING_IMAGE
    training_instance_type: str = "ml.m5.large"
    sourcedir_uri: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str, default: str) -> str:
            return env.get(f"MLOPS_EDGE_{name}") or default

        defaults = cls()
        prefix = get("ARTIFACT_PREFIX", defaults.artifact_prefix)
        state = get("STATE_PREFIX", defaults.state_prefix)
        return cls(
            bucket=get("BUCKET", ""),
            model_package_group=get("MODEL_PACKAGE_GROUP", ""),
            thing_group=get("THING_GROUP", ""),
            component_prefix=get("COMPONENT_PREFIX", defaults.component_prefix),
            artifact_prefix=prefix if prefix.endswith("/") else prefix + "/",
            state_prefix=state if state.endswith("/") else state + "/",
            dataset_uri=get("DATASET_URI", ""),
            validation_uri=get("VALIDATION_URI", ""),
            training_image=get("TRAINING_IMAGE", defaults.training_image),
            training_instance_type=get("TRAINING_INSTANCE_TYPE", defaults.training_instance_type),
            sourcedir_uri=get("SOURCEDIR_URI", ""),
        )
