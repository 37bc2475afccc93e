"""The Dataset reconciler: one level-based reconcile per Dataset, whatever woke it (the Dataset,
its Jobs, their pods, its claims, a timer).

Each reconcile observes the current revision (``metadata.generation``): its claim, its Jobs and
their pods; creates what is missing (claim, then the shards' Indexed Job when sharding, then the
final Job); derives the whole status from what it saw (``report``) and overwrites whatever else is
there; marks the claim with its state (``datasetvolume``); publishes the hashed pseudonyms of a
ready revision; and removes the claims of older revisions once a newer one is ready and no
running workspace pod mounts them.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime, timezone
from typing import Any

from spe_api import Dataset, DatasetPhase
from spe_api.datapermit import PERMIT_NAMESPACE_PREFIX
from spe_api.reasons import DatasetMessage, DatasetReason
from spe_kube import ApiError, KubeClient, kind_for
from spe_kube.events import NORMAL, WARNING, post_event
from spe_kube.watch import LabelWatch

from ..settings import SpeSettings
from ..workqueue import KeyedQueue
from . import builders, names as n
from .report import Observed, Verdict, build_status, job_outcome, parse_summary, status_patch, terminated, verdict

log = logging.getLogger(__name__)

DATASET = kind_for("spe.ehds.io/v1alpha1", "Dataset")
PVC = kind_for("v1", "PersistentVolumeClaim")
POD = kind_for("v1", "Pod")
JOB = kind_for("batch/v1", "Job")
SECRET = kind_for("v1", "Secret")
PROGRESS = re.compile(r"progress: (\d+) files")
ACTIVE_PHASES = (None, DatasetPhase.PENDING, DatasetPhase.INGESTING)


class DatasetController:
    def __init__(self, kube: KubeClient, settings: SpeSettings, audit: Any = None):
        self.kube, self.settings, self.audit = kube, settings, audit
        self.ns = settings.operator_namespace
        self._queue: KeyedQueue[str] = KeyedQueue()
        self._active: set[str] = set()  # datasets whose ingest runs: polled for progress
        self._tasks: list[asyncio.Task] = []
        self._child_dataset: dict[tuple[str, str, str], str] = {}  # (kind, namespace, name) -> its dataset

    # --- queue ----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.settings.dataset_workers)]
        self._tasks.append(asyncio.create_task(self._ticker()))
        # Its Jobs, their pods and its claims wake a Dataset; workspace pods that mount one carry
        # the label too (their going may let an old revision's claim go). Selected by the API
        # server: through Kopf, every pod and claim of the cluster came here (spe_kube.watch).
        for kind in (JOB, POD, PVC):
            watch = LabelWatch(self.kube, kind, n.LABEL_DATASET, self.on_child_event)
            self._tasks.append(asyncio.create_task(watch.run(), name=f"dataset-watch-{kind.plural}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def enqueue(self, name: str | None) -> None:
        if not name:
            return
        self._queue.put(name)

    def on_child_event(self, type_: str, obj: dict[str, Any]) -> None:
        """A labelled Job, pod or claim changed: reconcile its Dataset. A deletion seen on a
        re-list carries the name only: the dataset is the one it was labelled with."""
        md = obj.get("metadata", {})
        key = (obj.get("kind", ""), md.get("namespace", ""), md.get("name", ""))
        dataset = (md.get("labels") or {}).get(n.LABEL_DATASET)
        if type_ == "DELETED":
            dataset = self._child_dataset.pop(key, None) or dataset
        elif dataset:
            self._child_dataset[key] = dataset
        self.enqueue(dataset)

    async def _worker(self) -> None:
        while True:
            name = await self._queue.get()
            try:
                await self.reconcile(name)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - retried by the next event or tick
                log.exception("dataset %s: reconcile failed; retrying", name)
                self._active.add(name)
            finally:
                self._queue.done(name)

    async def _ticker(self) -> None:
        """Progress while ingests run; everything, now and then (level-based safety net)."""
        elapsed = 0.0
        interval = self.settings.dataset_progress_interval
        while True:
            await asyncio.sleep(interval)
            elapsed += interval
            for name in list(self._active):
                self.enqueue(name)
            if elapsed >= self.settings.reconcile_interval:
                elapsed = 0.0
                try:
                    for item in await self.kube.list(DATASET):
                        self.enqueue(item["metadata"]["name"])
                except ApiError as exc:
                    log.warning("datasets: periodic list failed: %s", exc)

    # --- the reconcile --------------------------------------------------------------------------

    async def reconcile(self, name: str) -> None:
        body = await self.kube.get_or_none(DATASET, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            self._active.discard(name)
            return  # children go with it (owner references)
        ds = Dataset.from_manifest(body)
        rev = ds.generation or 1
        obs = Observed(revision=rev, shards=ds.spec.parallelism or self.settings.ingest_shards)
        obs.problem = await self._problem(ds)
        claims = await self.kube.list(PVC, self.ns, label_selector=f"{n.LABEL_DATASET}={name}")
        claims = [c for c in claims if _owned_by(c, ds)]
        jobs = [j for j in await self.kube.list(JOB, self.ns, label_selector=f"{n.LABEL_DATASET}={name}")
                if _owned_by(j, ds)]
        current = {j["metadata"]["name"]: j for j in jobs}
        obs.shard_job = current.get(n.job_name(name, rev, n.ROLE_SHARDS))
        obs.final_job = current.get(n.job_name(name, rev, n.ROLE_FINAL))
        obs.claim = next((c for c in claims if c["metadata"]["name"] == n.dataset_claim_name(name, rev)), None)
        if obs.shard_job is not None:  # a revision keeps the shape it started with
            obs.shards = int(obs.shard_job["spec"].get("completions") or 1)
        elif obs.final_job is not None:
            obs.shards = 1
        if obs.problem is None:
            await self._ensure_children(ds, obs)
        if obs.shard_job or obs.final_job:
            pods = await self.kube.list(POD, self.ns, label_selector=(
                f"{n.LABEL_DATASET}={name},{n.LABEL_REVISION}={rev}"))
            obs.shard_pods = [p for p in pods if _labels(p).get(n.LABEL_JOB_ROLE) == n.ROLE_SHARDS]
            obs.final_pods = [p for p in pods if _labels(p).get(n.LABEL_JOB_ROLE) == n.ROLE_FINAL]
            obs.files_processed = await self._progress(pods)
        v = verdict(ds, obs)
        if obs.claim is not None and v.claim_state is not None:
            await self._mark_claim(obs.claim, v)
        if v.phase == DatasetPhase.READY:
            await self._publish_pseudonyms(ds, rev, obs.final_pods)
        await self._prune(ds, rev, claims, jobs, v)
        desired = build_status(ds, obs, v, datetime.now(timezone.utc))
        patch = status_patch(desired, body.get("status"))
        if patch is not None:
            await self.kube.merge_patch(DATASET, name, patch, subresource="status")
            if ds.status.phase != v.phase:
                await self._announce(ds, body, v)
        if v.phase == DatasetPhase.INGESTING or (v.phase == DatasetPhase.PENDING and obs.problem is None):
            self._active.add(name)
        else:
            self._active.discard(name)

    async def _problem(self, ds: Dataset) -> tuple[DatasetPhase, str] | None:
        """A setting or spec field that stops the ingest before anything is created."""
        s, spec = self.settings, ds.spec
        if spec.source.claim_namespace != self.ns:
            return DatasetPhase.FAILED, DatasetMessage.SOURCE_NAMESPACE.format(
                namespace=spec.source.claim_namespace, operator=self.ns)
        for field, ref in (("pseudonymisation.keySecret", spec.pseudonymisation.key_secret),
                           ("signingKeySecret", spec.signing_key_secret)):
            if ref.namespace not in (None, self.ns):
                return DatasetPhase.FAILED, DatasetMessage.SECRET_NAMESPACE.format(
                    field=field, namespace=ref.namespace, operator=self.ns)
        unsupported = sorted(o.value for o in spec.anonymisation.options if o.value in n.UNSUPPORTED_OPTIONS)
        if unsupported:
            return DatasetPhase.FAILED, DatasetMessage.UNSUPPORTED_OPTION.format(options=", ".join(unsupported))
        cls = spec.storage.storage_class_name or s.default_storage_class
        classes = ", ".join(s.encrypted_storage_classes) or "none configured"
        if not cls:
            return DatasetPhase.FAILED, DatasetMessage.NO_STORAGE_CLASS.format(classes=classes)
        if cls not in s.encrypted_storage_classes and not s.allow_unencrypted_storage:
            return DatasetPhase.FAILED, DatasetMessage.NOT_ENCRYPTED.format(cls=cls, classes=classes)
        if not s.ingest_image:
            return DatasetPhase.PENDING, DatasetMessage.NO_INGEST_IMAGE
        if await self.kube.get_or_none(PVC, spec.source.claim_name, self.ns) is None:
            return DatasetPhase.PENDING, DatasetMessage.SOURCE_MISSING.format(
                namespace=self.ns, claim=spec.source.claim_name)
        return None

    async def _ensure_children(self, ds: Dataset, obs: Observed) -> None:
        s = self.settings
        if obs.claim is None:
            cls = ds.spec.storage.storage_class_name or s.default_storage_class
            obs.claim = await self._create(builders.build_claim(ds, obs.revision, cls, self.ns), PVC)
        common = dict(image=s.ingest_image, namespace=self.ns, workers=s.ingest_workers, cpu=s.ingest_cpu,
                      memory=s.ingest_memory, backoff_limit=s.ingest_backoff_limit,
                      node_selector=s.ingest_node_selector, tolerations=s.ingest_tolerations)
        if obs.shards > 1 and obs.final_job is None:
            if obs.shard_job is None:
                obs.shard_job = await self._create(builders.build_ingest_job(
                    ds, obs.revision, role=n.ROLE_SHARDS, shards=obs.shards, **common), JOB)
            if job_outcome(obs.shard_job) != "Complete":
                return
        if obs.final_job is None:
            obs.final_job = await self._create(builders.build_ingest_job(
                ds, obs.revision, role=n.ROLE_FINAL, **common), JOB)

    async def _create(self, manifest: dict[str, Any], kind) -> dict[str, Any]:
        try:
            return await self.kube.create(manifest)
        except ApiError as exc:
            if not exc.conflict:
                raise
            return await self.kube.get(kind, manifest["metadata"]["name"], self.ns)

    async def _progress(self, pods: list[dict[str, Any]]) -> int | None:
        """Files processed by the ingest containers now running: the last progress line of each
        running pod's log, plus what finished shards reported."""
        total, seen = 0, False
        for pod in pods:
            phase = (pod.get("status") or {}).get("phase")
            md = pod["metadata"]
            if phase == "Succeeded" and _labels(pod).get(n.LABEL_JOB_ROLE) == n.ROLE_SHARDS:
                summary = parse_summary((terminated(pod, n.CONTAINER_INGEST) or {}).get("message"))
                if summary:
                    total += (summary.get("counts") or {}).get("inputs", 0)
                    seen = True
                continue
            if not _running(pod, n.CONTAINER_INGEST):
                continue
            try:
                text = await self.kube.request_text(
                    f"/api/v1/namespaces/{self.ns}/pods/{md['name']}/log",
                    params={"container": n.CONTAINER_INGEST, "tailLines": "5"})
            except ApiError:
                continue
            found = PROGRESS.findall(text)
            if found:
                total += int(found[-1])
                seen = True
        return total if seen else None

    async def _mark_claim(self, claim: dict[str, Any], v: Verdict) -> None:
        md = claim["metadata"]
        labels, annotations = md.get("labels") or {}, md.get("annotations") or {}
        digest = (v.summary or {}).get("manifestDigest") if v.claim_state == n.STATE_READY else None
        if labels.get(n.LABEL_STATE) == v.claim_state and annotations.get(n.ANNOTATION_MANIFEST_DIGEST) == digest:
            return
        claim.update(await self.kube.merge_patch(PVC, md["name"], {"metadata": {
            "labels": {n.LABEL_STATE: v.claim_state},
            "annotations": {n.ANNOTATION_MANIFEST_DIGEST: digest}}}, self.ns))

    async def _publish_pseudonyms(self, ds: Dataset, rev: int, pods: list[dict[str, Any]]) -> None:
        """The hashed pseudonyms of a ready revision, read from the log of its Job's
        ``pseudonyms`` container (the Job itself has no API access), into the gateway's Secret."""
        name = n.pseudonyms_secret_name(ds.name)
        current = await self.kube.get_or_none(SECRET, name, n.PSEUDONYMS_NAMESPACE)
        if current is not None and _labels(current).get(n.LABEL_REVISION) == str(rev):
            return
        pod = next((p for p in sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "",
                                      reverse=True) if (p.get("status") or {}).get("phase") == "Succeeded"), None)
        if pod is None:
            return
        text = await self.kube.request_text(
            f"/api/v1/namespaces/{self.ns}/pods/{pod['metadata']['name']}/log",
            params={"container": n.CONTAINER_PSEUDONYMS})
        hashes = [line.strip() for line in text.splitlines() if re.fullmatch(r"[0-9a-f]{64}", line.strip())]
        await self.kube.apply(builders.build_pseudonyms_secret(ds, rev, hashes, n.PSEUDONYMS_NAMESPACE))

    async def _prune(self, ds: Dataset, rev: int, claims: list[dict[str, Any]], jobs: list[dict[str, Any]],
                     v: Verdict) -> None:
        """Jobs of older revisions go at once; claims of older revisions once a newer revision is
        ready (the newest ready one stays while the current one is not) and no running
        workspace pod mounts this dataset."""
        for job in jobs:
            if _labels(job).get(n.LABEL_REVISION) != str(rev):
                await self.kube.delete(JOB, job["metadata"]["name"], self.ns, propagation="Background")
        ready = sorted((int(_labels(c).get(n.LABEL_REVISION, "0")) for c in claims
                        if _labels(c).get(n.LABEL_STATE) == n.STATE_READY), reverse=True)
        keep = {rev}
        if v.phase != DatasetPhase.READY and ready:
            keep.add(ready[0])
        stale = [c for c in claims if int(_labels(c).get(n.LABEL_REVISION, "0")) not in keep]
        if not stale or await self._mounted(ds.name):
            return
        for claim in stale:
            await self.kube.delete(PVC, claim["metadata"]["name"], self.ns)

    async def _mounted(self, dataset: str) -> bool:
        """Whether a running pod of a permit namespace mounts the dataset (its label, or a claim
        of the dataset's per-namespace form ``ds.<dataset>.r<revision>``)."""
        for pod in await self.kube.list(POD, field_selector="status.phase!=Succeeded,status.phase!=Failed"):
            md = pod["metadata"]
            if not md.get("namespace", "").startswith(PERMIT_NAMESPACE_PREFIX) or md["namespace"] == self.ns:
                continue
            if _labels(pod).get(n.LABEL_DATASET) == dataset:
                return True
            for vol in (pod.get("spec") or {}).get("volumes") or []:
                if (vol.get("persistentVolumeClaim") or {}).get("claimName", "").startswith(f"ds.{dataset}.r"):
                    return True
        return False

    async def _announce(self, ds: Dataset, body: dict[str, Any], v: Verdict) -> None:
        await post_event(self.kube, body, type_=WARNING if v.phase == DatasetPhase.FAILED else NORMAL,
                         reason=f"Dataset{v.phase.value}", message=v.message)
        if self.audit is not None and v.phase in (DatasetPhase.READY, DatasetPhase.FAILED, DatasetPhase.QUARANTINED):
            await self.audit.record("dataset.ingested", target=f"dataset/{ds.name}", dataset=ds.name,
                                    outcome="success" if v.phase == DatasetPhase.READY else
                                    "denied" if v.reason == DatasetReason.K_REFUSED else "failure",
                                    details={"phase": v.phase.value, "reason": v.reason, "revision": ds.generation,
                                             "manifestDigest": (v.summary or {}).get("manifestDigest")})


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return obj["metadata"].get("labels") or {}


def _owned_by(obj: dict[str, Any], ds: Dataset) -> bool:
    return any(ref.get("uid") == ds.metadata.uid for ref in obj["metadata"].get("ownerReferences") or [])


def _running(pod: dict[str, Any], container: str) -> bool:
    status = pod.get("status") or {}
    return any(entry.get("name") == container and "running" in (entry.get("state") or {})
               for entry in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []))
