"""Release of an approved request: its time-limited download link, the bundle handed to the
link's bearer, and the ledger of released tables (which later checks compare against)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from . import audit as act
from . import checks_adapter
from .lifecycle import Phase
from .records import Problem, current_files, move
from .release import build_bundle, release_path
from .sealed_records import SealedRecords


class Releasing(SealedRecords):
    # --- release ---------------------------------------------------------------------------

    def download_path(self, obj: dict) -> str | None:
        rel = obj["status"].get("release")
        if not rel or obj["status"].get("phase") not in (Phase.APPROVED.value, Phase.RELEASED.value):
            return None
        if not self._sealed(obj):  # a forged or edited record never signs a link
            return None
        return release_path(self.link_key, obj["metadata"]["namespace"], obj["metadata"]["name"],
                            rel["round"], rel["expires"])

    async def download(self, namespace: str, name: str, round_: int, client: str) -> tuple[str, bytes]:
        """The bundle for whoever holds a valid link. The link is a bearer capability: the act
        is recorded as the link's bearer (``link:<client address>``), with the requester the
        link was issued to in the details -- not as the requester, who may not be the one
        downloading."""
        obj = await self._get(namespace, name)
        st = (obj or {}).get("status", {})
        rel = st.get("release")
        if obj is None or not rel or int(rel["round"]) != round_ or \
                st.get("phase") not in (Phase.APPROVED.value, Phase.RELEASED.value):
            raise Problem(404, "not_released", "there is nothing released under this link")
        cur = current_files(obj)
        files = [(cur[i]["name"], self.quarantine.get(namespace, name, round_, i, cur[i]["sha256"]))
                 for i in rel["approvedFiles"]]
        record = self.check_record(namespace, name, round_) or {}
        bundle = build_bundle(files, {"request": f"{namespace}/{name}", "round": round_,
                                      "approvedFiles": [cur[i] for i in rel["approvedFiles"]],
                                      "reviewers": sorted({d["reviewer"] for d in st.get("decisions", [])
                                                           if d.get("round") == round_}),
                                      "checkRecord": record})
        requester = obj["spec"]["requester"]

        def mutate(o):
            if o["status"]["phase"] == Phase.APPROVED.value:
                move(o, Phase.RELEASED, self.clock(), requester, "bundle downloaded")
            o["status"]["release"]["downloads"] = int(o["status"]["release"].get("downloads", 0)) + 1
        await self._update(namespace, name, mutate, lambda o: [
            (f"link:{client or 'unknown'}", act.EXPORT_DOWNLOAD, f"{namespace}/{name}", {
                "permit": st.get("permit"),
                "details": {"requester": requester, "client": client, "round": round_, "bytes": len(bundle),
                            "sha256": hashlib.sha256(bundle).hexdigest(),
                            "download": int(o["status"]["release"].get("downloads", 0))}})])
        return f"{name}-bundle.zip", bundle

    def _ledger_path(self, permit: str) -> Path:
        return self.ledger_dir / f"{permit}.jsonl"

    def _ledger(self, permit: str) -> list[dict]:
        p = self._ledger_path(permit)
        if not p.exists():
            return []
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]

    def _record_released_tables(self, obj: dict) -> None:
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        rel = obj["status"]["release"]
        entries = []
        for i in rel["approvedFiles"]:
            f = current_files(obj)[i]
            fp = checks_adapter.fingerprint(f["name"], self.quarantine.get(ns, name, rel["round"], i, f["sha256"]))
            if fp is not None:
                entries.append(fp)
        if entries:
            self.ledger_dir.mkdir(parents=True, exist_ok=True)
            with open(self._ledger_path(obj["status"]["permit"]), "a") as fh:
                for e in entries:
                    fh.write(json.dumps(e, sort_keys=True, default=str) + "\n")
