"""A Workspace on the real node: the operator's unchanged hardened pod really starts JupyterLab
from the notebook image built here (referenced by digest), and inside it the promises hold:
non-root, no service-account token, read-only root filesystem, datasets read-only, home
writable."""

from __future__ import annotations

import time

import pytest

from tests.workspace.helpers import condition

from .conftest import NOTEBOOK, exec_in

pytestmark = pytest.mark.node


def test_workspace_runs_jupyter_under_the_hardened_pod_spec(cluster, real_node, node_env):
    ns = node_env.permit()
    t0 = time.monotonic()
    node_env.workspace(ns)
    ws = node_env.wait_running(ns)
    started = time.monotonic() - t0
    assert condition(ws, "Ready")["status"] == "True"
    assert ws["status"]["node"] == "spe-node-1"
    pod = node_env.kube.get_or_none(f"/api/v1/namespaces/{ns}/pods/ws-0")
    assert pod["spec"]["nodeName"] == "spe-node-1"
    image = pod["spec"]["containers"][0]["image"]
    assert image == real_node.image(NOTEBOOK) and "@sha256:" in image
    assert pod["status"]["containerStatuses"][0]["imageID"].endswith(image.split("@")[1])
    print(f"workspace Running {started:.1f}s after create (image {image})")

    def sh(script: str):
        return exec_in(cluster, ns, "ws-0", "sh", "-c", script)

    # A real Jupyter server answers on its port (its unauthenticated /api: the version).
    api = exec_in(cluster, ns, "ws-0", "python3", "-c",
                  "import json, urllib.request; print(json.load(urllib.request.urlopen("
                  "'http://127.0.0.1:8888/api', timeout=5))['version'])")
    assert api.returncode == 0 and api.stdout.strip()[0].isdigit(), api.stdout + api.stderr
    procs = sh("cat /proc/1/cmdline | tr '\\0' ' '")
    assert "jupyter" in procs.stdout, procs.stdout
    # Non-root.
    ids = sh("id -u; id -g")
    uid, gid = ids.stdout.split()
    assert uid != "0" and uid == "1000" and gid == "100", ids.stdout
    # No service-account token anywhere it would be mounted.
    token = sh("ls /var/run/secrets/kubernetes.io/serviceaccount/token /run/secrets/kubernetes.io/serviceaccount 2>&1; true")
    assert "No such file" in token.stdout, token.stdout
    # Read-only root filesystem.
    root = sh("touch /opt/x 2>&1; touch /etc/x 2>&1; true")
    assert root.stdout.count("Read-only file system") == 2, root.stdout
    # The dataset: readable, and read-only.
    data = f"/data/{node_env.dataset}"
    from tests.dataset.volumes import data_files
    first = data_files(node_env.dataset_root)[0]
    read = sh(f"wc -c < {data}/{first}")
    assert int(read.stdout) == (node_env.dataset_root / "data" / first).stat().st_size, read.stdout + read.stderr
    write = exec_in(cluster, ns, "ws-0", "python3", "-c",
                    f"import errno\ntry:\n open('{data}/new', 'w')\nexcept OSError as e:\n print(errno.errorcode[e.errno])")
    assert write.stdout.strip() == "EROFS", write.stdout + write.stderr
    # Home (and outputs) writable.
    home = sh("echo result > $HOME/result.txt && cat $HOME/result.txt && echo ok > $HOME/outputs/o.txt && echo done")
    assert home.stdout.split() == ["result", "done"], home.stdout + home.stderr
    # No DNS server: the only nameserver is the pod's own loopback (the API server requires one with
    # dnsPolicy None), where nothing listens; the hub and gateway come as host aliases.
    resolv = sh("cat /etc/resolv.conf")
    servers = [ln.split()[1] for ln in resolv.stdout.splitlines() if ln.startswith("nameserver")]
    assert servers == ["127.0.0.1"], resolv.stdout
    lookup = exec_in(cluster, ns, "ws-0", "python3", "-c",
                     "import socket; socket.getaddrinfo('kubernetes.default.svc', 443)")
    assert lookup.returncode != 0 and "gaierror" in lookup.stderr, lookup.stdout + lookup.stderr
