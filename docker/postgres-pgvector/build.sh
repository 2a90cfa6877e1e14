#!/usr/bin/env bash
# Build a FROM-scratch PostgreSQL 16 + pgvector image, fully offline, from the
# binaries of the pip-installed `pgserver` wheel. Usage: build.sh [IMAGE]
set -euo pipefail

IMAGE=${1:-${IMAGE:-darasa-db/postgres-pgvector:16}}
PYTHON=${PYTHON:-python}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "build.sh: $*" >&2; exit 1; }

# Locate the wheel without importing it (importing pgserver has side effects).
pkg=$("$PYTHON" -c 'import importlib.util as u, os; print(os.path.dirname(u.find_spec("pgserver").origin))') \
    || die "pgserver is not installed for $PYTHON (pip install pgserver)"
site=$(dirname "$pkg")
[ -x "$pkg/pginstall/bin/postgres" ] || die "no $pkg/pginstall/bin/postgres"
[ -d "$site/pgserver.libs" ] || die "no $site/pgserver.libs"
command -v ldd >/dev/null || die "ldd is required"

start=$(date +%s)
ctx=$(mktemp -d "${TMPDIR:-/tmp}/postgres-pgvector.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
root=$ctx/rootfs
mkdir -p "$root"/{bin,etc,tmp,var/lib,var/run,usr/local/bin,opt/site/pgserver} \
    "$ctx"/pghome/postgresql/data "$ctx"/pgrun/postgresql
chmod 1777 "$root/tmp"
chmod 0700 "$ctx/pghome/postgresql/data"
chmod 0775 "$ctx/pgrun/postgresql"

# Same relative layout as site-packages: the binaries' RPATH is $ORIGIN/../../../pgserver.libs.
cp -a "$pkg/pginstall" "$root/opt/site/pgserver/"
cp -a "$site/pgserver.libs" "$root/opt/site/"
rm -rf "$root/opt/site/pgserver/pginstall/include" "$root"/opt/site/pgserver/pginstall/lib/*.a
cp -L /bin/dash "$root/bin/sh"

# Every shared library (and the loader) that ldd reports, at the same absolute path.
mapfile -t elves < <(find "$root/opt/site/pgserver/pginstall/bin" -type f;
                     find "$root/opt/site/pgserver/pginstall/lib" -name '*.so*' -type f; echo /bin/dash)
for f in "${elves[@]}"; do
    out=$(ldd "$f" 2>&1) || continue                    # not a dynamic ELF (e.g. a script)
    if grep -q 'not found' <<<"$out"; then die "unresolved library for $f:"$'\n'"$out"; fi
    awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<<"$out"
done | sort -u | while read -r lib; do
    case $lib in "$root"/*) continue ;; esac            # bundled in pgserver.libs, already copied
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done

printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
    'postgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh' > "$root/etc/passwd"
printf '%s\n' 'root:x:0:' 'postgres:x:999:' > "$root/etc/group"
printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' > "$root/etc/nsswitch.conf"
install -m 0755 "$here/entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
cp "$here/Dockerfile" "$ctx/Dockerfile"

echo "build.sh: context $(du -sh "$ctx" | cut -f1) from $pkg"
docker build -t "$IMAGE" "$ctx"
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
echo "build.sh: built $IMAGE, size $((size / 1000000)) MB, in $(( $(date +%s) - start )) s"
