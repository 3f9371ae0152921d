"""What each handler returns that the state machine keeps (its ResultSelector keys).

A key missing from a handler's result would be a ``States.Runtime`` error, which no Catch can
handle, so the handlers' unit tests check their results against this table. No CDK import here.
"""

from __future__ import annotations

#: Keys of each handler's return value that the state machine keeps (its ResultSelector).
RESULT_KEYS: dict[str, tuple[str, ...]] = {
    "configure": ("config", "polls"),
    "export_onnx": (
        "onnx_uri",
        "manifest_uri",
        "golden_uri",
        "sha256",
        "task",
        "metrics",
        "parity",
        "quality",
    ),
    "register_model": ("model_package_arn", "model_package_version", "approval_status", "deploy", "model"),
    "publish_components": ("model", "inference", "deployable"),
    "check_components": ("model", "inference", "deployable"),
    "deploy": ("deployment_id", "thing_group", "target_arn", "devices", "components"),
    "check_deployment": ("status", "devices", "summary"),
    "verify_on_device": ("passed", "devices", "summary"),
    "promote": ("last_known_good_uri", "approval_status", "components"),
    "rollback": ("error", "cause", "action", "deployment_id", "components"),
}
