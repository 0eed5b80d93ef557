#!/usr/bin/env bash
# npm run image -- [--base IMAGE] --tag NAME
#
# Builds the berth image with the current DOCKER_HOST, without network access during the build:
# dist/ is compiled and the production node_modules/ are installed here on the host, and the
# build context carries them (marked .prebuilt), so the Dockerfile's build stage only copies.
# Native addons are compiled for this host's node: use a BASE whose node has the same major
# version (20). `docker build .` in a checkout still builds everything inside the image.
set -euo pipefail
cd "$(dirname "$0")/.."

base=
tag=
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base=${2:?--base needs an image}; shift 2 ;;
    --tag) tag=${2:?--tag needs a name}; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "image: unknown argument $1 (usage: npm run image -- [--base IMAGE] --tag NAME)" >&2; exit 2 ;;
  esac
done
[ -n "$tag" ] || { echo 'image: --tag NAME is required' >&2; exit 2; }

ctx=$(mktemp -d /tmp/berth-image.XXXXXX)
trap 'rm -rf "$ctx"' EXIT

npm run build --silent
cp -a Dockerfile package.json package-lock.json bin dist crds deploy "$ctx/"
# The installed tree minus devDependencies: offline, and the addons built by `npm ci` stay.
cp -a node_modules "$ctx/"
(cd "$ctx" && npm prune --omit=dev --no-audit --no-fund --loglevel=error >/dev/null)
touch "$ctx/.prebuilt"

args=(build --tag "$tag" --label "org.opencontainers.image.revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)")
[ -z "$base" ] || args+=(--build-arg "BASE=$base")
docker "${args[@]}" "$ctx"
