#!/usr/bin/env bash
# Keycloak server distribution for the egress gateway's reviewer-login tests (idempotent).
# Fetched from Maven Central with Maven (org.keycloak:keycloak-quarkus-dist:<ver>:zip),
# unpacked under .cache/keycloak/keycloak-<ver>/. Runs on the machine's newest JDK (21+).
set -euo pipefail
cd "$(dirname "$0")/../.."
KEYCLOAK_VERSION="${KEYCLOAK_VERSION:-26.5.6}"
dest=".cache/keycloak"
home="$dest/keycloak-$KEYCLOAK_VERSION"
if [ -x "$home/bin/kc.sh" ]; then
  exit 0
fi
mkdir -p "$dest"
if ! command -v mvn >/dev/null; then
  echo "keycloak.sh: Maven (mvn) is needed to fetch Keycloak; apt-get install -y maven" >&2
  exit 1
fi
command -v unzip >/dev/null || { apt-get install -y unzip >/dev/null 2>&1 || { echo "keycloak.sh: unzip missing" >&2; exit 1; }; }
mvn -q -B dependency:copy \
  -Dartifact="org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:zip" \
  -DoutputDirectory="$dest" -Dmdep.overWriteReleases=false
zip="$dest/keycloak-quarkus-dist-$KEYCLOAK_VERSION.zip"
tmp="$(mktemp -d "$dest/unpack.XXXXXX")"
unzip -q "$zip" -d "$tmp"
# The zip holds one top-level folder keycloak-<ver>/; move it into place atomically.
mv "$tmp/keycloak-$KEYCLOAK_VERSION" "$home"
rm -rf "$tmp" "$zip"
echo "keycloak.sh: Keycloak $KEYCLOAK_VERSION in $home"
