"""CloudFormation: moto's engine, with the local cloud's resource handlers and AWS's checks.

moto's CloudFormation resolves templates well (intrinsics, parameters, mappings, exports) but skips
what it has no handler for, drops properties it does not model and writes some resources where
the service's own API never looks. Here:

- every CloudFormation request first makes sure the local handlers are registered and the saved
  stacks restored (lazily: moto's engine costs seconds of imports, which a run without a deploy
  never pays);
- ``CreateStack`` / ``UpdateStack`` are checked as CloudFormation checks them before it starts:
  resource types the local cloud cannot create are refused, all of them listed (except the
  documented ``NOT_EMULATED`` types), then capabilities, SSM parameters and ``Rules``;
- a resource that fails rolls the stack back as CloudFormation does: a failed create deletes
  what was made (``ROLLBACK_COMPLETE``), a failed update goes back to the previous template
  (``UPDATE_ROLLBACK_COMPLETE``); the call itself succeeds and ``DescribeStackEvents`` says why;
- ``CreateChangeSet`` gets the type check; every other action falls through to moto unchanged.

Stacks persist under ``<state dir>/cloudformation/`` (moto's saved state does not hold them).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlparse
from xml.sax.saxutils import escape

from werkzeug.wrappers import Request, Response

from local_cloud.context import ServerContext
from local_cloud.services.cloudformation import template as checks
from local_cloud.services.cloudformation.exceptions import (
    AlreadyExists,
    CloudFormationError,
    ValidationError,
)

LOG = logging.getLogger(__name__)
_XMLNS = "http://cloudformation.amazonaws.com/doc/2010-05-15/"
_SERVED = {"CreateStack", "UpdateStack", "DeleteStack"}
_CHECKED = {"CreateChangeSet"}
#: Statuses from which CloudFormation refuses an update.
_NOT_UPDATABLE = {
    "CREATE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED",
    "DELETE_IN_PROGRESS", "DELETE_FAILED", "UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS",
    "UPDATE_ROLLBACK_FAILED",
}  # fmt: skip


def _members(form: dict[str, str], prefix: str) -> list[dict[str, str]]:
    """``Prefix.member.N.Field`` entries of a query-protocol request, in order."""
    items: dict[int, dict[str, str]] = {}
    head = f"{prefix}.member."
    for key, value in form.items():
        if key.startswith(head):
            index, _, field = key[len(head) :].partition(".")
            items.setdefault(int(index), {})[field] = value
    return [items[i] for i in sorted(items)]


def _scalars(form: dict[str, str], prefix: str) -> list[str]:
    return [item[""] for item in _members(form, prefix) if "" in item]


def _xml_response(action: str, result: str) -> Response:
    body = (
        f'<{action}Response xmlns="{_XMLNS}"><{action}Result>{result}</{action}Result>'
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></{action}Response>"
    )
    return Response(body, status=200, mimetype="text/xml")


def _error(exc: CloudFormationError) -> Response:
    body = (
        f'<ErrorResponse xmlns="{_XMLNS}"><Error><Type>Sender</Type><Code>{exc.code}</Code>'
        f"<Message>{escape(exc.message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )
    return Response(body, status=exc.status, mimetype="text/xml")


class CloudFormationProvider:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.root = ctx.state_dir / "cloudformation"
        self._ready = False
        self._lock = threading.RLock()

    # -- lifecycle -------------------------------------------------------------------------------
    def _ensure_ready(self) -> None:
        """Register the handlers and restore the saved stacks, once, before moto sees a request."""
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            started = time.monotonic()
            from local_cloud.services.cloudformation import resources

            resources.register(self.ctx)
            saved = self.root / "stacks.pickle"
            if saved.exists():
                from moto.cloudformation.models import cloudformation_backends

                from local_cloud import persistence

                try:
                    persistence.load_backends(cloudformation_backends, saved.read_bytes())
                except Exception:
                    LOG.exception("cannot restore CloudFormation stacks from %s", saved)
            self._ready = True
            LOG.info(
                "CloudFormation ready in %.2f s (handlers registered, stacks restored)",
                time.monotonic() - started,
            )

    def stop(self) -> None:
        """Save the stacks (only if CloudFormation was used: an untouched engine holds none)."""
        try:
            self.save()
        except Exception:
            LOG.exception("cannot save CloudFormation stacks")

    def save(self) -> None:
        """Durably save the stacks (atomic + fsync); the dispatch layer calls it after every
        mutating CloudFormation request, before its response."""
        if not self._ready:
            return
        from moto.cloudformation.models import cloudformation_backends

        from local_cloud import persistence

        with self._lock:
            data = persistence.dump_backends(cloudformation_backends)
        persistence.atomic_write(self.root / "stacks.pickle", data)

    @property
    def backend(self) -> Any:
        from moto.cloudformation.models import cloudformation_backends

        return cloudformation_backends[self.ctx.account_id][self.ctx.region]

    # -- routing ---------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response | None:
        if "/cloudformation/aws4_request" not in request.headers.get("Authorization", ""):
            return None
        self._ensure_ready()
        form = {
            k: v[0]
            for k, v in parse_qs(request.get_data(cache=True).decode(), keep_blank_values=True).items()
        }
        action = form.get("Action", "")
        if action not in _SERVED | _CHECKED:
            return None
        started = time.monotonic()
        try:
            with self._lock:
                if action == "CreateChangeSet":
                    self._checked_template(form, capabilities=None)
                    return None
                if action == "CreateStack":
                    return _xml_response(action, f"<StackId>{self.create_stack(form)}</StackId>")
                if action == "UpdateStack":
                    return _xml_response(action, f"<StackId>{self.update_stack(form)}</StackId>")
                self.delete_stack(form["StackName"])
                return _xml_response(action, "")
        except CloudFormationError as exc:
            return _error(exc)
        finally:
            LOG.info("%s %s in %.2f s", action, form.get("StackName"), time.monotonic() - started)

    # -- the template ------------------------------------------------------------------------------
    def _template_text(self, form: dict[str, str]) -> str:
        if form.get("TemplateBody"):
            return form["TemplateBody"]
        url = form.get("TemplateURL")
        if not url:
            raise ValidationError("Either Template URL or Template Body must be specified.")
        parsed = urlparse(url)
        host, path = parsed.netloc, parsed.path.lstrip("/")
        if host.startswith("s3.") or host.startswith("s3-") or not host.endswith("amazonaws.com"):
            bucket, _, key = path.partition("/")  # path style (https://s3.<region>.amazonaws.com/b/k)
        else:
            bucket, key = host.split(".", 1)[0], path  # virtual-hosted style
        s3 = self.ctx.client("s3")
        try:
            return str(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
        except Exception as exc:
            raise ValidationError(
                f"TemplateURL must reference a valid S3 object to which you have access: {url}"
            ) from exc

    def _checked_template(
        self, form: dict[str, str], *, capabilities: list[str] | None, text: str | None = None
    ) -> tuple[str, dict[str, Any], dict[str, str]]:
        """Template text, parsed template and the given parameters, once CloudFormation's checks pass."""
        from local_cloud.services.cloudformation.resources import HANDLERS

        text = self._template_text(form) if text is None else text
        template = checks.parse(text)
        checks.check_types(template, HANDLERS)
        given = {
            p["ParameterKey"]: p["ParameterValue"]
            for p in _members(form, "Parameters")
            if "ParameterValue" in p
        }
        if capabilities is not None:
            checks.check_capabilities(template, capabilities)
            resolved = checks.resolve_parameters(template, given, self._read_ssm)
            checks.check_rules(template, resolved)
        return text, template, given

    def _read_ssm(self, name: str) -> str | None:
        ssm = self.ctx.client("ssm")
        try:
            return str(ssm.get_parameter(Name=name)["Parameter"]["Value"])
        except ssm.exceptions.ParameterNotFound:
            return None

    # -- operations --------------------------------------------------------------------------------
    def create_stack(self, form: dict[str, str]) -> str:
        from moto.cloudformation.exceptions import AlreadyExistsException

        name = form["StackName"]
        text, _, given = self._checked_template(form, capabilities=_scalars(form, "Capabilities"))
        if any(s.name == name for s in self.backend.stacks.values()):
            raise AlreadyExists(f"Stack [{name}] already exists")
        tags = {t["Key"]: t["Value"] for t in _members(form, "Tags")}
        try:
            stack = self.backend.create_stack(
                name=name, template=text, parameters=given, tags=tags, role_arn=form.get("RoleARN")
            )
        except AlreadyExistsException as exc:
            raise AlreadyExists(str(exc)) from exc
        except Exception as exc:
            stack = next((s for s in self.backend.stacks.values() if s.name == name), None)
            if stack is None:  # refused before any resource: nothing to roll back
                raise ValidationError(str(exc)) from exc
            self._roll_back_create(stack, exc, keep=form.get("OnFailure") == "DO_NOTHING")
        return str(stack.stack_id)

    def update_stack(self, form: dict[str, str]) -> str:
        name = form["StackName"]
        stack = self._get_stack(name)
        if stack.status in _NOT_UPDATABLE:
            raise ValidationError(
                f"Stack:{stack.stack_id} is in {stack.status} state and can not be updated."
            )
        text = stack.template if form.get("UsePreviousTemplate") == "true" else None
        text, _, given = self._checked_template(form, capabilities=_scalars(form, "Capabilities"), text=text)
        previous_parameters = dict(stack.parameters or {})
        # Tags not given keep the stack's; given tags that differ are an update (UpdateStack: "If
        # you don't specify this parameter, CloudFormation doesn't modify the stack's tags").
        tags = {t["Key"]: t["Value"] for t in _members(form, "Tags")} or None
        if (
            checks.parse(text) == stack.template_dict
            and given == {k: v for k, v in previous_parameters.items() if k in given}
            and set(given) == set(previous_parameters)
            and (tags is None or tags == dict(stack.tags or {}))
        ):
            raise ValidationError("No updates are to be performed.")
        previous_text = stack.template
        try:
            self.backend.update_stack(
                name=name,
                template=text,
                role_arn=form.get("RoleARN"),
                parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in given.items()],
                tags=tags,
            )
        except Exception as exc:
            self._roll_back_update(stack, exc, previous_text, previous_parameters)
        return str(stack.stack_id)

    def delete_stack(self, name: str) -> None:
        stack = next((s for s in self.backend.stacks.values() if name in (s.name, s.stack_id)), None)
        if stack is None:
            return  # as on AWS: deleting a stack that does not exist succeeds
        try:
            self.backend.delete_stack(stack.stack_id)
        except Exception as exc:
            LOG.warning("deleting stack %s failed: %s", stack.name, exc)
            self.backend.stacks[stack.stack_id] = stack
            stack.status = "DELETE_FAILED"
            stack.stack_status_reason = _reason(exc)
            stack._add_stack_event("DELETE_FAILED", resource_status_reason=_reason(exc))

    def _get_stack(self, name: str) -> Any:
        stack = next((s for s in self.backend.stacks.values() if name in (s.name, s.stack_id)), None)
        if stack is None:
            raise ValidationError(f"Stack with id {name} does not exist")
        return stack

    # -- rollbacks ---------------------------------------------------------------------------------
    def _roll_back_create(self, stack: Any, exc: BaseException, *, keep: bool) -> None:
        """Delete what the failed create made (Retain kept), newest first, as CloudFormation does."""
        from local_cloud.services.cloudformation.resources import Handler

        reason = _reason(exc)
        LOG.warning("creating stack %s failed: %s", stack.name, reason)
        stack.stack_status_reason = reason
        self._freeze(stack)
        if keep:
            stack.status = "CREATE_FAILED"
            stack._add_stack_event("CREATE_FAILED", resource_status_reason=reason)
            return
        stack.status = "ROLLBACK_IN_PROGRESS"
        stack._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason=reason)
        parsed = stack.resource_map._parsed_resources
        resources = stack.template_dict.get("Resources", {})
        made = [(k, r) for k, r in parsed.items() if isinstance(r, Handler)]
        failed = False
        for logical_id, resource in reversed(made):
            if resources.get(logical_id, {}).get("DeletionPolicy") == "Retain":
                continue
            try:
                resource.delete(self.ctx.account_id, self.ctx.region)
            except Exception:
                LOG.exception("rollback of %s failed", logical_id)
                failed = True
            else:
                parsed.pop(logical_id, None)
                stack.resource_map._resource_json_map.pop(logical_id, None)
        stack.status = "ROLLBACK_FAILED" if failed else "ROLLBACK_COMPLETE"
        stack._add_stack_event(stack.status)

    def _freeze(self, stack: Any) -> None:
        """A stack whose create failed keeps only what was made: moto's resource map creates a
        missing resource whenever something reads it (DescribeStacks evaluating the outputs,
        ListStackResources), so the rest of the template, the outputs and the exports go."""
        from moto.cloudformation.parsing import OutputMap

        resource_map = stack.resource_map
        made = resource_map._parsed_resources
        resource_map._resource_json_map = {
            k: v for k, v in resource_map._resource_json_map.items() if k in made
        }
        stack.output_map = OutputMap(resource_map, {}, stack.stack_id)
        for name, export in list(self.backend.exports.items()):
            if export.exporting_stack_id == stack.stack_id:
                self.backend.exports.pop(name)

    def _roll_back_update(
        self, stack: Any, exc: BaseException, previous_text: str, previous_parameters: dict[str, Any]
    ) -> None:
        """Update back to the previous template and parameters."""
        reason = _reason(exc)
        LOG.warning("updating stack %s failed: %s", stack.name, reason)
        stack.stack_status_reason = reason
        stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
        stack._add_stack_event("UPDATE_ROLLBACK_IN_PROGRESS", resource_status_reason=reason)
        try:
            stack.template = previous_text
            stack._parse_template()
            stack.resource_map.update(stack.template_dict, previous_parameters or None)
            stack.output_map = stack._create_output_map()
        except Exception:
            LOG.exception("rolling back stack %s failed", stack.name)
            stack.status = "UPDATE_ROLLBACK_FAILED"
        else:
            stack.status = "UPDATE_ROLLBACK_COMPLETE"
        stack._add_stack_event(stack.status)


def _reason(exc: BaseException) -> str:
    from local_cloud.services.cloudformation.resources import ResourceFailed

    if isinstance(exc, ResourceFailed):
        return f"The following resource(s) failed: [{exc.logical_id}]. {exc.resource_type}: {exc.reason}"
    return f"{type(exc).__name__}: {exc}"


__all__ = ["CloudFormationProvider"]
