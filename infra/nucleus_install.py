"""The core device's first-boot script: Java and Python, then the Greengrass nucleus installer with
automatic provisioning (rendered here, apart from the instance construct, so tests read it as text).
"""

from __future__ import annotations

#: Where the nucleus installer is downloaded from (the documented release location).
NUCLEUS_RELEASES = "https://d2s8p88vqu9w66.cloudfront.net/releases"

#: The interpreter the inference component builds its venv with (its recipe's ``VenvPython``):
#: Amazon Linux 2023's own ``python3.11`` package, by absolute path. The nucleus runs lifecycle
#: scripts through ``sudo -E``, and sudo's ``secure_path`` (``/sbin:/bin:/usr/sbin:/usr/bin``),
#: not the service's PATH, decides what a bare ``python3`` finds: the OS's 3.9.
CORE_PYTHON = "/usr/bin/python3.11"
#: The AL2023 packages that provide :data:`CORE_PYTHON` with ``venv`` and ``pip``.
CORE_PYTHON_PACKAGES = ("python3.11", "python3.11-pip")


def nucleus_user_data(
    *,
    region: str,
    thing_name: str,
    thing_group_name: str,
    thing_policy_name: str,
    tes_role_name: str,
    tes_role_alias_name: str,
    nucleus_version: str,
) -> str:
    """The first-boot script: Java + Python 3.11, then the nucleus with automatic provisioning.

    Amazon Linux 2023's ``python3`` is 3.9, too old for the inference component's pinned numpy
    and onnxruntime; its ``python3.11`` package installs :data:`CORE_PYTHON`, which the
    component's recipe names by absolute path, and the script proves it can build a venv before
    the nucleus is installed. Nothing is put on a PATH: ``sudo`` would not look there. Idempotent:
    a second run does nothing once the nucleus is installed.
    """
    archive = (
        "greengrass-nucleus-latest.zip"
        if nucleus_version == "latest"
        else f"greengrass-{nucleus_version}.zip"
    )
    return "\n".join(
        [
            "#!/bin/bash",
            "set -euxo pipefail",
            "exec > >(tee -a /var/log/mlops-edge-setup.log) 2>&1",
            "if systemctl list-unit-files greengrass.service >/dev/null 2>&1 && [ -d /greengrass/v2 ]; then",
            "  echo 'Greengrass already installed'; exit 0",
            "fi",
            f"dnf install -y java-17-amazon-corretto-headless {' '.join(CORE_PYTHON_PACKAGES)} unzip",
            f"{CORE_PYTHON} -m venv --help >/dev/null",
            "mkdir -p /opt/greengrass-installer",
            f"curl -fsSL --retry 5 -o /opt/greengrass-installer/nucleus.zip {NUCLEUS_RELEASES}/{archive}",
            "unzip -q -o /opt/greengrass-installer/nucleus.zip -d /opt/greengrass-installer/GreengrassInstaller",
            # The inference component's accessControl and topics use {iot:thingName}; the nucleus
            # interpolates recipe variables in component configuration only when told to.
            "cat > /opt/greengrass-installer/config.yaml <<'EOF'",
            "services:",
            "  aws.greengrass.Nucleus:",
            "    configuration:",
            "      interpolateComponentConfiguration: true",
            "EOF",
            'java -Droot="/greengrass/v2" -Dlog.store=FILE \\',
            "  -jar /opt/greengrass-installer/GreengrassInstaller/lib/Greengrass.jar \\",
            f"  --aws-region {region} \\",
            f"  --thing-name {thing_name} \\",
            f"  --thing-group-name {thing_group_name} \\",
            f"  --thing-policy-name {thing_policy_name} \\",
            f"  --tes-role-name {tes_role_name} \\",
            f"  --tes-role-alias-name {tes_role_alias_name} \\",
            "  --component-default-user ggc_user:ggc_group \\",
            "  --provision true \\",
            "  --init-config /opt/greengrass-installer/config.yaml \\",
            "  --setup-system-service true",
            "",
        ]
    )
