#!/usr/bin/env bash
# install-test.sh: prove that a user's
#
#   go install github.com/veeksha-go/veeksha/cmd/veeksha.microbench.<name>@latest
#
# works, the way the go command really does it. The module's import path
# is redirected (git insteadOf) to a bare clone of this checkout's HEAD,
# tagged $INSTALL_TEST_VERSION, so `go` resolves @latest, fetches the
# module over git and builds it as the main module, exactly as for a
# published tag. Then:
#   - the three binaries are built with CGO_ENABLED=0 into a temporary GOBIN;
#   - each one's --version prints the tag (read from the build info: no ldflags);
#   - `go version -m` shows the module at that version and CGO_ENABLED=0,
#     and `file` (when installed) says the binary is statically linked;
#   - no package outside the standard library needs cgo.
#
# Everything happens in a temporary folder with its own module cache; the
# dependencies come from the local module cache (then GOPROXY), so the test
# needs no network when they are cached. Uncommitted changes are not tested.
#
# Usage: scripts/install-test.sh
set -euo pipefail

module=github.com/veeksha-go/veeksha
version=${INSTALL_TEST_VERSION:-v0.0.0-installtest}
binaries=(veeksha.microbench.prefill veeksha.microbench.decode veeksha.microbench.stress)

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
head=$(git -C "$root" rev-parse HEAD)
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ]; then
	echo "install-test: note: uncommitted changes in $root are not part of the test (it installs HEAD $head)"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/veeksha-install-test.XXXXXX")
cleanup() { chmod -R u+w "$work" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# A bare clone holding only HEAD, tagged with the test version: the one
# version @latest can resolve to.
git clone --quiet --bare --no-tags "$root" "$work/veeksha.git"
git -C "$work/veeksha.git" tag "$version" "$head"

# The go command fetches github.com/veeksha-go/veeksha with git from
# https://github.com/veeksha-go/veeksha; point that URL at the clone.
cat >"$work/gitconfig" <<EOF
[url "file://$work/veeksha.git"]
	insteadOf = https://$module
EOF

# Dependencies: from the local module cache first (offline), then the
# usual proxy. The module itself is private: fetched directly, and not
# looked up in the checksum database (it is not published there).
proxy="file://$(go env GOMODCACHE)/cache/download,$(go env GOPROXY)"

echo "install-test: go install $module/cmd/{$(IFS=,; echo "${binaries[*]}")}@latest (HEAD ${head:0:12} tagged $version, CGO_ENABLED=0)"
start=$SECONDS
targets=()
for b in "${binaries[@]}"; do targets+=("$module/cmd/$b@latest"); done
(
	cd "$work" # outside any module, as a user would be
	env GIT_CONFIG_GLOBAL="$work/gitconfig" GIT_CONFIG_NOSYSTEM=1 \
		GOMODCACHE="$work/modcache" GOFLAGS=-modcacherw GOPROXY="$proxy" \
		GOPRIVATE="$module" GOBIN="$work/bin" CGO_ENABLED=0 \
		go install "${targets[@]}"
)
echo "install-test: installed in $((SECONDS - start)) s"

fail=0
for b in "${binaries[@]}"; do
	bin="$work/bin/$b"
	out=$("$bin" --version)
	echo "install-test: $b --version: $out"
	case $out in
	*"$version"*) ;;
	*) echo "install-test: FAIL: $b --version does not print $version"; fail=1 ;;
	esac
	info=$(go version -m "$bin")
	mod=$(awk '$1 == "mod" {print $2, $3}' <<<"$info")
	if [ "$mod" != "$module $version" ]; then
		echo "install-test: FAIL: go version -m $b shows module \"$mod\", want \"$module $version\""; fail=1
	fi
	if [ -z "$(awk '$1 == "build" && $2 == "CGO_ENABLED=0"' <<<"$info")" ]; then
		echo "install-test: FAIL: go version -m $b does not show CGO_ENABLED=0:"; echo "$info"; fail=1
	fi
	if command -v file >/dev/null 2>&1; then
		kind=$(file -b "$bin")
		case $kind in
		*"statically linked"*) ;;
		*) echo "install-test: FAIL: $b is not statically linked: $kind"; fail=1 ;;
		esac
	fi
	echo "install-test: $b: $(wc -c <"$bin") bytes"
done

# With cgo available, no third-party package may need it: the standard
# library's cgo users (net, os/user) have pure-Go fallbacks.
cgo=$(cd "$root" && CGO_ENABLED=1 go list -deps -f '{{if and .CgoFiles (not .Standard)}}{{.ImportPath}}{{end}}' ./cmd/...)
if [ -n "$cgo" ]; then
	echo "install-test: FAIL: these packages use cgo:"; echo "$cgo"; fail=1
fi

if [ "$fail" -ne 0 ]; then
	echo "install-test: FAILED"
	exit 1
fi
echo "install-test: ok"
