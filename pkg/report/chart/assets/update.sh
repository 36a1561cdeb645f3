#!/bin/sh
# update.sh refreshes the vendored ECharts build that the chart package
# embeds: it fetches the npm package echarts@VERSION with `npm pack`, copies
# dist/echarts.min.js, LICENSE and NOTICE here, and records the version and
# checksums in VERSIONS. Run it through `make assets` (from the module root)
# or directly: sh pkg/report/chart/assets/update.sh 5.6.0
# go-echarts v2 targets ECharts 5: do not move to 6 without checking it.
set -eu
version=${1:-5.6.0}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "echarts@$version" >/dev/null)
tarball="$tmp/echarts-$version.tgz"
tar -xzf "$tarball" -C "$tmp" package/dist/echarts.min.js package/LICENSE package/NOTICE
cp "$tmp/package/dist/echarts.min.js" "$here/echarts.min.js"
cp "$tmp/package/LICENSE" "$here/LICENSE-echarts"
cp "$tmp/package/NOTICE" "$here/NOTICE-echarts"
sum() { sha256sum "$1" | cut -d' ' -f1; }
cat >"$here/VERSIONS" <<VERSIONS
# Vendored web assets, embedded into the binaries (go:embed in ../assets.go).
# Refresh with "make assets" (runs update.sh: npm pack echarts@<version>).
package: echarts (npm registry)
version: $version
license: Apache-2.0 (LICENSE-echarts, NOTICE-echarts)
file: echarts.min.js (from dist/echarts.min.js)
sha256: $(sum "$here/echarts.min.js")
tarball: echarts-$version.tgz sha256 $(sum "$tarball")
VERSIONS
echo "echarts $version -> $here"
