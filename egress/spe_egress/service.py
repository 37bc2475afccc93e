"""The gateway's domain logic: requests, checks, votes, release, expiry. No HTTP here.

Every change to a review goes through :meth:`EgressService._update` (in :mod:`.sealed_records`), which re-reads the
object, verifies its seal, applies a pure mutation, checks the lifecycle, writes the audit
records of the act, seals and writes with optimistic concurrency (retrying on conflict),
under a per-review lock for this process.

- **Sealed records, audit that fails closed**: see :mod:`.sealed_records`.
- **Reviewer scope.** A reviewer sees and decides only the requests of permits whose
  ``exportPolicy.reviewers`` name them, and never those of a permit that names them as a
  member. People are compared on one subject (:mod:`.identity`).

One side per module: the sealed store, the audit trail and ``_update`` (:mod:`.sealed_records`),
researchers (:mod:`.researcher`), the automatic checks (:mod:`.checking`), reviewers
(:mod:`.reviewing`), release and download (:mod:`.releasing`), retention and revocation
(:mod:`.retention`).
"""

from __future__ import annotations

from .checking import AutomaticChecks
from .releasing import Releasing
from .researcher import ResearcherActions
from .retention import Retention
from .reviewing import Reviewing


class EgressService(ResearcherActions, AutomaticChecks, Reviewing, Releasing, Retention):
    """The gateway's service: each side of it in a module of its own, all on one sealed store
    (:mod:`.sealed_records`)."""
