#!/usr/bin/env bash
# Builds the project's images on this machine without a Docker engine, for the real node of
# the local cluster (spe-dev imports them into its containerd; nothing is ever pulled):
#   1. a Debian base root filesystem with mmdebstrap (python3 + venv), from this machine's apt
#      sources, committed as localhost/spe-base:<key>; an image whose directory has a `packages`
#      file (Debian package names, e.g. the hub's nodejs) gets a base of its own with them added;
#   2. images/<name>/Dockerfile built by buildah (chroot isolation, no daemon) with
#      --build-arg BASE_IMAGE=localhost/spe-base:<key> (a release keeps the pinned default);
#   3. each saved as a zstd-compressed docker-archive under .cache/images/ (about a third of
#      its size), listed in .cache/images/index.json (ref, archive, key). spe-dev reads the index
#      and streams each archive into the node's containerd; the tests read the digest there.
# Keys hash the inputs (package list, Dockerfile, build context, RECIPE): an unchanged
# tree builds nothing. buildah's storage is .cache/images/buildah; once an image is saved, its
# layers there go (they were most of the disk a build used: a clean run of the suite filled a
# CI machine's disk), only the bases stay. SPE_IMAGES_KEEP_LAYERS=1 keeps buildah's layer cache
# instead, for whoever rebuilds the images often (the pinned tools' layers stay cached).
# Environment: SPE_IMAGES (default "notebook-jupyterlab ingest hub operator egress"), SPE_IMAGES_CACHE (archives and
# index), SPE_BUILDAH_STORE (buildah's storage, default $SPE_IMAGES_CACHE/buildah; several
# checkouts may share one: a lock next to it lets one build at a time use it),
# SPE_IMAGES_KEEP_LAYERS (1: keep buildah's layer cache).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
CACHE="${SPE_IMAGES_CACHE:-$ROOT/.cache/images}"
IMAGES="${SPE_IMAGES:-notebook-jupyterlab ingest hub operator egress}"
BASE_PACKAGES="python3,python3-venv,python-is-python3,ca-certificates,tini,tesseract-ocr-eng"
log() { printf '[images] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (mmdebstrap --mode=root, buildah's chroot isolation)"
for p in mmdebstrap buildah zstd; do command -v "$p" >/dev/null || die "$p missing: bash scripts/deps.d/node.sh"; done
STORE_DIR="${SPE_BUILDAH_STORE:-$CACHE/buildah}"
mkdir -p "$CACHE" "$STORE_DIR"
exec 9>"$STORE_DIR.lock"
if ! flock --nonblock 9; then
  log "waiting for another build using $STORE_DIR"
  flock 9
fi
STORE=(--root "$STORE_DIR/root" --runroot "$STORE_DIR/run" --storage-driver overlay)
b() { buildah "${STORE[@]}" "$@"; }
export BUILDAH_ISOLATION=chroot
# Leave no working container and no mount of buildah's storage behind.
# Keeps the script's own exit status (with pipefail, a grep that finds no mount would replace it).
release_storage() {
  local rc=$?
  b rm --all >/dev/null 2>&1 || true
  { grep -o " $STORE_DIR/[^ ]*" /proc/self/mountinfo || true; } | sort -r |
    while read -r mp; do umount "$mp" 2>/dev/null || true; done
  exit "$rc"
}
trap release_storage EXIT

# Bump when the recipe below changes in a way that changes what it builds.
RECIPE=1

# ---- 1. base ------------------------------------------------------------------------------
# ensure_base PACKAGES: the base with these Debian packages (built once per package list); sets BASE_REF.
ensure_base() {
  local packages="$1" base_key tarball ctr start sources f
  base_key="$(printf 'base %s %s\n' "$packages" "$RECIPE" | sha256sum | cut -c1-16)"
  BASE_KEY="$base_key"
  BASE_REF="localhost/spe-base:$base_key"
  b inspect --type image "$BASE_REF" >/dev/null 2>&1 && return 0
  # This machine's apt sources (no mirror is named here): every active one-line or deb822 file.
  sources=()
  [ -s /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list && sources+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && sources+=("$f")
  done
  [ ${#sources[@]} -gt 0 ] || die "no apt sources configured in /etc/apt"
  tarball="$CACHE/base-$base_key.tar"
  if [ ! -s "$tarball" ]; then
    log "base: mmdebstrap --variant=minbase --include=$packages bookworm (about 2 minutes)"
    start=$SECONDS
    mmdebstrap --quiet --mode=root --format=tar --variant=minbase --include="$packages" \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --customize-hook='chroot "$1" useradd --uid 1000 --gid 100 --no-create-home --home-dir /home/jovyan jovyan' \
      --customize-hook='mkdir -p "$1/home/jovyan" && chown 1000:100 "$1/home/jovyan"' \
      --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
      bookworm "$tarball.tmp.tar" "${sources[@]}" || die "mmdebstrap failed"
    mv "$tarball.tmp.tar" "$tarball"
    log "base: root filesystem in $(( SECONDS - start ))s ($(du -h "$tarball" | cut -f1))"
  fi
  ctr="$(b from scratch)"
  b add "$ctr" "$tarball" / >/dev/null
  b config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd /bin/sh \
    --label org.opencontainers.image.description="spe-dev local base (mmdebstrap bookworm)" "$ctr"
  b commit --quiet "$ctr" "$BASE_REF" >/dev/null
  b rm "$ctr" >/dev/null
  rm -f "$tarball"
  log "base: $BASE_REF"
}
ensure_base "$BASE_PACKAGES"
COMMON_BASE_REF="$BASE_REF"

# ---- 2. images ----------------------------------------------------------------------------
context_key() {  # the build context the Dockerfiles COPY from, plus the Dockerfile's directory
  (cd "$ROOT" && find pyproject.toml README.md operator devtools ingest egress workspace "images/$1" \
     -type f ! -name '*.pyc' ! -path '*/__pycache__/*' ! -path '*.egg-info/*' -print0 | sort -z |
     xargs -0 sha256sum) | sha256sum | cut -c1-16
}

# This machine's TLS trust and pip configuration (e.g. a proxy's CA) for the RUN steps that
# download packages: bind-mounted read-only while building, never part of an image's layers.
build_mounts=()
[ -f /etc/ssl/certs/ca-certificates.crt ] &&
  build_mounts+=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
[ -f /etc/pip.conf ] && build_mounts+=(--volume /etc/pip.conf:/etc/pip.conf:ro)

keep_layers="${SPE_IMAGES_KEEP_LAYERS:-0}"
layers=(--layers=false)
[ "$keep_layers" = 1 ] && layers=(--layers)
index="$CACHE/index.json"
entries=()
for name in $IMAGES; do
  [ -f "$ROOT/images/$name/Dockerfile" ] || die "images/$name/Dockerfile does not exist"
  if [ -f "$ROOT/images/$name/packages" ]; then
    ensure_base "$BASE_PACKAGES,$(grep -v '^#' "$ROOT/images/$name/packages" | xargs | tr ' ' ',')"
  else
    ensure_base "$BASE_PACKAGES"
  fi
  key="$(printf '%s %s %s\n' "$BASE_KEY" "$(context_key "$name")" "$RECIPE" | sha256sum | cut -c1-16)"
  ref="localhost/spe-$name:$key"
  archive="$CACHE/$name-$key.tar.zst"
  if [ ! -s "$archive" ] && [ -s "$CACHE/$name-$key.tar" ]; then  # saved before archives were compressed
    zstd --quiet --force -T0 -3 --rm "$CACHE/$name-$key.tar" -o "$archive.tmp" && mv "$archive.tmp" "$archive"
  fi
  if [ ! -s "$archive" ]; then
    log "$name: buildah bud (BASE_IMAGE=$BASE_REF)"
    start=$SECONDS
    b bud --quiet "${layers[@]}" --pull=never --isolation chroot --network host "${build_mounts[@]}" \
      --build-arg BASE_IMAGE="$BASE_REF" -f "$ROOT/images/$name/Dockerfile" -t "$ref" "$ROOT" >/dev/null ||
      die "buildah bud of images/$name/Dockerfile failed"
    rm -f "$archive.tar"
    b push --quiet "$ref" "docker-archive:$archive.tar:$ref" || die "saving $ref failed"
    zstd --quiet --force -T0 -3 --rm "$archive.tar" -o "$archive.tmp" || die "compressing $ref failed"
    mv "$archive.tmp" "$archive"
    log "$name: $ref in $(( SECONDS - start ))s ($(du -h "$archive" | cut -f1) compressed)"
    [ "$keep_layers" = 1 ] || b rmi --force "$ref" >/dev/null
    # Older archives of this image go (.tar: before they were compressed).
    for old in "$CACHE/$name"-*.tar "$CACHE/$name"-*.tar.zst; do
      [ "$old" != "$archive" ] && rm -f "$old" "$old".imported-*
    done
  else
    log "$name: up to date ($ref)"
  fi
  entries+=("\"$name\": {\"ref\": \"$ref\", \"archive\": \"$archive\", \"key\": \"$key\"}")
done
# Keep the entries of images this run did not build whose archives are still there, so that
# building one image (SPE_IMAGES=operator) leaves the others importable.
( IFS=,; printf '{"base": "%s", "images": {%s}}\n' "$COMMON_BASE_REF" "${entries[*]}" ) |
  python3 -c 'import json, os, sys
new = json.load(sys.stdin)
try:
    old = json.load(open(sys.argv[1]))["images"]
except (OSError, ValueError, KeyError):
    old = {}
for name, entry in old.items():
    if name not in new["images"] and os.path.exists(entry.get("archive", "")):
        new["images"][name] = entry
print(json.dumps(new, sort_keys=True))' "$index" >"$index.tmp"
mv "$index.tmp" "$index"
# What a build left behind in buildah's storage: intermediate stages, images of earlier keys.
if [ "$keep_layers" != 1 ]; then
  b rmi --prune --force >/dev/null 2>&1 || true
  # (a grep that finds nothing must not end the script: pipefail)
  { b images --noheading --format '{{.Name}}:{{.Tag}}' 2>/dev/null || true; } |
    { grep -v '^localhost/spe-base:' || true; } | while read -r stale; do
      b rmi --force "$stale" >/dev/null 2>&1 || true
    done
fi
log "buildah's storage: $(du -sh "$STORE_DIR" 2>/dev/null | cut -f1)"
log "index: $index"
