#!/usr/bin/env bash
# CI helper (fresh Debian, root): make sure a Docker engine is running, then build
# the offline postgres+pgvector test image. Idempotent; extra args go to build.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
die() { echo ".ci/docker.sh: ERROR: $*" >&2; exit 1; }

if ! docker info >/dev/null 2>&1; then
    if ! command -v docker >/dev/null || [ ! -x /usr/sbin/dockerd ]; then
        [ "$(id -u)" = 0 ] || die "Docker is not installed and we are not root"
        echo ".ci/docker.sh: installing docker.io"
        export DEBIAN_FRONTEND=noninteractive
        { apt-get update -q && apt-get install -y -q docker.io; } || die "apt-get install docker.io failed"
    fi
    if ! docker info >/dev/null 2>&1; then
        echo ".ci/docker.sh: starting dockerd (log: /tmp/dockerd.log)"
        nohup /usr/sbin/dockerd >/tmp/dockerd.log 2>&1 &
        for _ in $(seq 30); do docker info >/dev/null 2>&1 && break; sleep 1; done
        docker info >/dev/null 2>&1 \
            || { tail -n 20 /tmp/dockerd.log >&2; die "dockerd not ready after 30 s (see /tmp/dockerd.log)"; }
    fi
fi

docker/postgres-pgvector/build.sh "$@" || die "image build failed"
