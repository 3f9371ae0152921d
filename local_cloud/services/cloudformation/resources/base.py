"""What every resource handler shares: the request it is given, the record it leaves, its events.

moto's CloudFormation engine resolves the template (intrinsics, parameters, mappings, order) and
asks one class per resource type to create, update or delete a resource. A handler here is such a
class: a direct ``CloudFormationModel`` subclass (moto finds them with ``__subclasses__()``) mixed
with :class:`Handler`, which turns moto's calling convention into three plain methods:

- ``create(request) -> Deployed(physical_id, attributes)``
- ``update(request, previous) -> Deployed`` (in place; the default replaces the resource)
- ``remove(previous)``

Handlers create resources by calling the local cloud's own APIs (:func:`client`, boto3 against
this endpoint), so a resource made from a template is exactly what the API makes, validated by the
same service models, and the record a handler leaves (``Resource``) holds only names and
attributes: it pickles on its own with the rest of the CloudFormation state.

:func:`bind` and :func:`client` live in ``endpoint.py``, the naming and tag helpers in
``naming.py``; both are re-exported here, where the handlers import them from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from botocore.exceptions import ClientError
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

from local_cloud.services.cloudformation.resources.endpoint import bind, client
from local_cloud.services.cloudformation.resources.naming import (
    generated_name,
    stack_name_of,
    tag_dict,
    tag_list,
)


class ResourceFailed(Exception):
    """A resource could not be created, updated or deleted; ``reason`` is what AWS's event says."""

    def __init__(self, logical_id: str, resource_type: str, reason: str) -> None:
        super().__init__(f"{logical_id} ({resource_type}): {reason}")
        self.logical_id = logical_id
        self.resource_type = resource_type
        self.reason = reason


class NotEmulated(Exception):
    """The template asks for something the local cloud does not do (a property, a value)."""


def error_message(exc: BaseException) -> str:
    """The service's own words for a failed call (as CloudFormation's events quote them)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return (
            f"{error.get('Message') or exc} (Service: {exc.operation_name}, Error Code: {error.get('Code')})"
        )
    if isinstance(exc, NotEmulated):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


@dataclass
class ResourceRequest:
    """One resource to create or update, its properties resolved for this account and region."""

    logical_id: str
    resource_type: str
    stack_id: str
    properties: dict[str, Any]
    account_id: str
    region: str
    #: The physical name: the template's name property, else one generated as CloudFormation does.
    name: str
    name_given: bool

    @property
    def stack_name(self) -> str:
        return stack_name_of(self.stack_id)

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account_id}:{resource}"


@dataclass
class Deployed:
    """What a handler made: the physical id ``Ref`` returns, and the ``Fn::GetAtt`` attributes."""

    physical_id: str
    attributes: dict[str, Any] = field(default_factory=dict)


def record_event(
    account_id: str,
    region: str,
    stack_id: str,
    logical_id: str,
    physical_id: str,
    resource_type: str,
    status: str,
    reason: str | None = None,
) -> None:
    """Add a resource event to the stack's events (what ``DescribeStackEvents`` lists)."""
    from moto.cloudformation.models import Event, cloudformation_backends

    stack = cloudformation_backends[account_id][region].stacks.get(stack_id)
    if stack is None:
        return
    stack.events.append(
        Event(
            stack_id=stack_id,
            stack_name=stack.name,
            logical_resource_id=logical_id,
            physical_resource_id=physical_id,
            resource_type=resource_type,
            resource_status=status,
            resource_status_reason=reason,
            resource_properties=None,
        )
    )


class Handler:
    """Mixin that adapts a handler's ``create/update/remove`` to moto's CloudFormationModel.

    Class attributes a handler sets:

    - ``TYPE``: the resource type (``AWS::Lambda::Function``);
    - ``NAME``: the property that names the resource ("" when it has none);
    - ``NAME_LIMIT`` / ``NAME_LOWER``: how a generated name is shaped;
    - ``ATTRIBUTES``: the ``Fn::GetAtt`` attributes it returns;
    - ``REPLACE_ON``: properties whose change replaces the resource (the name is always one);
    - ``PROPERTIES``: the properties it applies (any other one fails the resource, by name).
    """

    TYPE: ClassVar[str] = ""
    NAME: ClassVar[str] = ""
    NAME_LIMIT: ClassVar[int] = 64
    NAME_LOWER: ClassVar[bool] = False
    ATTRIBUTES: ClassVar[tuple[str, ...]] = ()
    REPLACE_ON: ClassVar[tuple[str, ...]] = ()
    #: Every property the handler applies; a template using another one is refused, not skipped.
    PROPERTIES: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, request: ResourceRequest, deployed: Deployed) -> None:
        self.logical_resource_id = request.logical_id
        self.cf_resource_type = request.resource_type
        self.stack_id = request.stack_id
        self.account_id = request.account_id
        self.region = request.region
        self.name = request.name
        self.name_given = request.name_given
        self.properties = request.properties
        self.physical_id = deployed.physical_id
        self.attributes = dict(deployed.attributes)

    # -- what a handler implements -----------------------------------------------------------------
    @classmethod
    def create(cls, request: ResourceRequest) -> Deployed:
        raise NotImplementedError

    @classmethod
    def update(cls, request: ResourceRequest, previous: Any) -> Deployed:
        """In-place update; handlers without one are replaced (see ``update_from_cloudformation_json``)."""
        raise NotImplementedError

    @classmethod
    def remove(cls, previous: Any) -> None:
        raise NotImplementedError

    @classmethod
    def check_properties(cls, properties: dict[str, Any]) -> None:
        unknown = sorted(set(properties) - cls.PROPERTIES)
        if unknown:
            raise NotEmulated(
                f"the local cloud does not apply {', '.join(unknown)} of {cls.TYPE} "
                f"(it applies {', '.join(sorted(cls.PROPERTIES))})"
            )

    # -- moto's CloudFormationModel interface ----------------------------------------------------
    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.NAME

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name not in self.attributes:
            raise UnformattedGetAttTemplateException()
        return self.attributes[attribute_name]

    def is_created(self) -> bool:
        return True

    @classmethod
    def _request(
        cls,
        *,
        logical_id: str,
        stack_id: str,
        properties: dict[str, Any],
        account_id: str,
        region: str,
        keep_name: str | None = None,
    ) -> ResourceRequest:
        given = bool(cls.NAME) and properties.get(cls.NAME) not in (None, "")
        if given:
            name = str(properties[cls.NAME])
        elif keep_name is not None:
            name = keep_name
        else:
            name = generated_name(
                stack_name_of(stack_id), logical_id, limit=cls.NAME_LIMIT, lower=cls.NAME_LOWER
            )
        return ResourceRequest(
            logical_id=logical_id,
            resource_type=cls.TYPE,
            stack_id=stack_id,
            properties=properties,
            account_id=account_id,
            region=region,
            name=name,
            name_given=given,
        )

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[override]
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Handler:
        request = cls._request(
            logical_id=kwargs["LogicalId"],
            stack_id=kwargs["StackId"],
            properties=dict(cloudformation_json.get("Properties") or {}),
            account_id=account_id,
            region=region_name,
        )
        return cls._create(request)

    @classmethod
    def _create(cls, request: ResourceRequest) -> Handler:
        def event(status: str, physical_id: str = "", reason: str | None = None) -> None:
            record_event(
                request.account_id,
                request.region,
                request.stack_id,
                request.logical_id,
                physical_id,
                cls.TYPE,
                status,
                reason,
            )

        event("CREATE_IN_PROGRESS")
        try:
            cls.check_properties(request.properties)
            deployed = cls.create(request)
        except ResourceFailed:
            raise
        except Exception as exc:
            reason = error_message(exc)
            event("CREATE_FAILED", reason=reason)
            raise ResourceFailed(request.logical_id, cls.TYPE, reason) from exc
        event("CREATE_COMPLETE", deployed.physical_id)
        return cls(request, deployed)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[override]
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Handler:
        previous: Handler = original_resource
        properties = dict(cloudformation_json.get("Properties") or {})
        request = cls._request(
            logical_id=previous.logical_resource_id,
            stack_id=previous.stack_id,
            properties=properties,
            account_id=account_id,
            region=region_name,
            keep_name=None if previous.name_given else previous.name,
        )
        replace = request.name != previous.name or any(
            properties.get(key) != previous.properties.get(key) for key in cls.REPLACE_ON
        )
        if not replace:
            try:
                cls.check_properties(properties)
                deployed = cls.update(request, previous)
            except NotImplementedError:
                replace = True  # no in-place update for this type
            except Exception as exc:
                reason = error_message(exc)
                record_event(
                    account_id, region_name, request.stack_id, request.logical_id, previous.physical_id,
                    cls.TYPE, "UPDATE_FAILED", reason,
                )  # fmt: skip
                raise ResourceFailed(request.logical_id, cls.TYPE, reason) from exc
            else:
                record_event(
                    account_id, region_name, request.stack_id, request.logical_id, deployed.physical_id,
                    cls.TYPE, "UPDATE_COMPLETE",
                )  # fmt: skip
                return cls(request, deployed)
        # Replacement: the new resource first, then the old one goes (as CloudFormation's cleanup).
        if request.name_given and request.name == previous.name:
            reason = (
                "CloudFormation cannot update a stack when a custom-named resource requires replacing. "
                f"Rename {request.name} and update the stack again."
            )
            record_event(
                account_id, region_name, request.stack_id, request.logical_id, previous.physical_id,
                cls.TYPE, "UPDATE_FAILED", reason,
            )  # fmt: skip
            raise ResourceFailed(request.logical_id, cls.TYPE, reason)
        if not request.name_given:
            request.name = cls._request(
                logical_id=request.logical_id,
                stack_id=request.stack_id,
                properties=properties,
                account_id=account_id,
                region=region_name,
            ).name
        replacement = cls._create(request)
        previous.delete(account_id, region_name)
        return replacement

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[override]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        raise NotImplementedError(f"{cls.TYPE}: delete through the resource record")

    def delete(self, account_id: str, region_name: str) -> None:
        try:
            type(self).remove(self)
        except Exception as exc:
            if _not_found(exc):
                pass  # already gone: deleting it is done
            else:
                reason = error_message(exc)
                record_event(
                    account_id, region_name, self.stack_id, self.logical_resource_id, self.physical_id,
                    self.cf_resource_type, "DELETE_FAILED", reason,
                )  # fmt: skip
                raise ResourceFailed(self.logical_resource_id, self.cf_resource_type, reason) from exc
        record_event(
            account_id, region_name, self.stack_id, self.logical_resource_id, self.physical_id,
            self.cf_resource_type, "DELETE_COMPLETE",
        )  # fmt: skip


_NOT_FOUND = {
    "NoSuchEntity",
    "NoSuchBucket",
    "ResourceNotFoundException",
    "ResourceNotFound",
    "StateMachineDoesNotExist",
}


def _not_found(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in _NOT_FOUND


__all__ = [
    "Deployed",
    "Handler",
    "NotEmulated",
    "ResourceFailed",
    "ResourceRequest",
    "bind",
    "client",
    "error_message",
    "generated_name",
    "record_event",
    "stack_name_of",
    "tag_dict",
    "tag_list",
]
