"""The function environment: per-deployment defaults the execution input may override.

One definition of the ``MLOPS_EDGE_*`` variables for the three sides that use them: the handlers
read them (:meth:`Settings.from_env`), and the CDK stack and the local deployment write them
(:meth:`Settings.to_env`), so a variable's name is written once and no code path asks where it runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

#: Every variable is this prefix plus the field's name in capitals (``bucket`` -> ``MLOPS_EDGE_BUCKET``).
ENV_PREFIX = "MLOPS_EDGE_"

#: The SageMaker XGBoost framework image (script mode) when ``MLOPS_EDGE_TRAINING_IMAGE`` is unset.
#: A deployed stack always sets the variable: the region's URI, from the SageMaker Python SDK at
#: synth time (infra/training.py). Only the local cloud leaves it unset, and it runs an image by
#: repository and tag with no registry (local_cloud/services/sagemaker/images.py), so no region's
#: registry account is copied here.
DEFAULT_TRAINING_IMAGE = "sagemaker-xgboost:1.7-1"


@dataclass(frozen=True)
class Settings:
    """Values every handler may need; empty strings mean "not configured"."""

    bucket: str = ""
    model_package_group: str = ""
    thing_group: str = ""
    #: The thing group a share-of-fleet rollout stage moves its devices into (the CDK app makes it).
    canary_thing_group: str = ""
    component_prefix: str = "com.example.mlopsedge"
    artifact_prefix: str = "artifacts/"
    state_prefix: str = "state/"
    dataset_uri: str = ""
    validation_uri: str = ""
    training_image: str = DEFAULT_TRAINING_IMAGE
    training_instance_type: str = "ml.m5.large"
    sourcedir_uri: str = ""
    #: Secrets Manager secret with the MQTT endpoint and certificate VerifyOnDevice connects with.
    mqtt_secret_id: str = ""
    #: The EventBridge rule that starts a retraining on fleet drift (Promote switches it per
    #: ``monitoring.retrain_on_drift``; infra/monitoring.py makes it).
    retraining_rule: str = ""

    @staticmethod
    def variable(field_name: str) -> str:
        """The environment variable that carries a field."""
        return ENV_PREFIX + field_name.upper()

    def to_env(self) -> dict[str, str]:
        """The variables of every configured (non-empty) field, as a function's environment."""
        return {self.variable(f.name): getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every field from its variable; an unset or empty variable keeps the default."""
        env = os.environ if env is None else env
        values = {f.name: env.get(cls.variable(f.name)) or f.default for f in fields(cls)}
        for name in ("artifact_prefix", "state_prefix"):  # key prefixes always end with a slash
            values[name] = values[name] if values[name].endswith("/") else values[name] + "/"
        return cls(**values)
