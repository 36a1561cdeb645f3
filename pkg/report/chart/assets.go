package chart

import _ "embed"

// echartsJS is ECharts 5.6.0, dist/echarts.min.js of the npm package (see
// assets/VERSIONS). It is a string so that nothing can change it. The
// report page holds it inline; the pages Chromium snapshots load it from
// the sibling file EChartsFile, in a temporary folder.
//
//go:embed assets/echarts.min.js
var echartsJS string

// EChartsFile is the name of the ECharts library beside the pages that
// Chromium snapshots.
const EChartsFile = "echarts.min.js"
