"""The suite cannot reach off the machine: it runs in a network namespace with no route out.

These run for real under ``make test`` (scripts/in-netns.sh). Run directly on a host with a
network they are skipped: trying a connection out from there would be exactly what they forbid.
"""

from __future__ import annotations

import errno
import socket
import time

import pytest

from tests.fixtures import netns

pytestmark = [
    pytest.mark.controlplane,
    pytest.mark.skipif(not netns.isolated(), reason="only inside the suite's own network namespace "
                       "(make test, or scripts/in-netns.sh .venv/bin/pytest ...)"),
]

# Documentation ranges (RFC 5737 / RFC 3849): no server anywhere answers them.
OUTSIDE = [(socket.AF_INET, ("203.0.113.7", 443)), (socket.AF_INET6, ("2001:db8::7", 443, 0, 0))]
NAMES = ["spe-isolation-probe.example", "kubernetes.default.svc.cluster.local", "registry.invalid"]


def _nameservers() -> list[str]:
    try:
        lines = open("/etc/resolv.conf").read().splitlines()
    except FileNotFoundError:
        return []
    return [ln.split()[1] for ln in lines if ln.startswith("nameserver") and len(ln.split()) > 1]


def test_no_route_leaves_the_machine():
    assert netns.routes_off_machine() == []


@pytest.mark.parametrize("family,address", OUTSIDE, ids=["ipv4", "ipv6"])
def test_tcp_to_a_non_local_address_is_unreachable_at_once(family, address):
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(5)
    started = time.monotonic()
    with sock, pytest.raises(OSError) as err:
        sock.connect(address)
    assert err.value.errno == errno.ENETUNREACH, err.value
    assert time.monotonic() - started < 0.5


def test_dns_fails_without_a_packet_leaving():
    sent_before = netns.tx_packets_off_loopback()
    for name in NAMES:
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo(name, 443)
    assert netns.tx_packets_off_loopback() == sent_before
    # Each resolver the host names is unreachable from here: not even a query can be sent.
    for server in _nameservers():
        if server.startswith("127.") or server == "::1":
            continue  # a local resolver would be this namespace's own loopback: nothing listens
        family = socket.AF_INET6 if ":" in server else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock, pytest.raises(OSError) as err:
            sock.connect((server, 53))
        assert err.value.errno == errno.ENETUNREACH, (server, err.value)


def test_localhost_still_resolves_and_answers():
    addrs = {info[4][0] for info in socket.getaddrinfo("localhost", 0, socket.AF_INET)}
    assert addrs == {"127.0.0.1"}
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        with socket.create_connection(srv.getsockname(), timeout=2):
            conn, _ = srv.accept()
            conn.close()
