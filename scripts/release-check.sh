#!/usr/bin/env bash
# release-check.sh: prove that the release build works.
#
#   1. goreleaser $GORELEASER_VERSION: reused from $TOOLS_BIN when that
#      version is there, else installed there with go install (about ten
#      minutes on two cores, once);
#   2. goreleaser check;
#   3. goreleaser release --snapshot --clean in a clean clone of HEAD, so
#      the snapshot is what a tag on this commit would build, and nothing
#      is written into the checkout (uncommitted changes are not built);
#   4. from the linux/amd64 archive: each binary's --version (it must name
#      the snapshot version and the commit) and a short run against the
#      built-in simulated engine (--api-base sim), which must exit 0;
#   5. prints the archives, their checksums and sizes;
#   6. scripts/install-test.sh (go install from the module path), unless
#      SKIP_INSTALL_TEST=1.
#
# Nothing is published and no network is used beyond the Go module proxy
# (for goreleaser itself and uncached modules).
#
# Environment:
#   GORELEASER_VERSION  goreleaser to use (default v2.15.1)
#   TOOLS_BIN           where goreleaser is looked for and installed
#                       (default ~/.cache/veeksha-tools/bin)
#   DIST_DIR            when set, the archives and checksums.txt are copied there
#   SKIP_INSTALL_TEST   1 skips step 6
#
# Usage: scripts/release-check.sh
set -euo pipefail

GORELEASER_VERSION=${GORELEASER_VERSION:-v2.15.1}
TOOLS_BIN=${TOOLS_BIN:-$HOME/.cache/veeksha-tools/bin}
binaries=(veeksha.microbench.prefill veeksha.microbench.decode veeksha.microbench.stress)

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
step() { printf '\n=== release-check: %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

step "goreleaser $GORELEASER_VERSION"
goreleaser=$TOOLS_BIN/goreleaser
have=""
if [ -x "$goreleaser" ]; then
	have=$("$goreleaser" --version 2>/dev/null | awk '/^GitVersion:/ {print $2}')
fi
if [ "$have" = "$GORELEASER_VERSION" ]; then
	echo "reusing $goreleaser ($have)"
else
	echo "installing goreleaser $GORELEASER_VERSION into $TOOLS_BIN (found: ${have:-none}); this takes minutes"
	start=$SECONDS
	mkdir -p "$TOOLS_BIN"
	GOBIN=$TOOLS_BIN go install "github.com/goreleaser/goreleaser/v2@$GORELEASER_VERSION"
	echo "installed in $((SECONDS - start)) s"
fi

step "goreleaser check"
(cd "$root" && "$goreleaser" check)

work=$(mktemp -d "${TMPDIR:-/tmp}/veeksha-release-check.XXXXXX")
trap 'rm -rf "$work"' EXIT

step "snapshot of HEAD $(git -C "$root" rev-parse --short=12 HEAD)"
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ]; then
	echo "note: uncommitted changes in $root are not part of the snapshot"
fi
src=$work/src
git clone --quiet "$root" "$src"
# A clone of a local folder has that folder as origin. Without a remote
# goreleaser's snapshot would drop every git fact (commit "none"); with
# the project's URL it records the commit. Adding it touches no network.
git -C "$src" remote set-url origin "https://github.com/veeksha-go/veeksha.git"
start=$SECONDS
(cd "$src" && "$goreleaser" release --snapshot --clean)
echo "snapshot built in $((SECONDS - start)) s"
dist=$src/dist

step "linux/amd64 binaries from the archive"
archives=("$dist"/veeksha_*_linux_amd64.tar.gz)
archive=${archives[0]}
version=${archive##*/veeksha_}
version=${version%_linux_amd64.tar.gz}
commit=$(git -C "$src" rev-parse HEAD)
mkdir "$work/unpacked"
tar -xzf "$archive" -C "$work/unpacked"
top=$work/unpacked/${archive##*/}
top=${top%.tar.gz}
for f in README.md LICENSE "${binaries[@]}"; do
	if [ ! -f "$top/$f" ]; then
		echo "FAIL: ${archive##*/} lacks $f"
		exit 1
	fi
done
echo "${archive##*/} holds: $(cd "$top" && printf '%s ' *)"

smoke() {
	local name=$1
	shift
	local log=$work/$name.log
	local t=$SECONDS
	local rc=0
	"$top/$name" "$@" >"$log" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "FAIL: $name $* exited $rc:"
		cat "$log"
		exit 1
	fi
	echo "$name $* : exit 0 in $((SECONDS - t)) s; $(grep -E 'passed, [0-9]+ warnings' "$log" || echo 'no validation summary')"
}
for b in "${binaries[@]}"; do
	out=$("$top/$b" --version)
	echo "$b --version: $out"
	case $out in
	*"v$version"*"${commit:0:12}"*) ;;
	*)
		echo "FAIL: $b --version does not name v$version and commit ${commit:0:12}"
		exit 1
		;;
	esac
done
runs=$work/runs
smoke veeksha.microbench.prefill --api-base sim --input-lengths 128 --samples-per-length 2 --output-dir "$runs" -q
smoke veeksha.microbench.decode --api-base sim --batch-sizes 1 2 --input-lengths 128 --samples-per-length 1 --output-dir "$runs" -q
smoke veeksha.microbench.stress --api-base sim --concurrency-levels 1 2 --point-duration 3 --warmup-duration 1 --output-length 16 --output-dir "$runs" -q

step "archives"
for f in "$dist"/*.tar.gz "$dist"/*.zip "$dist"/checksums.txt; do
	printf '%12d  %s\n' "$(wc -c <"$f")" "${f##*/}"
done
echo "checksums.txt:"
cat "$dist/checksums.txt"
echo "linux/amd64 binary sizes (bytes):"
for b in "${binaries[@]}"; do printf '%12d  %s\n' "$(wc -c <"$top/$b")" "$b"; done
if [ -n "${DIST_DIR:-}" ]; then
	mkdir -p "$DIST_DIR"
	cp "$dist"/*.tar.gz "$dist"/*.zip "$dist/checksums.txt" "$DIST_DIR"/
	echo "copied the archives and checksums.txt to $DIST_DIR"
fi

if [ "${SKIP_INSTALL_TEST:-}" != 1 ]; then
	step "install test"
	"$root/scripts/install-test.sh"
fi

step "ok"
