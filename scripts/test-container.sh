#!/usr/bin/env bash
# npm run test:container: the image built from this checkout and run for real, with the scripts
# of ../shared/container (see its README): Docker installed and started if it is not, the local
# Debian-made base and compose images made if missing, then
#   1. build-and-smoke.sh: build the image, run it, wait for /readyz, classify a photo, check the
#      non-root user, the HEALTHCHECK and a graceful stop;
#   2. compose-smoke.sh: docker-compose.yml up with two replicas behind nginx, three
#      classifications through it, Prometheus scraping both replicas.
# Prints each step's time and the image size. Needs root (dockerd, apt, mmdebstrap).
#
# env: SHARED_DIR (default ../shared beside the checkout), KEEP_DOCKERD=1 (leave a dockerd this
#      script started running), and the shared scripts' own (PORT, LB_PORT, PROM_PORT, ...).
set -euo pipefail
checkout=$(cd "$(dirname "$0")/.." && pwd)
shared=$(cd "${SHARED_DIR:-$checkout/../shared}" && pwd)
scripts=$shared/container
[ "$(id -u)" = 0 ] || { echo "test:container: needs root (it installs and runs dockerd)" >&2; exit 1; }
[ -x "$scripts/build-and-smoke.sh" ] || { echo "test:container: no $scripts/build-and-smoke.sh" >&2; exit 1; }

docker=/usr/bin/docker
started_dockerd=0
timings=()
step() {
  local name=$1; shift
  local t0; t0=$(date +%s.%N)
  printf '\n== %s\n' "$name"
  "$@"
  timings+=("$(awk -v a="$t0" -v b="$(date +%s.%N)" -v n="$name" 'BEGIN { printf "%7.1f s  %s", b - a, n }')")
}
has_image() { "$docker" image inspect "$@" >/dev/null 2>&1; }

finish() {
  local status=$?
  if [ "$started_dockerd" = 1 ] && [ "${KEEP_DOCKERD:-0}" != 1 ] && [ -f /run/dockerd-manual.pid ]; then
    kill "$(cat /run/dockerd-manual.pid)" 2>/dev/null || true
  fi
  printf '\n== test:container timings\n'
  printf '%s\n' "${timings[@]}"
  [ "$status" = 0 ] && echo "test:container OK" || echo "test:container FAILED ($status)"
}
trap finish EXIT

[ -x "$docker" ] && "$docker" info >/dev/null 2>&1 || started_dockerd=1
step "Docker (install if missing, start dockerd)" bash "$scripts/setup-docker.sh"
has_image local/node:20-trixie-slim || step "base image local/node:20-trixie-slim" bash "$scripts/make-base.sh"
has_image local/nginx:debian local/prometheus:debian || step "compose images local/nginx, local/prometheus" bash "$scripts/make-compose-images.sh"
step "build the image, run it, smoke-test it" bash "$scripts/build-and-smoke.sh" "$checkout"
size=$("$docker" image inspect -f '{{.Size}}' "${TAG:-mobilenet-serving:local}")
timings+=("image ${TAG:-mobilenet-serving:local}: $((size / 1000000)) MB ($(awk -v b="$size" 'BEGIN { printf "%.0f", b / 1048576 }') MiB)")
step "compose: two replicas behind nginx, scraped by Prometheus" bash "$scripts/compose-smoke.sh" "$checkout"
