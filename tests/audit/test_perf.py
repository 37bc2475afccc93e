"""A 100,000-record log verifies in under 2 s (in-process, on a slow shared machine)."""

from __future__ import annotations

import time

import pytest

from spe_audit import Act, verify
from spe_audit.checkpoint import Signer
from spe_audit.record import GENESIS_HASH, seal

pytestmark = pytest.mark.audit

N = 100_000
BOUND_S = 2.0


@pytest.fixture(scope="module")
def big_log(tmp_path_factory):
    """100,000 realistic records with a signed checkpoint every 1,000, built directly (fast)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    key = Ed25519PrivateKey.generate()
    signer = Signer(key)
    path = tmp_path_factory.mktemp("perf") / "big.jsonl"
    prev, lines = GENESIS_HASH, []
    acts = [a.value for a in Act][:18]
    for seq in range(1, N + 1):
        if seq % 1000 == 0:
            body = {"actor": "system:spe-audit", "action": "audit.checkpoint", "target": "big.jsonl",
                    "permit": None, "dataset": None, "outcome": "success",
                    "details": {"checkpoint": {"seq": seq - 1, "hash": prev}, "keyId": signer.key_id,
                                "signature": signer.sign(seq - 1, prev)}}
        else:
            body = {"actor": f"user:researcher{seq % 97}@hospital.example", "action": acts[seq % 18],
                    "target": f"Workspace/spe-permit-{seq % 13}/ws-{seq % 101}",
                    "permit": f"permit-2026-{seq % 13:04d}", "dataset": "lung-ct-2024",
                    "outcome": "success", "details": {"tool": "jupyter-scipy", "gpus": seq % 2}}
        rec = seal({**body, "seq": seq, "time": "2026-11-21T22:46:49.123456Z", "prev": prev})
        lines.append(rec.line)
        prev = rec.hash
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, key.public_key()


def test_100k_records_verify_under_two_seconds(big_log):
    """The bound is on the verifier's own work: CPU time of this process, best of three, so that
    other jobs on a shared 2-core machine do not decide the result. Wall time is bounded too,
    more loosely, and both are printed (run with -s)."""
    path, public_key = big_log
    verify(path)  # warm the page cache: the bound is on the verify loop, not the disk
    cpu = wall = float("inf")
    for _ in range(3):
        w0, c0 = time.perf_counter(), time.process_time()
        res = verify(path, public_keys=[public_key])
        wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
        assert res.ok and res.records == N and res.signatures_checked == N // 1000, res.summary()
    print(f"\nverified {N} records: {cpu:.3f}s CPU, {wall:.3f}s wall (best of 3)")
    assert cpu < BOUND_S, f"verifying {N} records took {cpu:.2f}s of CPU (bound {BOUND_S}s)"
    assert wall < 3 * BOUND_S, f"verifying {N} records took {wall:.2f}s of wall time"
