"""Reviewer votes and how they decide a request: pure functions over plain dicts.

Each reviewer casts, once per round, one vote per file: ``approve``, ``changes`` (request
changes) or ``reject``, each with a comment that is ``private`` (reviewers only) or
``public`` (shown to the requester once the round is decided). The round is decided when
``required`` distinct reviewers have voted:

- any ``changes`` vote        -> Returned (the requester may fix and resubmit);
- else a file is released only if every vote on it is ``approve``;
- at least one such file      -> Approved (the bundle holds exactly those files);
- none                        -> Rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

from spe_api.subjects import same_subject, subject_key

VOTES = ("approve", "changes", "reject")
VISIBILITIES = ("private", "public")


class VoteError(ValueError):
    """A vote the rules refuse (the message says why)."""


@dataclass(frozen=True)
class Outcome:
    phase: str | None  # None: not decided yet
    approved_files: tuple[int, ...] = ()
    voters: tuple[str, ...] = ()


def round_decisions(decisions: list[dict], round_: int) -> list[dict]:
    return [d for d in decisions if d.get("round") == round_]


def has_voted(decisions: list[dict], round_: int, reviewer: str) -> bool:
    return any(same_subject(d.get("reviewer"), reviewer) for d in round_decisions(decisions, round_))


def validate_ballot(ballot: dict[int, dict], n_files: int, blocked: set[int]) -> list[dict]:
    """Check a reviewer's ballot (file index -> {vote, comment, visibility}); return it as a list."""
    if set(ballot) != set(range(n_files)):
        missing = sorted(set(range(n_files)) - set(ballot))
        raise VoteError(f"a vote is needed for every file (missing: {', '.join(map(str, missing)) or 'none'})")
    out = []
    for idx in range(n_files):
        b = ballot[idx]
        vote = b.get("vote")
        if vote not in VOTES:
            raise VoteError(f"file {idx}: the vote must be one of {', '.join(VOTES)}")
        vis = b.get("visibility") or "private"
        if vis not in VISIBILITIES:
            raise VoteError(f"file {idx}: a comment is either private or public")
        comment = (b.get("comment") or "").strip()
        if len(comment) > 4000:
            raise VoteError(f"file {idx}: the comment is over 4000 characters")
        if vote == "approve" and idx in blocked:
            raise VoteError(f"file {idx}: the automatic checks blocked this file; it cannot be approved")
        if vote != "approve" and not comment:
            raise VoteError(f"file {idx}: say why in a comment when you do not approve")
        out.append({"file": idx, "vote": vote, "comment": comment, "visibility": vis})
    return out


def tally(decisions: list[dict], round_: int, n_files: int, required: int) -> Outcome:
    rd = round_decisions(decisions, round_)
    voters = tuple({subject_key(d["reviewer"]): d["reviewer"] for d in rd}.values())
    if len(voters) < max(1, required):
        return Outcome(None, voters=voters)
    votes = [v for d in rd for v in d["votes"]]
    if any(v["vote"] == "changes" for v in votes):
        return Outcome("Returned", voters=voters)
    approved = tuple(i for i in range(n_files)
                     if all(v["vote"] == "approve" for v in votes if v["file"] == i))
    if approved:
        return Outcome("Approved", approved, voters)
    return Outcome("Rejected", voters=voters)


def visible_decisions(decisions: list[dict], round_: int, viewer: str) -> list[dict]:
    """What one reviewer may see: nothing of this round's other votes until they cast theirs."""
    if has_voted(decisions, round_, viewer):
        return list(decisions)
    return [d for d in decisions if d.get("round") != round_ or same_subject(d.get("reviewer"), viewer)]


def public_comments(decisions: list[dict], decided_rounds: set[int]) -> list[dict]:
    """Comments a requester may see: public ones, of decided rounds, without reviewer names."""
    out = []
    for d in decisions:
        if d.get("round") not in decided_rounds:
            continue
        for v in d["votes"]:
            if v.get("visibility") == "public" and v.get("comment"):
                out.append({"round": d["round"], "file": v["file"], "vote": v["vote"], "comment": v["comment"]})
    return out
