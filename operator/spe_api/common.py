"""Types shared by every kind: the model base, names, quantities, conditions, references.

Python attributes are snake_case; the manifests (and the CRD schemas) use the Kubernetes
camelCase names through aliases. Parse with ``Kind.from_manifest(body)``, write with
``obj.to_manifest()`` / ``status.to_patch()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field,
                      WithJsonSchema)
from pydantic.alias_generators import to_camel

from .quantity import QUANTITY_PATTERN, is_quantity, parse_quantity

GROUP = "spe.ehds.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# --- names ----------------------------------------------------------------------------------

DNS1123_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1123_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A label value: what kwok/GPU feature discovery put in ``nvidia.com/gpu.product`` ("NVIDIA-A30").
LABEL_VALUE_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
SHA256_PATTERN = r"^[a-f0-9]{64}$"
# An OCI image reference pinned by digest: "registry/repo[:tag]@sha256:<64 hex>".
IMAGE_DIGEST_PATTERN = r"^[a-z0-9]([-a-z0-9._:/]*[a-z0-9])?(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@sha256:[a-f0-9]{64}$"
# An identity subject as Keycloak/OIDC issues it: a username, an e-mail or a UUID.
SUBJECT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$"
SUBJECT_MAX_LENGTH = 254  # an e-mail address's maximum length (RFC 5321)

DNS1123Label = Annotated[str, Field(pattern=DNS1123_LABEL_PATTERN, min_length=1, max_length=63)]
DNS1123Subdomain = Annotated[str, Field(pattern=DNS1123_SUBDOMAIN_PATTERN, min_length=1, max_length=253)]
Subject = Annotated[str, Field(pattern=SUBJECT_PATTERN, min_length=1, max_length=SUBJECT_MAX_LENGTH)]
GpuModel = Annotated[str, Field(
    pattern=LABEL_VALUE_PATTERN, min_length=1, max_length=63,
    description="GPU model as the node label nvidia.com/gpu.product names it, e.g. NVIDIA-A30, NVIDIA-L40S.")]
# Exact patterns carry only a maxLength (bounding CEL cost): a minLength would be reported
# instead of the pattern, which is the message that says what is wrong.
Sha256 = Annotated[str, Field(pattern=SHA256_PATTERN, max_length=64)]


# --- CEL ------------------------------------------------------------------------------------

def cel(rule: str, message: str, *, reason: str | None = None, field_path: str | None = None,
        message_expression: str | None = None) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry."""
    entry = {"rule": rule, "message": message}
    if message_expression:
        entry["messageExpression"] = message_expression
    if reason:
        entry["reason"] = reason
    if field_path:
        entry["fieldPath"] = field_path
    return entry


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    """``json_schema_extra`` carrying CEL rules, for ``Field(...)`` or a model's config."""
    return {"x-kubernetes-validations": list(rules)}


# The all-zero digest marks a not-yet-pinned image in the project's own manifests (images/README.md);
# a Tool that names it names no image anyone built or scanned, so it is refused.
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64
PLACEHOLDER_DIGEST_MESSAGE = ("the image is pinned to the all-zero placeholder digest: pin the digest of the "
                              "image that was built and scanned (registry/repository@sha256:<64 hex>)")


def _not_placeholder_digest(ref: str) -> str:
    if ref.endswith("@" + PLACEHOLDER_DIGEST):
        raise ValueError(PLACEHOLDER_DIGEST_MESSAGE)
    return ref


ImageRef = Annotated[str, Field(pattern=IMAGE_DIGEST_PATTERN, max_length=512, json_schema_extra=validations(
    cel(f"!self.endsWith('@{PLACEHOLDER_DIGEST}')", PLACEHOLDER_DIGEST_MESSAGE))),
    AfterValidator(_not_placeholder_digest)]


IMMUTABLE_REASON = "FieldValueForbidden"


def immutable(what: str) -> dict[str, str]:
    return cel("self == oldSelf", f"{what} is immutable: delete and re-create the object to change it",
               reason=IMMUTABLE_REASON)


def unique_items(what: str, key: str | None = None) -> dict[str, str]:
    """Rule: the list's items (or their ``key`` field) are unique."""
    if key:
        return cel(f"self.all(x, self.exists_one(y, y.{key} == x.{key}))",
                   f"{what} must be unique: remove the duplicate entry")
    return cel("self.all(x, self.exists_one(y, y == x))",
               f"{what} must be unique: remove the duplicate entry")


# --- quantities -----------------------------------------------------------------------------

def _quantity_to_str(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _check_quantity(value: str) -> str:
    if not is_quantity(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 4, 16Gi)")
    return value


def _check_positive(value: str) -> str:
    if parse_quantity(value) <= 0:
        raise ValueError(f"{value!r} must be a positive quantity (greater than zero, e.g. 500m, 4, 16Gi)")
    return value


# Bounds the CEL cost of the quantity rules (the longest sensible quantity is far shorter).
QUANTITY_MAX_LENGTH = 64


def _quantity_schema(*, positive: bool) -> dict[str, Any]:
    """int-or-string with the API server's own pattern for strings, and a CEL rule for what the
    pattern cannot see: an integer's sign (``size: -100`` is an integer, not a string) and zero."""
    if positive:
        rule = cel("type(self) == int ? self > 0 : (!isQuantity(self) || quantity(self).isGreaterThan(quantity('0')))",
                   "must be a positive quantity (greater than zero, e.g. 500m, 4, 16Gi)")
    else:  # a string's sign is the pattern's job (it has none)
        rule = cel("type(self) != int || self >= 0", "must be a non-negative quantity (e.g. 0, 500m, 16Gi)")
    return {
        "x-kubernetes-int-or-string": True,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": QUANTITY_PATTERN,
        "maxLength": QUANTITY_MAX_LENGTH,
        "x-kubernetes-validations": [rule],
    }


# A resource quantity: in the schema int-or-string with the API server's own pattern; in
# Python always the string form (parse with ``spe_api.quantity.parse_quantity``).
# ``Quantity`` is what is requested or sized (a CPU, a volume): greater than zero.
# ``Amount`` is a ceiling or a count of what is held: zero is meaningful ("none").
Quantity = Annotated[
    str,
    BeforeValidator(_quantity_to_str),
    AfterValidator(_check_quantity),
    AfterValidator(_check_positive),
    WithJsonSchema(_quantity_schema(positive=True)),
]
Amount = Annotated[
    str,
    BeforeValidator(_quantity_to_str),
    AfterValidator(_check_quantity),
    WithJsonSchema(_quantity_schema(positive=False)),
]


# --- object names -----------------------------------------------------------------------------
# The API server checks only that a custom resource's name is a DNS-1123 subdomain (dots
# allowed, up to 253). The operator derives children from the names, so each kind's name must
# fit what its children need (see each kind's NAME_RULES).

DNS1035_LABEL_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"


def name_is_dns1123_label(why: str) -> dict[str, str]:
    return cel(f"self.metadata.name.matches('{DNS1123_LABEL_PATTERN}')",
               "metadata.name must be a DNS-1123 label (lower-case letters, digits and '-', starting and "
               f"ending with a letter or digit; no dots): {why}", reason="FieldValueInvalid")


def name_is_dns1035_label(why: str) -> dict[str, str]:
    return cel(f"self.metadata.name.matches('{DNS1035_LABEL_PATTERN}')",
               "metadata.name must be a DNS-1035 label (lower-case letters, digits and '-', starting with a "
               f"letter and ending with a letter or digit; no dots): {why}", reason="FieldValueInvalid")


def name_not_reserved(reserved: tuple[str, ...], why: str) -> dict[str, str]:
    listing = ", ".join(f"'{n}'" for n in reserved)
    return cel(f"!(self.metadata.name in [{listing}])",
               f"metadata.name {listing} is reserved: {why}; choose another name",
               reason="FieldValueForbidden")


# --- model base -----------------------------------------------------------------------------

class SpeModel(BaseModel):
    """Base of every spec/status part: camelCase aliases, unknown fields ignored on read."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_attribute_docstrings=False,
        validate_default=False,
        validate_assignment=True,
    )

    def to_dict(self) -> dict[str, Any]:
        """The manifest form: camelCase keys, JSON types, unset optionals left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def nested(model: type[BaseModel], description: str, **kwargs: Any) -> Any:
    """A sub-object field that defaults to its own defaults, in Python and on the API server.

    The schema gets ``default: {}`` so the API server fills the nested defaults in too.
    """
    extra = kwargs.pop("json_schema_extra", {}) or {}
    return Field(default_factory=model, description=description,
                 json_schema_extra={"default": {}, **extra}, **kwargs)


def plain(value: Any) -> Any:
    """Deep-copy a Mapping (e.g. a Kopf ``Body``) into plain dicts and lists."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(SpeModel):
    """One aspect of the object's state, in the Kubernetes API conventions' shape."""

    type: str = Field(
        description="Condition type in CamelCase, e.g. Ready, PermitActive.",
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        max_length=316)
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        description="A machine-readable CamelCase reason for the last transition.",
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", min_length=1, max_length=1024)
    message: str = Field("", description="What happened and, when something is wrong, what to do about it.",
                         max_length=32768)
    observed_generation: int | None = Field(
        None, ge=0, description="The .metadata.generation the condition was computed from.")
    last_transition_time: datetime = Field(
        description="When the status last changed (not when the condition was last checked).")


class SecretKeyRef(SpeModel):
    """A key of a Secret."""

    name: DNS1123Subdomain = Field(description="Name of the Secret.")
    namespace: DNS1123Label | None = Field(
        None, description="Namespace of the Secret; defaults to the operator's namespace (spe-system).")
    key: str = Field("key", description="Key within the Secret's data.", min_length=1, max_length=253,
                     pattern=r"^[-._a-zA-Z0-9]+$")


class ObjectMeta(SpeModel):
    """The parts of metadata the components read (the API server owns the rest)."""

    name: str = ""
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    creation_timestamp: datetime | None = None
    deletion_timestamp: datetime | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Status(SpeModel):
    """Fields every kind's status has."""

    observed_generation: int | None = Field(
        None, ge=0, description="The .metadata.generation the operator last reconciled.")
    conditions: list[Condition] = Field(
        default_factory=list, max_length=32,
        description="Current state in detail; see each condition's reason and message.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]})
    message: str | None = Field(
        None, max_length=4096, description="One sentence for `kubectl get`/`describe`: why the phase is what it is.")

    def to_patch(self) -> dict[str, Any]:
        """The body of a status patch: ``{"status": {...}}``."""
        return {"status": self.to_dict()}

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)


class PrinterColumn(dict):
    """An ``additionalPrinterColumns`` entry."""

    def __init__(self, name: str, json_path: str, type_: str = "string", description: str = "",
                 priority: int = 0, format_: str | None = None):
        super().__init__(name=name, type=type_, jsonPath=json_path)
        if description:
            self["description"] = description
        if priority:
            self["priority"] = priority
        if format_:
            self["format"] = format_


AGE_COLUMN = PrinterColumn("Age", ".metadata.creationTimestamp", "date")


class CustomResource(SpeModel):
    """Base of the five kinds. Subclasses set the class variables the CRD generator reads."""

    KIND: ClassVar[str]
    PLURAL: ClassVar[str]
    SINGULAR: ClassVar[str]
    SHORT_NAMES: ClassVar[tuple[str, ...]]
    NAMESPACED: ClassVar[bool]
    PRINTER_COLUMNS: ClassVar[tuple[PrinterColumn, ...]] = ()
    # CEL rules on the whole object (they may read metadata.name).
    ROOT_VALIDATIONS: ClassVar[tuple[dict[str, str], ...]] = ()
    NAME_MAX_LENGTH: ClassVar[int] = 253

    api_version: Literal["spe.ehds.io/v1alpha1"] = API_VERSION
    kind: str
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)

    @classmethod
    def from_manifest(cls, body: Mapping[str, Any]) -> Self:
        """Parse a manifest, a Kopf ``Body`` or an API response into the model.

        Raises ``pydantic.ValidationError`` when the object does not fit the model (which the
        API server's schema normally prevents).
        """
        data = plain(body)
        data.setdefault("kind", cls.KIND)
        data.setdefault("apiVersion", API_VERSION)
        return cls.model_validate(data)

    def to_manifest(self) -> dict[str, Any]:
        """The manifest form (without the server-owned metadata fields)."""
        out = self.to_dict()
        md = {k: v for k, v in out.get("metadata", {}).items()
              if k in ("name", "namespace", "labels", "annotations") and v not in ({}, None)}
        out["metadata"] = md
        out.pop("status", None)
        return out

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str | None:
        return self.metadata.namespace

    @property
    def generation(self) -> int | None:
        return self.metadata.generation


def utc(dt: datetime) -> datetime:
    """Make naive datetimes UTC (manifests without offset are UTC in Kubernetes)."""
    from datetime import timezone
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
