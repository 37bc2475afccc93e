"""Issue #12, item 4 (gateway side): the identifier check gets each permitted dataset's
pseudonyms as SHA-256 digests from the Secrets of ``spe_api.datasetvolume`` (namespace
spe-pseudonyms), with the gateway's own service account, which may read those and no other
Secret; an output naming one of those pseudonyms is blocked; the gateway never holds them in
the clear."""

from __future__ import annotations

import base64
import json

import pytest

from spe_api.datasetvolume import (LABEL_PSEUDONYMS, PSEUDONYMS_KEY, PSEUDONYMS_NAMESPACE,
                                   pseudonyms_secret_name)
from spe_egress.checks import CheckContext, CheckPolicy, FileInput, PseudonymSet, run_checks
from spe_egress.checks.pseudonyms import digest, parse_digests

from .conftest import RESEARCHER
from .helpers import run_cli
from .test_kube import _apply, egress_crds, gateway_kubeconfig, kube_gateway, permit_and_workspace  # noqa: F401
from .test_kube_security import GATEWAY_SA, _can_i

pytestmark = pytest.mark.egress

PSEUDONYM = "K7QZ2M4XHD3PL5WA"  # the ingest's form: upper-case base32, 16 characters
OTHER = "M2N4B6V8C3X5Z7LQ"


def _checks(text: str, ids) -> list[dict]:
    report = run_checks([FileInput("notes.txt", text.encode())], CheckPolicy(), CheckContext(pseudonymous_ids=ids))
    return [f for fr in report.to_dict()["files"] for f in fr["findings"]]


def _pseudonym_findings(text: str, ids) -> list[dict]:
    return [f for f in _checks(text, ids) if f["check"] == "identifier.pseudonym"]


# --- the check on digests (no cluster) ---------------------------------------------------------

def test_an_output_naming_a_hashed_pseudonym_is_blocked():
    ids = PseudonymSet(digests=[digest(PSEUDONYM)])
    for text in (f"patient {PSEUDONYM} responded\n", f"patient {PSEUDONYM.lower()} responded\n",
                 f"see sub_{PSEUDONYM}_seg2.png\n"):
        (hit,) = _pseudonym_findings(text, ids)
        assert hit["severity"].upper() == "BLOCK", text
    assert _pseudonym_findings(f"patient {OTHER} responded\n", ids) == []
    assert _pseudonym_findings("Model AUC 0.91 on the held-out set.\n", ids) == []


def test_the_set_keeps_no_pseudonym_in_the_clear():
    ids = PseudonymSet(digests=[digest(PSEUDONYM), digest(OTHER)])
    assert PSEUDONYM in ids and PSEUDONYM.lower() in ids and OTHER in ids
    assert list(ids) == [] and len(ids) == 2 and ids.hashed_count == 2
    assert PSEUDONYM not in repr(ids) and digest(PSEUDONYM) not in repr(ids)
    # clear ones (tests, the in-memory store) still work beside them, case-insensitively
    both = PseudonymSet(clear=["PSN-1"]).union(ids)
    assert "psn-1" in both and PSEUDONYM in both and "psn-2" not in both


def test_a_malformed_publication_is_refused():
    assert parse_digests(f"{digest(PSEUDONYM)}\n\n{digest(OTHER).upper()}\n") == {digest(PSEUDONYM), digest(OTHER)}
    for bad in (PSEUDONYM, digest(PSEUDONYM)[:40], f"{digest(PSEUDONYM)} x"):
        with pytest.raises(ValueError, match="line 1"):
            parse_digests(bad)


# --- on the real control plane, with the gateway's own service account ------------------------------

def _secret(dataset: str, lines: list[str], *, labelled: bool = True) -> dict:
    md = {"name": pseudonyms_secret_name(dataset), "namespace": PSEUDONYMS_NAMESPACE,
          "labels": {LABEL_PSEUDONYMS: dataset} if labelled else {}}
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": md,
            "data": {PSEUDONYMS_KEY: base64.b64encode("".join(f"{x}\n" for x in lines).encode()).decode()}}


@pytest.fixture
def published(egress_crds, permit_and_workspace):
    """The permit's dataset's pseudonyms published as the Dataset reconciler does (made here)."""
    cluster = egress_crds
    permit, ns = permit_and_workspace
    body = json.loads(cluster.kubectl("get", "datapermit", permit, "-o", "json", check=True).stdout)
    (dataset,) = body["spec"]["datasets"]
    _apply(cluster, _secret(dataset, sorted([digest(PSEUDONYM), digest(OTHER)])))
    yield permit, ns, dataset
    cluster.kubectl("delete", "secret", pseudonyms_secret_name(dataset), "-n", PSEUDONYMS_NAMESPACE, "--wait=false")


def test_the_gateway_may_read_the_pseudonym_secrets_and_no_other(egress_crds, permit_and_workspace):
    cluster = egress_crds
    _, ns = permit_and_workspace
    for verb in ("get", "list", "watch"):
        assert _can_i(cluster, GATEWAY_SA, verb, "secrets", "-n", PSEUDONYMS_NAMESPACE) == "yes", verb
    for verb in ("create", "patch", "update", "delete"):
        assert _can_i(cluster, GATEWAY_SA, verb, "secrets", "-n", PSEUDONYMS_NAMESPACE) == "no", verb
    for where in (["-n", ns], ["-n", "spe-system"], ["-n", "default"], ["--all-namespaces"]):
        assert _can_i(cluster, GATEWAY_SA, "get", "secrets", *where) == "no", where
        assert _can_i(cluster, GATEWAY_SA, "list", "secrets", *where) == "no", where


def test_the_store_reads_the_digests_with_the_gateways_identity(kube_gateway, published):
    gw = kube_gateway
    permit, _, _ = published
    info = gw.call(gw.store.get_permit(permit))
    ids = gw.call(gw.store.pseudonyms(info))
    assert isinstance(ids, PseudonymSet) and ids.hashed_count == 2
    assert PSEUDONYM in ids and OTHER.lower() in ids and "AAAAAAAAAAAAAAAA" not in ids
    assert list(ids) == []  # digests only: nothing in the clear to leak from the gateway


def test_an_output_naming_a_pseudonym_of_the_permits_dataset_is_blocked(kube_gateway, published, hub, tmp_path):
    gw = kube_gateway
    _, ns, _ = published
    f = tmp_path / "cases.txt"
    f.write_bytes(f"Responders: {PSEUDONYM.lower()} and two others.\n".encode())
    code, out, err = run_cli(gw, hub.server_token(RESEARCHER, ns, "analysis"), "request", str(f), "--justification",
                             "Case notes for the report.", workspace="analysis", namespace=ns)
    assert code == 0, err
    rid = out.split()[2].rstrip(":")
    obj = gw.wait_phase(rid, {"AwaitingReview", "Rejected", "Returned"})
    findings = [x for fr in obj["status"]["checks"]["files"] for x in fr["findings"]]
    hits = [x for x in findings if x["check"] == "identifier.pseudonym"]
    assert hits and all(str(h["severity"]).upper() == "BLOCK" for h in hits), findings
    assert obj["status"]["checks"]["verdict"] == "block"


def test_an_unlabelled_or_garbled_publication_blocks_instead_of_passing(kube_gateway, egress_crds,
                                                                        permit_and_workspace, hub, tmp_path):
    gw, cluster = kube_gateway, egress_crds
    permit, ns = permit_and_workspace
    body = json.loads(cluster.kubectl("get", "datapermit", permit, "-o", "json", check=True).stdout)
    (dataset,) = body["spec"]["datasets"]
    _apply(cluster, _secret(dataset, [PSEUDONYM]))  # the pseudonym itself, not its digest
    try:
        info = gw.call(gw.store.get_permit(permit))
        with pytest.raises(ValueError, match="not a SHA-256"):
            gw.call(gw.store.pseudonyms(info))
        f = tmp_path / "t.txt"
        f.write_bytes(b"Model AUC 0.91 on the held-out set.\n")
        code, out, err = run_cli(gw, hub.server_token(RESEARCHER, ns, "analysis"), "request", str(f), "--justification",
                                 "Numbers for the report.", workspace="analysis", namespace=ns)
        assert code == 0, err
        rid = out.split()[2].rstrip(":")
        obj = gw.wait_phase(rid, {"AwaitingReview", "Rejected", "Returned"})
        assert obj["status"]["checks"]["verdict"] == "block", obj["status"]["checks"]
    finally:
        cluster.kubectl("delete", "secret", pseudonyms_secret_name(dataset), "-n", PSEUDONYMS_NAMESPACE,
                        "--wait=false")
