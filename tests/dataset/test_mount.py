"""Issue #12, items 2 and 3 on the real node: a dataset volume produced per the contract
(``spe-ingest run`` on the host, signed, its claim labelled and owned) is verified by the
workspace pod's init container (``spe-ingest verify`` from the ingest image, the site's public
key) and mounted read-only at /data/<dataset>: only data/, no quarantine, no manifest or
journal, no identifiers. A tampered file stops the start with a condition naming the dataset
and the file."""

from __future__ import annotations

import secrets

import pytest

from tests.fixtures.waiting import wait_for
from tests.node.conftest import exec_in
from tests.workspace.helpers import condition

from .volumes import PLANTED_ID, PLANTED_NAME, data_files, make_dataset

pytestmark = [pytest.mark.dataset, pytest.mark.node]


def test_the_workspace_sees_only_the_verified_data_read_only(cluster, node_env):
    env = node_env
    ns = env.permit()
    env.workspace(ns)
    ws = env.wait_running(ns)
    verified = condition(ws, "DatasetsVerified")
    assert verified["status"] == "True" and env.dataset in verified["message"], verified
    pod = env.kube.get_or_none(f"/api/v1/namespaces/{ns}/pods/ws-0")
    (init,) = pod["status"]["initContainerStatuses"]
    assert init["name"] == f"verify-{env.dataset}" and init["state"]["terminated"]["exitCode"] == 0
    assert "@sha256:" in pod["spec"]["initContainers"][0]["image"]

    def sh(script: str):
        return exec_in(cluster, ns, "ws-0", "sh", "-c", script)

    data = f"/data/{env.dataset}"
    listed = sh(f"cd {data} && find . -type f | sed 's|^./||' | sort")
    assert listed.stdout.split() == data_files(env.dataset_root), listed.stdout + listed.stderr
    top = sh(f"ls -a {data}; ls -a /data")
    for hidden in ("quarantine", "manifest.json", "report.json", ".spe-ingest"):
        assert hidden not in top.stdout.split(), top.stdout
    assert sh("ls /data").stdout.split() == [env.dataset]
    write = sh(f"touch {data}/x 2>&1; mkdir {data}/d 2>&1; true")
    assert write.stdout.count("Read-only file system") == 2, write.stdout
    # No identifiers: none of the planted names or IDs in any byte of the mounted files.
    leak = sh(f"grep -rl -e '{PLANTED_NAME[:8]}' -e '{PLANTED_ID}' {data}; echo rc=$?")
    assert leak.stdout.strip() == "rc=1", leak.stdout


def test_a_tampered_file_stops_the_start_with_its_name(cluster, node_env, tmp_path_factory):
    env = node_env
    name = f"ds-tamper-{secrets.token_hex(3)}"
    root, objects = make_dataset(env.kube, name, tmp_path_factory.mktemp("tampered-dataset"))
    try:
        victim = data_files(root)[0]
        path = root / "data" / victim
        blob = bytearray(path.read_bytes())
        blob[-1] ^= 0xFF  # one byte, same size: only the hash tells
        path.write_bytes(bytes(blob))
        ns = env.permit(datasets=[name])
        env.workspace(ns, datasets=[name])
        path_ws = f"/apis/spe.ehds.io/v1alpha1/namespaces/{ns}/workspaces/ws"

        def blocked():
            ws = env.kube.get_or_none(path_ws)
            cond = condition(ws, "DatasetsVerified") if ws else None
            return ws if cond and cond["status"] == "False" else None
        ws = wait_for("the verification failure in the Workspace's status", blocked, timeout=300, interval=0.5)
        cond = condition(ws, "DatasetsVerified")
        assert cond["reason"] == "DatasetVerificationFailed"
        assert f"'{name}'" in cond["message"] and f"data/{victim}" in cond["message"], cond["message"]
        assert ws["status"]["phase"] == "Blocked" and victim in ws["status"]["message"]
        pod = env.kube.get_or_none(f"/api/v1/namespaces/{ns}/pods/ws-0")
        assert not pod["status"].get("containerStatuses") or \
            not pod["status"]["containerStatuses"][0].get("state", {}).get("running"), pod["status"]
    finally:
        for obj in reversed(objects):
            env.kube.delete_quietly(obj)
