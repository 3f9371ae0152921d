"""Finding a Chromium that Playwright can drive, and launching it (no browser is ever downloaded).

Debian's ``chromium`` (scripts/setup installs it) or ``$MLOPS_EDGE_CHROMIUM``. Ubuntu's package
is a snap stub that cannot run in a container (the CodeBuild test step): it is found on the PATH
but fails ``--version``, and the browser tests then skip with that reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

CHROMIUM_ENV = "MLOPS_EDGE_CHROMIUM"
#: As the machine notes give them for root in a container: no sandbox, no GPU, no background
#: traffic (the closed network refuses it), a fresh profile per launch (Playwright's default).
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@dataclass(frozen=True)
class Found:
    path: str | None
    reason: str  # why there is none, or the version found


def find_chromium(env: dict[str, str] | None = None) -> Found:
    env = dict(os.environ if env is None else env)
    given = env.get(CHROMIUM_ENV)
    candidates = (
        [given]
        if given
        else [shutil.which(n, path=env.get("PATH")) for n in ("chromium", "chromium-browser")]
    )
    candidates = [c for c in candidates if c]
    if not candidates:
        return Found(
            None,
            f"no Chromium: `chromium` is not installed (scripts/setup installs Debian's; or set {CHROMIUM_ENV})",
        )
    problems = []
    for path in candidates:
        try:
            done = subprocess.run(
                [path, "--version"], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            problems.append(f"{path}: {exc}")
            continue
        text = (done.stdout + done.stderr).strip()
        if done.returncode == 0 and "Chromium" in text:
            return Found(path, text)
        problems.append(
            f"{path} --version: {text.splitlines()[0] if text else 'exit ' + str(done.returncode)}"
        )
    return Found(None, "no runnable Chromium (a snap stub cannot run in a container): " + "; ".join(problems))
