"""The optional files of an exported model, beside model.onnx: one list for the export, the
registry, PublishComponents and GDK's build of the model component (``components/build.py``).

Why a module of its own: the registry's and PublishComponents' functions need the list, and
importing it from ``lambdas.core.export`` would load pandas and scikit-learn (3-4 s) into their
cold starts. Why in ``pipeline``: ``components/build.py`` stands below ``lambdas`` on the import
map, and GDK's build must ship the same files as PublishComponents.
"""

from __future__ import annotations

#: Files uploaded beside model.onnx when the export wrote them (paths relative to its out dir):
#: the training baseline devices count their monitoring windows on (docs/monitoring.md), and
#: whatever other optional artifacts a model may carry. ExportOnnx uploads each at the same
#: relative path beside model.onnx, RegisterModel records its SHA-256 in the package's metadata
#: (``file:<name>``) and PublishComponents puts it, digest checked, into the model component's zip.
#: ``model.accel.onnx``: the accelerated variant (pipeline.ml.perfect_trees), present only when it
#: passed the export's parity gate; devices with the mlops_edge.trees library run it.
OPTIONAL_MODEL_FILES: tuple[str, ...] = (
    "baseline/statistics.json",
    "baseline/constraints.json",
    "model.accel.onnx",
)
