#!/usr/bin/env bash
# The real worker node of the local cluster (spe-dev's spe-node-1) and the daemonless image build:
# containerd + runc, the CNI plugins (bridge, host-local, loopback), iptables/ipset (kube-router,
# kube-proxy), socat (relay to the API server), conntrack, mmdebstrap (base root filesystem),
# buildah (builds images/*/Dockerfile without a Docker engine) and gcc (the pause binary).
# Debian packages; idempotent: installs only what is missing. Nothing is started or enabled.
set -euo pipefail
PKGS=(containerd runc containernetworking-plugins iptables ipset socat conntrack mmdebstrap buildah zstd
      uidmap gcc libc6-dev iproute2)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "node.sh: Debian packages missing (${missing[*]}); run as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "node.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Other apt users on the machine: wait for the dpkg lock rather than failing.
apt_opts=(-o DPkg::Lock::Timeout=600 -o APT::Install-Recommends=false)
apt-get "${apt_opts[@]}" install -y "${missing[@]}" >/dev/null 2>&1 ||
  { apt-get "${apt_opts[@]}" update >/dev/null && apt-get "${apt_opts[@]}" install -y "${missing[@]}"; }
# The Debian containerd package would start a system containerd under an init system; there is
# none here, and spe-dev runs its own with its own paths. Nothing to stop.
echo "node.sh: installed ${missing[*]}"
