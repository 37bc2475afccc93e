"""The latest checkpoint published away from the log: a ConfigMap (through a fake client) or a file."""

from __future__ import annotations

import asyncio

import pytest

from spe_audit import Act, AuditLog, Checkpoint, FsyncPolicy, verify
from spe_audit.publish import ConfigMapPublisher, FilePublisher, checkpoint_configmap

from audit_helpers import fill, write_lines, read_lines

pytestmark = pytest.mark.audit


class Conflict(Exception):
    conflict = True


class FakeKube:
    """The two verbs ConfigMapPublisher uses, with resourceVersion preconditions like the API server."""

    def __init__(self):
        self.objects: dict[tuple[str, str], dict] = {}
        self.applies = 0
        self.fail_next = 0

    async def get_or_none(self, kind, name, namespace=None):
        assert kind == ("v1", "ConfigMap")
        obj = self.objects.get((namespace, name))
        return None if obj is None else {**obj, "metadata": dict(obj["metadata"])}

    async def apply(self, obj):
        await asyncio.sleep(0)
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("API server unreachable")
        md = obj["metadata"]
        key = (md["namespace"], md["name"])
        current = self.objects.get(key)
        if "resourceVersion" in md and (current is None or
                                        current["metadata"]["resourceVersion"] != md["resourceVersion"]):
            raise Conflict("the object has been modified")
        self.applies += 1
        self.objects[key] = {**obj, "metadata": {**md, "resourceVersion": str(self.applies)}}
        return self.objects[key]


def test_configmap_builder_shape():
    cp = Checkpoint(41, "a" * 64, "2026-11-21T00:00:00.000000Z", "c2ln", "0123456789abcdef", "op.jsonl")
    cm = checkpoint_configmap(cp, namespace="spe-system", name="spe-audit-checkpoint")
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["namespace"] == "spe-system"
    assert all(isinstance(v, str) for v in cm["data"].values())
    assert Checkpoint.from_dict(__import__("json").loads(cm["data"]["checkpoint.json"])) == cp


async def test_log_publishes_each_checkpoint_to_a_configmap(tmp_path, key):
    kube = FakeKube()
    pub = ConfigMapPublisher(kube, namespace="spe-system")
    log = AuditLog(tmp_path / "op.jsonl", signing_key=key, checkpoint_every=5, publisher=pub,
                   fsync=FsyncPolicy.NEVER)
    fill(log, 12)  # checkpoints after seq 5 and 10 (the records at 6 and 11 are checkpoints)
    await pub.flush()
    cm = kube.objects[("spe-system", "spe-audit-checkpoint")]
    assert cm["data"]["seq"] == "10" and cm["data"]["keyId"]
    log.close()
    await pub.flush()
    cm = kube.objects[("spe-system", "spe-audit-checkpoint")]
    published = Checkpoint.from_dict(__import__("json").loads(cm["data"]["checkpoint.json"]))
    assert published.seq == 14  # the closing checkpoint covers the last record
    assert verify(tmp_path / "op.jsonl", public_keys=[key.public_key()], checkpoint=published,
                  checkpoint_trusted=False).ok
    # cutting the tail after the published checkpoint is caught
    write_lines(tmp_path / "op.jsonl", read_lines(tmp_path / "op.jsonl")[:-3])
    res = verify(tmp_path / "op.jsonl", public_keys=[key.public_key()], checkpoint=published)
    assert res.problem.kind == "truncated"


async def test_configmap_never_moves_backwards_and_survives_failures():
    kube = FakeKube()
    pub = ConfigMapPublisher(kube, namespace="ns")
    await pub.apply(Checkpoint(20, "b" * 64))
    await pub.apply(Checkpoint(10, "a" * 64))  # a slower writer's older checkpoint
    assert kube.objects[("ns", "spe-audit-checkpoint")]["data"]["seq"] == "20"
    kube.fail_next = 1
    pub.publish(Checkpoint(30, "c" * 64))
    await pub.flush()
    assert pub.failures == 1 and kube.objects[("ns", "spe-audit-checkpoint")]["data"]["seq"] == "20"
    pub.publish(Checkpoint(40, "d" * 64))  # the next publish carries the newest
    await pub.flush()
    assert kube.objects[("ns", "spe-audit-checkpoint")]["data"]["seq"] == "40"


async def test_publish_from_another_thread_coalesces(tmp_path):
    kube = FakeKube()
    pub = ConfigMapPublisher(kube, namespace="ns")
    log = AuditLog(tmp_path / "a.jsonl", checkpoint_every=1, publisher=pub, fsync=FsyncPolicy.NEVER)
    await asyncio.to_thread(fill, log, 20)  # unsigned checkpoints still go out, from a worker thread
    deadline = asyncio.get_running_loop().time() + 30  # a bound, not a pace: a loaded machine is slow
    while asyncio.get_running_loop().time() < deadline:
        await pub.flush()
        if pub.published and pub.published.seq == 20:
            break
        await asyncio.sleep(0.01)
    assert pub.published.seq == 20 and pub.published.signature is None
    assert kube.applies <= 20
    log.close(checkpoint=False)


def test_publisher_needs_a_loop():
    with pytest.raises(ValueError, match="event loop"):
        ConfigMapPublisher(FakeKube(), namespace="ns")


def test_file_publisher(tmp_path, key):
    pub = FilePublisher(tmp_path / "checkpoint.json")
    log = AuditLog(tmp_path / "a.jsonl", signing_key=key, checkpoint_every=3, publisher=pub,
                   fsync=FsyncPolicy.NEVER)
    fill(log, 7)
    log.record("user:a", Act.TOOL_REVOKED)
    log.close()
    cp = Checkpoint.load(tmp_path / "checkpoint.json")
    assert cp.signature and verify(tmp_path / "a.jsonl", public_keys=[key.public_key()], checkpoint=cp,
                                   checkpoint_trusted=False).ok
    pub.publish(Checkpoint(1, "0" * 64))
    assert Checkpoint.load(tmp_path / "checkpoint.json") == cp  # never backwards
