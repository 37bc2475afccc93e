"""The automatic disclosure checks of a request's round, run in the background, and their
signed check records; resumed after a restart."""

from __future__ import annotations

import asyncio
import json

from . import audit as act
from . import checks_adapter
from .lifecycle import Phase
from .records import current_files, move, status_checks
from .sealed_records import SealedRecords, log

RESUME_PHASES = (Phase.SUBMITTED.value, Phase.CHECKING.value)


class AutomaticChecks(SealedRecords):
    # --- automatic checks --------------------------------------------------------------------

    async def run_checks(self, namespace: str, name: str) -> dict:
        async with self.check_slots:
            return await self._run_checks(namespace, name)

    async def _run_checks(self, namespace: str, name: str) -> dict:
        def start(o):
            if o["status"].get("phase") != Phase.CHECKING.value:  # Checking: resumed after a restart
                move(o, Phase.CHECKING, self.clock(), act.SYSTEM_ACTOR, "automatic checks running")
        obj = await self._update(namespace, name, start)
        round_ = int(obj["status"]["round"])
        permit = await self.store.get_permit(obj["status"]["permit"])
        thresholds = permit.policy.thresholds if permit else checks_adapter.Thresholds()
        files = [(f["name"], self.quarantine.get(namespace, name, round_, i, f["sha256"]))
                 for i, f in enumerate(current_files(obj))]
        ledger = self._ledger(obj["status"]["permit"])
        try:
            # The permit's datasets' pseudonyms (their digests): unreadable ones fail the checks
            # (block), never an empty set that lets every pseudonym through.
            ids = await self.store.pseudonyms(permit) if permit else frozenset()
            report = await asyncio.to_thread(checks_adapter.run, files, thresholds, ids, ledger)
        except Exception as e:  # noqa: BLE001 - a crashed check must block, never pass
            log.exception("checks failed on %s/%s", namespace, name)
            report = {"engine": "error", "verdict": "block", "files": [
                {"name": n, "verdict": "block", "findings": [{
                    "check": "engine", "severity": "BLOCK", "location": {},
                    "message": f"the automatic checks failed ({type(e).__name__}); the file cannot be approved"}]}
                for n, _ in files]}
        del files
        record = checks_adapter.sign(report, self.report_key)
        rec_dir = self.quarantine.root / namespace / name
        rec_dir.mkdir(parents=True, exist_ok=True)
        (rec_dir / f"check-record-r{round_}.json").write_text(json.dumps(record, sort_keys=True))

        def mutate(o):
            o["status"]["checks"] = status_checks(report)
            move(o, Phase.AWAITING_REVIEW, self.clock(), act.SYSTEM_ACTOR,
                  f"automatic checks: {report.get('verdict')}")
        return await self._update(namespace, name, mutate, lambda o: [
            (act.SYSTEM_ACTOR, act.EXPORT_CHECK, f"{namespace}/{name}",
             {"permit": o["status"]["permit"],
              "details": {"round": round_, "verdict": report.get("verdict"), "engine": report.get("engine")}})])

    async def resume(self) -> list[str]:
        """On start: run the checks that a stopped gateway left unfinished (Submitted, Checking)."""
        names = []
        for o in await self._list():
            if o["status"].get("phase") in RESUME_PHASES:
                names.append(o["metadata"]["name"])
                log.info("resuming the checks of %s/%s", o["metadata"]["namespace"], o["metadata"]["name"])
                self._spawn(self.run_checks(o["metadata"]["namespace"], o["metadata"]["name"]))
        return names

    def check_record(self, namespace: str, name: str, round_: int) -> dict | None:
        p = self.quarantine.root / namespace / name / f"check-record-r{round_}.json"
        return json.loads(p.read_text()) if p.exists() else None
