"""Publishing the latest checkpoint away from the log, so that cutting the log's tail shows.

A publisher is anything with ``publish(checkpoint) -> None`` (:class:`CheckpointPublisher`). It is
called outside the log's lock, must return quickly and must not raise for a transient failure
(the log catches and logs anything it raises). Two are provided:

- :class:`ConfigMapPublisher` server-side-applies a ConfigMap through ``spe_kube.KubeClient``
  from the operator's event loop; it never moves the published seq backwards.
- :class:`FilePublisher` writes the checkpoint JSON atomically to a file (hosts without a cluster).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from .checkpoint import Checkpoint
from .log import CheckpointPublisher

log = logging.getLogger(__name__)

DATA_KEY = "checkpoint.json"
_CONFIGMAP = ("v1", "ConfigMap")

__all__ = ["CheckpointPublisher", "ConfigMapPublisher", "FilePublisher", "checkpoint_configmap"]


def checkpoint_configmap(cp: Checkpoint, *, namespace: str, name: str,
                         labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The ConfigMap that holds ``cp`` (a pure builder). ``data.checkpoint.json`` is what
    ``spe-audit verify --checkpoint-file`` reads; the other keys are for people."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "spe", "app.kubernetes.io/component": "audit",
                       **(labels or {})},
        },
        "data": {
            DATA_KEY: cp.to_json(),
            "seq": str(cp.seq),
            "hash": cp.hash,
            "time": cp.time,
            "keyId": cp.key_id or "",
            "log": cp.log,
        },
    }


class FilePublisher:
    """Keeps the latest checkpoint in one JSON file (written to a temp file, then renamed)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()

    def publish(self, checkpoint: Checkpoint) -> None:
        with self._lock:
            current = self.read()
            if current is not None and current.seq >= checkpoint.seq:
                return
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(checkpoint.to_json() + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)

    def read(self) -> Checkpoint | None:
        try:
            return Checkpoint.load(self.path)
        except FileNotFoundError:
            return None


class ConfigMapPublisher:
    """Publishes the latest checkpoint to a ConfigMap where the operator keeps state.

    Build it inside the operator's event loop (or pass ``loop``). ``publish`` may be called from
    any thread: it records the checkpoint and schedules one drain task on the loop, so a burst of
    checkpoints costs one apply of the newest. ``await flush()`` waits for it (shutdown, tests).
    """

    def __init__(self, kube: Any, *, namespace: str, name: str = "spe-audit-checkpoint",
                 labels: dict[str, str] | None = None, loop: asyncio.AbstractEventLoop | None = None):
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.labels = labels
        try:
            self._loop = loop or asyncio.get_running_loop()
        except RuntimeError:
            raise ValueError("ConfigMapPublisher needs an event loop: create it inside the operator's "
                             "loop or pass loop=") from None
        self._lock = threading.Lock()
        self._latest: Checkpoint | None = None
        self._task: asyncio.Future | concurrent.futures.Future | None = None
        self.published: Checkpoint | None = None
        self.failures = 0

    def publish(self, checkpoint: Checkpoint) -> None:
        with self._lock:
            if self._latest is not None and self._latest.seq >= checkpoint.seq:
                return
            self._latest = checkpoint
            if self._task is not None and not self._task.done():
                return  # the running drain picks the newest up
            if _in_loop(self._loop):
                self._task = self._loop.create_task(self._drain())
            else:
                self._task = asyncio.run_coroutine_threadsafe(self._drain(), self._loop)

    async def flush(self) -> None:
        task = self._task
        if task is None:
            return
        if isinstance(task, concurrent.futures.Future):  # scheduled from another thread
            await asyncio.wrap_future(task)
        else:
            await task

    async def _drain(self) -> None:
        while True:
            with self._lock:
                cp = self._latest
            if cp is None or (self.published is not None and self.published.seq >= cp.seq):
                return
            try:
                await self.apply(cp)
                self.published = cp
            except Exception as e:  # keep it for the next publish; the log file stays the truth
                self.failures += 1
                log.warning("publishing audit checkpoint seq %d to ConfigMap %s/%s failed: %s",
                            cp.seq, self.namespace, self.name, e)
                return

    async def apply(self, cp: Checkpoint, attempts: int = 3) -> None:
        """Apply the ConfigMap unless it already names a later seq; optimistic on resourceVersion
        so two writers cannot move it backwards."""
        for attempt in range(attempts):
            current = await self.kube.get_or_none(_CONFIGMAP, self.name, self.namespace)
            manifest = checkpoint_configmap(cp, namespace=self.namespace, name=self.name, labels=self.labels)
            if current is not None:
                try:
                    if int((current.get("data") or {}).get("seq", "0")) >= cp.seq:
                        return
                except ValueError:
                    pass
                manifest["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            try:
                await self.kube.apply(manifest)
                return
            except Exception as e:
                if getattr(e, "conflict", False) and attempt + 1 < attempts:
                    continue
                raise


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
