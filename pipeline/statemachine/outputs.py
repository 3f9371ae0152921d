"""What each handler returns that the state machine keeps (its ResultSelector keys).

A key missing from a handler's result would be a ``States.Runtime`` error, which no Catch can
handle, so the handlers' unit tests check their results against this table. No CDK import here.

Nothing kept here grows with the fleet: per-device records stay in S3 (``detail``); the deploy,
check and verify results carry counts, the detail's ``devices_uri`` and at most ``MAX_NAMED``
devices by name, so the document stays far below Step Functions' 256 KiB at any fleet size.
"""

from __future__ import annotations

#: Keys of each handler's return value that the state machine keeps (its ResultSelector).
RESULT_KEYS: dict[str, tuple[str, ...]] = {
    "configure": ("config", "polls", "rollout"),
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
    "publish_components": ("model", "inference", "deployable", "next_poll_at"),
    "check_components": ("model", "inference", "deployable", "next_poll_at"),
    "deploy": (
        "deployment_id",
        "thing_group",
        "target_arn",
        "device_count",
        "devices_uri",
        "components",
        "stage",
        "started_at",
        "verify",
    ),
    "check_deployment": ("status", "summary", "counts", "unfinished", "devices_uri", "next_poll_at"),
    "verify_on_device": ("passed", "summary", "counts", "devices_uri"),
    "evaluate_stage": ("index", "count", "stages", "passed", "more", "bake_s", "cause", "devices_uri"),
    "promote": ("last_known_good_uri", "approval_status", "components", "retraining_rule"),
    "rollback": ("error", "cause", "action", "deployment_id", "components", "rollout"),
}
