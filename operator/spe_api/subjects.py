"""One stable subject for every comparison of people.

The SPE names a person by the identity provider's user name: Keycloak's ``preferred_username``
(what the permit's ``members[].subject`` and ``exportPolicy.reviewers`` hold, and the user name
JupyterHub gets from the same realm). The researcher API learns it from the hub
(``GET /hub/api/user`` → ``name``), the reviewer page from the verified ID token
(``preferred_username``, never the opaque ``sub``, which is a different name for the same
person). Keycloak keeps user names lower case and JupyterHub lower-cases its own, so every
comparison goes through :func:`subject_key` (trimmed, case-folded): "Rita" and "rita" are one
person, whichever system spelled the name -- in the admission webhook, the permit model, the
hub's listing and the gateway alike.
"""

from __future__ import annotations

from typing import Iterable


def subject_key(name: str | None) -> str:
    return (name or "").strip().casefold()


def same_subject(a: str | None, b: str | None) -> bool:
    ka = subject_key(a)
    return bool(ka) and ka == subject_key(b)


def subject_in(name: str | None, names: Iterable[str]) -> bool:
    key = subject_key(name)
    return bool(key) and any(key == subject_key(n) for n in names)
