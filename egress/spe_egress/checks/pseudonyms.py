"""The pseudonyms the identifier check looks for: given in the clear (a test, a CLI run) or,
as the gateway gets them from the cluster, only as SHA-256 digests (``spe_api.datasetvolume``:
one lower-case hex digest of each pseudonym per line). The gateway never holds a dataset's
pseudonyms themselves: a candidate token of an output is hashed and its digest looked up.

Matching is case-insensitive like the check's: a candidate is looked up as written, in lower
case and in upper case (the ingest's pseudonyms are upper-case base32, a researcher's output
may have them in any case).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Set

_DIGEST = re.compile(r"[0-9a-f]{64}")


def digest(value: str) -> str:
    """The lower-case hex SHA-256 of a pseudonym (UTF-8), as the dataset's Secret lists it."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def parse_digests(text: str) -> frozenset[str]:
    """The digests of a Secret's value: one per line; blank lines ignored; anything else
    (a raw pseudonym, a truncated digest) is refused, so a wrong publication is seen, not
    silently matched against nothing."""
    out = set()
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip().lower()
        if not line:
            continue
        if not _DIGEST.fullmatch(line):
            raise ValueError(f"line {n} is not a SHA-256 hex digest")
        out.add(line)
    return frozenset(out)


class PseudonymSet(Set):
    """A set of pseudonyms for ``token in ids``: clear ones (lower-cased) and digests.

    Iterating yields the clear ones only (what the check searches for literally); the digests
    are only ever compared against."""

    __slots__ = ("_clear", "_digests")

    def __init__(self, clear: Iterable[str] = (), digests: Iterable[str] = ()):
        self._clear = frozenset(i.strip().lower() for i in clear if i and i.strip())
        self._digests = frozenset(d.strip().lower() for d in digests if d and d.strip())

    @classmethod
    def of(cls, ids: "Iterable[str] | PseudonymSet | None") -> "PseudonymSet":
        if isinstance(ids, PseudonymSet):
            return ids
        return cls(clear=ids or ())

    def union(self, other: "PseudonymSet") -> "PseudonymSet":
        return PseudonymSet(self._clear | other._clear, self._digests | other._digests)

    @property
    def hashed_count(self) -> int:
        return len(self._digests)

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        if value.lower() in self._clear:
            return True
        if not self._digests:
            return False
        return any(digest(v) in self._digests for v in {value, value.lower(), value.upper()})

    def __iter__(self) -> Iterator[str]:
        return iter(self._clear)

    def __len__(self) -> int:
        return len(self._clear) + len(self._digests)

    def __repr__(self) -> str:  # never the digests' values in a log
        return f"PseudonymSet({len(self._clear)} clear, {len(self._digests)} hashed)"

    def __hash__(self) -> int:
        return hash((self._clear, self._digests))
