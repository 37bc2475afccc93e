"""spe-dev's command lines and fake nodes keep every address on loopback or in 198.18.0.0/15
(no servers needed)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
import yaml

from spe_dev import components
from spe_dev.nodes import NODES, node_manifest
from spe_dev.pki import Pki
from spe_dev.settings import KWOK_FALLBACK_POD_CIDR, SERVICE_CIDR, Settings

pytestmark = pytest.mark.controlplane

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
LAB = ipaddress.ip_network("198.18.0.0/15")


def all_argvs(tmp_path: Path) -> list[list[str]]:
    s = Settings(home=tmp_path, bin_dir=tmp_path / "bin", ports={
        "etcd": 1, "etcd_peer": 2, "apiserver": 3, "controller_manager": 4, "scheduler": 5, "kwok": 6})
    pki = Pki(tmp_path / "pki")
    return [
        components.etcd_argv(s), components.apiserver_argv(s, pki),
        components.controller_manager_argv(s, pki), components.scheduler_argv(s), components.kwok_argv(s),
    ]


def test_every_address_in_a_command_line_is_loopback_or_lab(tmp_path):
    seen = 0
    for argv in all_argvs(tmp_path):
        for arg in argv[1:]:
            for ip in re.findall(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?:/\d+)?", arg):
                assert ipaddress.ip_address(ip) in LOOPBACK or ipaddress.ip_address(ip) in LAB, (argv[0], arg)
                seen += 1
            for host in re.findall(r"https?://([^:/]+)", arg):
                if host.startswith("kubernetes.default"):
                    continue  # the service-account issuer: a name in tokens, never dialled
                assert host == "127.0.0.1", (argv[0], arg)
    assert seen >= 10


def test_cidrs_are_in_the_lab_range():
    for cidr in (SERVICE_CIDR, KWOK_FALLBACK_POD_CIDR, *(n.pod_cidr for n in NODES)):
        assert ipaddress.ip_network(cidr).subnet_of(LAB), cidr


def test_fake_nodes_match_the_design():
    manifests = {n.name: node_manifest(n) for n in NODES}
    gpu = {name: m for name, m in manifests.items() if "nvidia.com/gpu" in m["status"]["capacity"]}
    assert len(manifests) - len(gpu) == 2  # two CPU-only nodes
    products = {m["metadata"]["labels"]["nvidia.com/gpu.product"]: m["status"]["capacity"]["nvidia.com/gpu"]
                for m in gpu.values()}
    assert products == {"NVIDIA-A30": "4", "NVIDIA-L40S": "2"}
    for m in gpu.values():
        assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"} in m["spec"]["taints"]
    for m in manifests.values():
        assert m["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
        for addr in m["status"]["addresses"]:
            if addr["type"] == "InternalIP":
                assert ipaddress.ip_address(addr["address"]) in LOOPBACK


def test_kwok_stages_are_valid_stage_documents():
    names = set()
    for path in sorted(components.STAGES_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        assert doc["apiVersion"] == "kwok.x-k8s.io/v1alpha1" and doc["kind"] == "Stage", path
        assert doc["spec"]["resourceRef"]["kind"] in ("Node", "Pod"), path
        names.add(doc["metadata"]["name"])
    assert {"spe-node-ready", "spe-node-heartbeat", "spe-pod-ready", "spe-pod-delete"} <= names


def test_real_node_configuration_stays_in_the_lab_and_in_its_home(tmp_path):
    from spe_dev import nodeconf
    from spe_dev.settings import LAB_NET

    s = Settings(home=tmp_path, bin_dir=tmp_path / "bin", ports={
        "etcd": 1, "etcd_peer": 2, "apiserver": 3, "controller_manager": 4, "scheduler": 5, "kwok": 6},
        real_node=True, node_slot=3)
    lay = nodeconf.NodeLayout(s)
    plan = s.node_plan
    assert {plan.pod_cidr, plan.inet_cidr} <= {"198.18.3.0/24", "198.18.131.0/24"}
    assert (plan.outer_ip, plan.node_ip) == ("198.18.67.1", "198.18.67.2")
    bridge, *_ = nodeconf.cni_conflist(lay)["plugins"]
    # Pods: the lab range through the bridge, never a default route, no masquerading.
    assert bridge["ipam"]["routes"] == [{"dst": LAB_NET}]
    assert bridge["isDefaultGateway"] is False and bridge["ipMasq"] is False
    assert str(tmp_path) in bridge["ipam"]["dataDir"]
    # Every address any node process binds or dials.
    pki = Pki(tmp_path / "pki")
    argvs = [nodeconf.kubelet_argv(lay, tmp_path / "k"), nodeconf.kube_router_argv(lay, tmp_path / "k"),
             nodeconf.relay_argv(lay), nodeconf.kube_proxy_argv(lay),
             [yaml.safe_dump(nodeconf.kubelet_config(lay, pki)), yaml.safe_dump(nodeconf.kube_proxy_config(lay, tmp_path))]]
    seen = 0
    for argv in argvs:
        for arg in argv:
            for ip in re.findall(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?:/\d+)?", arg):
                assert ipaddress.ip_address(ip) in LOOPBACK or ipaddress.ip_address(ip) in LAB, arg
                seen += 1
    assert seen >= 6
    assert lay.api_server == "https://198.18.67.1:3"
    # containerd keeps everything under the home; the kubelet leaves host sysctls' protection off
    # only because spe-dev restores them (hostguard); conntrack limits stay untouched.
    toml = nodeconf.containerd_toml(lay)
    for line in toml.splitlines():
        if line.strip().startswith(("root =", "state =", "Root =", "path =", "conf_dir =")):
            assert str(tmp_path) in line, line
        if line.strip().startswith("address ="):  # sockets: a short path of this home's own
            assert f"/run/spe-{s.home_tag}/" in line, line
    assert "restrict_oom_score_adj = true" in toml
    assert nodeconf.kube_proxy_config(lay, tmp_path)["conntrack"]["maxPerCore"] == 0
    # Names are machine-wide: they carry the home's tag.
    assert s.home_tag in lay.netns and s.home_tag in lay.veth_outer and s.home_tag in lay.cgroup_root
    assert len(lay.veth_outer) <= 15 and len(lay.veth_node) <= 15
