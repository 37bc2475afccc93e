"""The test cluster's stand-in for cluster DNS (devtools/spe_dev/servicedns.py), on loopback."""

from __future__ import annotations

import socket
import struct

import pytest

from spe_dev.servicedns import AAAA, NXDOMAIN, ServiceDns, answer

pytestmark = pytest.mark.node


def query(name: str, qtype: int = 1, qid: int = 0x1234) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", qtype, 1)


SERVICES = {("spe-p1", "ws"): "198.19.200.7"}


def lookup(namespace, service):
    return SERVICES.get((namespace, service))


@pytest.mark.parametrize("name", ["ws.spe-p1.svc", "WS.spe-p1.svc.cluster.local"])
def test_a_service_name_resolves_to_its_cluster_ip(name):
    reply = answer(query(name), lookup)
    qid, flags, _, ancount = struct.unpack("!HHHH", reply[:8])
    assert qid == 0x1234 and flags & 0xF == 0 and ancount == 1
    assert socket.inet_ntoa(reply[-4:]) == "198.19.200.7"


def test_other_names_are_nxdomain_and_other_types_empty():
    for name in ("example.org", "ws.spe-p2.svc", "svc", "a.b.c.svc"):
        flags, ancount = struct.unpack("!HH", answer(query(name), lookup)[2:4] + answer(query(name), lookup)[6:8])
        assert flags & 0xF == NXDOMAIN and ancount == 0, name
    reply = answer(query("ws.spe-p1.svc", AAAA), lookup)
    assert struct.unpack("!H", reply[2:4])[0] & 0xF == 0 and struct.unpack("!H", reply[6:8])[0] == 0


def test_the_server_answers_over_udp():
    class Api:
        def get_or_none(self, path):
            return {"spec": {"clusterIP": "198.19.200.7"}} if path.endswith("/spe-p1/services/ws") else None

    server = ServiceDns(Api(), "127.0.0.1", port=0).start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(query("ws.spe-p1.svc"), ("127.0.0.1", server.port))
            reply, _ = s.recvfrom(512)
        assert socket.inet_ntoa(reply[-4:]) == "198.19.200.7"
    finally:
        server.stop()


def test_a_headless_service_resolves_to_a_ready_endpoint():
    class Api:
        def get_or_none(self, path):
            if path.endswith("/services/ws"):
                return {"spec": {"clusterIP": "None"}}
            if "endpointslices" in path and "service-name=ws" in path:
                return {"items": [{"endpoints": [{"addresses": ["198.18.1.9"], "conditions": {"ready": False}},
                                                 {"addresses": ["198.18.1.7"], "conditions": {"ready": True}}]}]}
            return None

    dns = ServiceDns(Api(), "127.0.0.1", port=0)
    try:
        assert dns.lookup("spe-p1", "ws") == "198.18.1.7"
        assert dns.lookup("spe-p1", "other") is None
    finally:
        dns.sock.close()
