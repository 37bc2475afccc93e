#!/usr/bin/env bash
# Runs a command in a network namespace of its own in which only loopback is up, so that nothing
# it starts (the control plane, the real node's namespaces, Keycloak, JupyterHub, Chromium, and
# any tool with a phone-home default) can reach anything off this machine: there is no route
# out, so a connection to a non-local address fails at once with "network unreachable" and no
# packet leaves. `make test` runs pytest through it; set-up that needs the package registries
# runs before, outside.
#
#   scripts/in-netns.sh CMD [ARGS...]
#
# Inside, SPE_TEST_NETNS=1 is set (the suite's fixtures key their state by namespace and never
# reuse a control plane started outside). Already inside: the command runs as it is.
set -euo pipefail
if [[ "${SPE_TEST_NETNS:-}" == 1 ]]; then
  exec "$@"
fi
(( $# > 0 )) || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }
command -v unshare >/dev/null || { echo "in-netns.sh: unshare (util-linux) is needed" >&2; exit 1; }
command -v ip >/dev/null || { echo "in-netns.sh: ip (iproute2) is needed" >&2; exit 1; }
if [[ "$(id -u)" == 0 ]]; then
  ns_args=(--net)
else
  # Without root a user namespace grants the right to make a network namespace; the real node
  # (containerd, kubelet) still needs a real root, so run `make test` as root for the whole suite.
  ns_args=(--user --map-root-user --net)
fi
exec unshare "${ns_args[@]}" -- env SPE_TEST_NETNS=1 bash -c 'ip link set lo up && exec "$@"' in-netns "$@"
