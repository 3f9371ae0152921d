"""``UpdateModelPackage`` as AWS documents it, patched into moto's SageMaker backend.

moto 5.2.5 serves the operation, but its backend assigns every field of the request to the
package, present or not: an update that leaves out ``CustomerMetadataProperties`` wipes the map
(so a bare ``update-model-package --model-approval-status Approved`` loses the ONNX links the
deploy-only execution needs), one that leaves out ``ModelApprovalStatus``, ``ApprovalDescription``
or ``AdditionalInferenceSpecificationsToAdd`` clears those, and ``CustomerMetadataPropertiesToRemove``
on a package without metadata is a 500. AWS updates only what the request carries (API reference,
``UpdateModelPackage``):

- ``CustomerMetadataProperties`` merges into the package's map (new keys added, given keys
  overwritten); ``CustomerMetadataPropertiesToRemove`` then removes keys (an absent key is no
  error). A package left with no metadata describes without the map (the shape's minimum is 1);
- ``ModelApprovalStatus``, ``ApprovalDescription`` change only when given; additional inference
  specifications are appended only when given.

The request is checked against the service model's constraints first, as AWS's front end does,
all violations in one ``ValidationException`` ("N validation errors detected: ...", Coral's
wording, SageMaker's lowerCamelCase member paths): the map has 1 to 50 entries, a key 1 to 128
characters and a value 1 to 256, both of letters, separators, digits and ``_ . : / = + - @``
(the pattern ``([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)``); the keys to remove obey the key's rules; an
approval description is at most 1,024 characters; the ARN is required. A member of the wrong JSON
type (a hand-made request; botocore checks types before sending) is a ``SerializationException``.

Not checked (not documented): a merged map over 50 entries, and a key both set and removed in one
request (here it is set, then removed, as moto orders it).

The patch stays in moto's backend, so moto still answers the request: the events provider's
observer (*SageMaker Model Package State Change*) and the persistence of moto's state see it as
before. :func:`patch_update_model_package` is applied once by the SageMaker provider.

``CreateModelPackage`` gets the same metadata checks (:func:`patch_create_model_package`); moto
stores any map. The rest of that request is left to moto.
"""

from __future__ import annotations

import inspect
import unicodedata
from collections.abc import Callable
from typing import Any

#: the service model's limits (``CustomerMetadataMap``, ``CustomerMetadataKey``/``Value``,
#: ``ApprovalDescription``)
MAX_ENTRIES = 50
MAX_KEY_CHARS = 128
MAX_VALUE_CHARS = 256
MAX_APPROVAL_DESCRIPTION_CHARS = 1024
_PUNCTUATION = frozenset("_.:/=+-@")
_PATTERN = r"^([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)${1,%d}"
#: the parameters of moto 5.2.5's backend method, which the patch replaces one for one
_MOTO_PARAMETERS = (
    "self",
    "model_package_arn",
    "model_approval_status",
    "approval_description",
    "customer_metadata_properties",
    "customer_metadata_properties_to_remove",
    "additional_inference_specifications_to_add",
)


def _allowed(text: str) -> bool:
    """``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*``: Python's ``re`` has no ``\\p{..}``, the categories do."""
    return all(unicodedata.category(ch)[0] in "LZN" or ch in _PUNCTUATION for ch in text)


def _string_constraints(text: str, max_chars: int) -> bool:
    """Whether one key or value satisfies its shape (length and pattern)."""
    return 1 <= len(text) <= max_chars and _allowed(text)


def _constraint_list(max_chars: int) -> str:
    """The bracketed constraints Coral lists for a member that fails one of them."""
    return (
        f"[Member must have length less than or equal to {max_chars}, "
        "Member must have length greater than or equal to 1, "
        f"Member must satisfy regular expression pattern: {_PATTERN % max_chars}]"
    )


def _java_map(values: dict[str, str]) -> str:
    """A map as AWS echoes it in a validation message (Java's ``toString``)."""
    return "{" + ", ".join(f"{k}={v}" for k, v in values.items()) + "}"


def metadata_violations(metadata: dict[str, str]) -> list[str]:
    """What SageMaker refuses in a ``CustomerMetadataProperties`` map, in its messages (none: [])."""
    at = f"Value '{_java_map(metadata)}' at 'customerMetadataProperties' failed to satisfy constraint: "
    violations = []
    if len(metadata) > MAX_ENTRIES:
        violations.append(at + f"Member must have length less than or equal to {MAX_ENTRIES}")
    if not metadata:
        violations.append(at + "Member must have length greater than or equal to 1")
    if not all(_string_constraints(k, MAX_KEY_CHARS) for k in metadata):
        violations.append(at + "Map keys must satisfy constraint: " + _constraint_list(MAX_KEY_CHARS))
    if not all(_string_constraints(v, MAX_VALUE_CHARS) for v in metadata.values()):
        violations.append(at + "Map value must satisfy constraint: " + _constraint_list(MAX_VALUE_CHARS))
    return violations


def _serialization_error(member: str, expected: str) -> Exception:
    from moto.sagemaker.exceptions import SagemakerClientError

    return SagemakerClientError("SerializationException", f"Expected {expected} at '{member}'")


def _checked_types(
    metadata: Any, to_remove: Any, description: Any
) -> tuple[dict[str, str] | None, list[str], str | None]:
    """The members as the service model types them, or a ``SerializationException``."""
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        raise _serialization_error("CustomerMetadataProperties", "a map of strings")
    if to_remove is not None and not (
        isinstance(to_remove, list) and all(isinstance(k, str) for k in to_remove)
    ):
        raise _serialization_error("CustomerMetadataPropertiesToRemove", "a list of strings")
    if description is not None and not isinstance(description, str):
        raise _serialization_error("ApprovalDescription", "a string")
    return metadata, list(to_remove or []), description


def validate_update(
    model_package_arn: Any,
    approval_description: Any = None,
    customer_metadata_properties: Any = None,
    customer_metadata_properties_to_remove: Any = None,
) -> None:
    """Raise AWS's ``ValidationException`` (all violations in one) for a request the service
    model refuses; ``SerializationException`` for a member of the wrong JSON type."""
    from moto.sagemaker.exceptions import ValidationError

    metadata, to_remove, description = _checked_types(
        customer_metadata_properties, customer_metadata_properties_to_remove, approval_description
    )
    violations = []
    if model_package_arn is None:
        violations.append(
            "Value null at 'modelPackageArn' failed to satisfy constraint: Member must not be null"
        )
    if description is not None and len(description) > MAX_APPROVAL_DESCRIPTION_CHARS:
        violations.append(
            f"Value '{description}' at 'approvalDescription' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_APPROVAL_DESCRIPTION_CHARS}"
        )
    if metadata is not None:
        violations.extend(metadata_violations(metadata))
    if not all(_string_constraints(k, MAX_KEY_CHARS) for k in to_remove):
        violations.append(
            f"Value '[{', '.join(to_remove)}]' at 'customerMetadataPropertiesToRemove' failed to "
            "satisfy constraint: Member must satisfy constraint: " + _constraint_list(MAX_KEY_CHARS)
        )
    if violations:
        count = len(violations)
        head = f"{count} validation error{'s' if count > 1 else ''} detected: "
        raise ValidationError(head + "; ".join(violations))


def merged_metadata(
    current: dict[str, str] | None, given: dict[str, str] | None, to_remove: list[str]
) -> dict[str, str] | None:
    """The package's map after an update: ``given`` merged in, then ``to_remove`` taken out;
    None when nothing is left (DescribeModelPackage then has no map, as for a package created
    without one)."""
    merged = {**(current or {}), **(given or {})}
    for key in to_remove:
        merged.pop(key, None)
    return merged or None


def update_model_package(
    backend: Any,
    model_package_arn: str,
    model_approval_status: str | None,
    approval_description: str | None,
    customer_metadata_properties: dict[str, str] | None,
    customer_metadata_properties_to_remove: list[str] | None,
    additional_inference_specifications_to_add: list[Any] | None,
) -> str:
    """moto's ``SageMakerModelBackend.update_model_package`` with AWS's semantics (module doc)."""
    from moto.sagemaker.exceptions import ValidationError

    validate_update(
        model_package_arn,
        approval_description,
        customer_metadata_properties,
        customer_metadata_properties_to_remove,
    )
    name = backend.model_package_name_mapping.get(model_package_arn, model_package_arn)
    package = backend.model_packages.get(name)
    if package is None:
        raise ValidationError(f"Model package {model_package_arn} not found")
    if model_approval_status is not None:
        package.set_model_approval_status(model_approval_status)  # moto checks the enum
    if approval_description is not None:
        package.approval_description = approval_description
    if additional_inference_specifications_to_add is not None:
        package.add_additional_inference_specifications(additional_inference_specifications_to_add)
    package.customer_metadata_properties = merged_metadata(
        package.customer_metadata_properties,
        customer_metadata_properties,
        list(customer_metadata_properties_to_remove or []),
    )
    package.modifications_done()
    return str(package.arn)


def patch_update_model_package() -> None:
    """Replace moto's backend method (idempotent). Refuses, naming it, a moto whose method takes
    other parameters: the patch would otherwise drop or misplace what moto's response parser
    passes it."""
    from moto.sagemaker.models import SageMakerModelBackend

    current: Callable[..., Any] = SageMakerModelBackend.update_model_package
    if getattr(current, "_local_cloud", False):
        return
    parameters = tuple(inspect.signature(current).parameters)
    if parameters != _MOTO_PARAMETERS:
        raise RuntimeError(
            "moto's SageMakerModelBackend.update_model_package moved: it takes "
            f"{parameters}, the local cloud's patch was written for {_MOTO_PARAMETERS}"
        )

    def patched(self: Any, *args: Any, **kwargs: Any) -> str:
        return update_model_package(self, *args, **kwargs)

    patched._local_cloud = True  # type: ignore[attr-defined]
    SageMakerModelBackend.update_model_package = patched  # type: ignore[method-assign]


def validate_create_metadata(customer_metadata_properties: Any) -> None:
    """CreateModelPackage's ``CustomerMetadataProperties`` against the service model, as
    :func:`validate_update` checks an update's: one ``ValidationException`` for every violation."""
    from moto.sagemaker.exceptions import ValidationError

    if customer_metadata_properties is None:
        return
    metadata, _, _ = _checked_types(customer_metadata_properties, None, None)
    violations = metadata_violations(metadata or {})
    if violations:
        count = len(violations)
        head = f"{count} validation error{'s' if count > 1 else ''} detected: "
        raise ValidationError(head + "; ".join(violations))


def patch_create_model_package() -> None:
    """Check the metadata before moto's backend method stores it (idempotent); refuses, naming it,
    a moto whose method no longer takes ``customer_metadata_properties``."""
    from moto.sagemaker.models import SageMakerModelBackend

    current: Callable[..., Any] = SageMakerModelBackend.create_model_package
    if getattr(current, "_local_cloud", False):
        return
    if "customer_metadata_properties" not in inspect.signature(current).parameters:
        raise RuntimeError(
            "moto's SageMakerModelBackend.create_model_package moved: it no longer takes "
            "customer_metadata_properties, which the local cloud's check reads"
        )

    def patched(self: Any, *args: Any, **kwargs: Any) -> str:
        validate_create_metadata(kwargs.get("customer_metadata_properties"))
        return current(self, *args, **kwargs)

    patched._local_cloud = True  # type: ignore[attr-defined]
    SageMakerModelBackend.create_model_package = patched  # type: ignore[method-assign]
