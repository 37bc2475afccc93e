from decimal import Decimal

import pytest

from spe_api.quantity import format_quantity, is_quantity, parse_quantity

pytestmark = pytest.mark.api


@pytest.mark.parametrize("text, expected", [
    ("1", Decimal(1)), (4, Decimal(4)), ("500m", Decimal("0.5")), ("1500m", Decimal("1.5")),
    ("0.1", Decimal("0.1")), (".5", Decimal("0.5")), ("1Ki", Decimal(1024)), ("16Gi", Decimal(16 * 2**30)),
    ("1Ti", Decimal(2**40)), ("1k", Decimal(1000)), ("2M", Decimal(2_000_000)), ("1G", Decimal(10**9)),
    ("2e3", Decimal(2000)), ("1.5E-2", Decimal("0.015")), ("100n", Decimal("1e-7")), ("7u", Decimal("7e-6")),
    ("1Ei", Decimal(2**60)), ("3P", Decimal(3 * 10**15)),
])
def test_parse(text, expected):
    assert parse_quantity(text) == expected
    assert is_quantity(text)


@pytest.mark.parametrize("bad", ["", "-1", "1.2.3", "Gi", "1gi", "1 Gi", "1KiB", "abc", "1e", True, -3, None, 1.5])
def test_refuses(bad):
    assert not is_quantity(bad)
    with pytest.raises(ValueError):
        parse_quantity(bad)


def test_exact_sums():
    # 0.1 + 0.2 must be exactly 0.3: a float would refuse a request that fits.
    assert parse_quantity("100m") + parse_quantity("200m") == parse_quantity("300m")


@pytest.mark.parametrize("value, unit, text", [
    (Decimal(8), "", "8"), (Decimal("1.5"), "", "1.5"), (Decimal("0.25"), "", "250m"),
    (Decimal(32 * 2**30), "bytes", "32Gi"), (Decimal(2**40), "bytes", "1Ti"), (Decimal(1536 * 2**20), "bytes", "1536Mi"),
    (Decimal(0), "bytes", "0"),
])
def test_format(value, unit, text):
    assert format_quantity(value, unit) == text
