"""The two cloud calls a deployment needs: recipes (greengrassv2) and artifact bytes (S3).

boto3 clients come from the standard environment (``AWS_ENDPOINT_URL``, ``AWS_REGION``,
credentials), so the same code reaches AWS or the local cloud; a passed-in client wins (tests).
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlparse

from ..exceptions import ArtifactDownloadError, CloudError, ResolutionError

PLATFORM = {"name": "linux", "attributes": {"os": "linux", "architecture": "amd64"}}


class Cloud:
    """Recipe resolution and artifact download."""

    def __init__(
        self, greengrass: Any | None = None, s3: Any | None = None, region: str | None = None
    ) -> None:
        self._gg = greengrass
        self._s3 = s3
        self._iot: Any = None
        self._region = region
        self._session: Any = None
        self._lock = threading.Lock()

    def _client(self, service: str) -> Any:
        """A client of one shared session: a session per client loads botocore's endpoint and
        default-configuration data twice, ~7 MB more in every core (measured for issue 12)."""
        import boto3
        from botocore.config import Config

        config = Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=5, read_timeout=60)
        with self._lock:  # a boto3 session is not safe to create clients from two threads at once
            if self._session is None:
                self._session = boto3.session.Session()
            session = self._session
            # the environment's region wins; the device's configured region is the fallback
            return session.client(service, config=config, region_name=session.region_name or self._region)

    @property
    def greengrass(self) -> Any:
        if self._gg is None:
            self._gg = self._client("greengrassv2")
        return self._gg

    @property
    def iot(self) -> Any:
        if self._iot is None:
            self._iot = self._client("iot")
        return self._iot

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = self._client("s3")
        return self._s3

    def fetch_recipe(self, name: str, version: str | None, requirements: dict[str, str]) -> bytes:
        """``resolve_component_candidates`` for one component; returns the recipe bytes."""
        from botocore.exceptions import BotoCoreError, ClientError

        candidate: dict[str, Any] = {"componentName": name, "versionRequirements": requirements}
        if version:
            candidate["componentVersion"] = version
        try:
            resp = self.greengrass.resolve_component_candidates(
                platform=PLATFORM, componentCandidates=[candidate]
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise ResolutionError(
                f"cannot resolve {name} {version or ''} {requirements}: {error.get('Code')}: {error.get('Message')}"
            ) from exc
        except BotoCoreError as exc:
            raise CloudError(f"greengrassv2 unreachable: {exc}") from exc
        for item in resp.get("resolvedComponentVersions", []):
            if item.get("componentName") == name:
                recipe = item.get("recipe")
                return recipe.read() if hasattr(recipe, "read") else recipe
        raise ResolutionError(f"the cloud resolved no version of {name}")

    def thing_groups(self, thing: str) -> set[str] | None:
        """The thing groups ``thing`` belongs to now (``iot:ListThingGroupsForThing``; greengrassv2
        has no public operation for it), None when the cloud cannot say, e.g. a role without the
        permission: the caller then keeps what it has rather than drop components."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            pages = self.iot.get_paginator("list_thing_groups_for_thing").paginate(thingName=thing)
            return {g["groupName"] for page in pages for g in page.get("thingGroups", [])}
        except (ClientError, BotoCoreError):
            return None

    def download(self, uri: str) -> bytes:
        """Bytes of an ``s3://bucket/key`` artifact."""
        from botocore.exceptions import BotoCoreError, ClientError

        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ArtifactDownloadError(f"unsupported artifact URI {uri!r} (only s3:// is supported)")
        try:
            return self.s3.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise ArtifactDownloadError(f"cannot download {uri}: {exc}") from exc
