"""Kubernetes resource quantities ("500m", "16Gi", "1.5", "2e3") as exact Decimals.

The ceilings arithmetic (a permit's ceiling minus what its workspaces already hold) must be
exact: floats would turn "0.1" + "0.2" into 0.30000000000000004 and refuse a request that fits.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# The canonical form accepted by the API server (apimachinery's resource.Quantity), minus the
# sign: ceilings and requests are never negative. Go's RE2 and Python's re both accept it.
QUANTITY_PATTERN = (
    r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_QUANTITY_RE = re.compile(QUANTITY_PATTERN)

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
}
_SPLIT_RE = re.compile(r"^([0-9.]+)(.*)$")


def is_quantity(value: object) -> bool:
    """True if ``value`` is a non-negative quantity the API server would accept."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return isinstance(value, str) and bool(_QUANTITY_RE.match(value))


def parse_quantity(value: str | int | Decimal) -> Decimal:
    """Parse a quantity into a Decimal in base units (cores, bytes, devices).

    >>> parse_quantity("500m"), parse_quantity("1Gi"), parse_quantity("2e3")
    (Decimal('0.500'), Decimal('1073741824'), Decimal('2E+3'))
    """
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"quantity must not be negative: {value}")
        return Decimal(value)
    if not isinstance(value, str) or not _QUANTITY_RE.match(value):
        raise ValueError(
            f"not a Kubernetes quantity: {value!r} (expected e.g. '500m', '4', '16Gi', '1.5T')")
    number, suffix = _SPLIT_RE.match(value).groups()  # type: ignore[union-attr]
    try:
        base = Decimal(number)
    except InvalidOperation as exc:  # pragma: no cover - the pattern guards this
        raise ValueError(f"not a Kubernetes quantity: {value!r}") from exc
    if suffix in _BINARY:
        return base * _BINARY[suffix]
    if suffix in _DECIMAL:
        return base * _DECIMAL[suffix]
    # An exponent: "2e3", "1.5E-2".
    return base * (Decimal(10) ** Decimal(suffix[1:]))


def format_quantity(value: Decimal, unit: str = "") -> str:
    """A compact human string for messages: CPU in cores ("1.5"), memory in Gi when whole."""
    if unit == "bytes":
        for suffix in ("Ti", "Gi", "Mi", "Ki"):
            scaled = value / _BINARY[suffix]
            if scaled == scaled.to_integral_value() and scaled >= 1:
                return f"{int(scaled)}{suffix}"
        return str(int(value)) if value == value.to_integral_value() else str(value)
    normalised = value.normalize()
    if normalised == normalised.to_integral_value():
        return str(int(normalised))
    milli = value * 1000
    if value < 1 and milli == milli.to_integral_value():
        return f"{int(milli)}m"
    return format(normalised, "f")
