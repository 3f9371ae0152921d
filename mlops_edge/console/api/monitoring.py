"""``/api/monitoring``: the drift report of a model version, as `mlops-edge monitor --output json` has it.

The records (per scope, per feature: both normalized histograms on the baseline's buckets, the
distance and its threshold, the checks violated) come from :mod:`mlops_edge.report.monitoring`,
the same reader the command uses, so the page's charts and the terminal's table agree. The page
draws them itself (``static/monitoring.js``); this only reads S3, in a worker thread.
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.routing import Route

from mlops_edge.console.api.common import api
from mlops_edge.console.backend import Backend, ConsoleError, aws_errors

__all__ = ["routes"]


def monitoring(backend: Backend, model_version: str | None) -> dict[str, Any]:
    """The document of ``model_version`` (default: the newest judged) and the versions there are."""
    from mlops_edge.report.monitoring import MonitoringError, Where, load, monitoring_document, versions

    s3 = backend.client("s3")
    with aws_errors():
        where = Where(backend.bucket(), backend.state_prefix)
        try:
            document = monitoring_document(load(s3, where, model_version))
        except MonitoringError as exc:
            raise ConsoleError(str(exc), 404, code="NoMonitoringData") from exc
        document["versions"] = versions(s3, where)
    return document


def routes(backend: Backend) -> list[Route]:
    async def get_monitoring(request: Request) -> Any:
        version = request.query_params.get("model_version") or None
        return await to_thread.run_sync(monitoring, backend, version)

    return [Route("/api/monitoring", api(get_monitoring))]
