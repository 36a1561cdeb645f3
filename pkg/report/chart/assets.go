package chart

import _ "embed"

// echartsJS is ECharts 5.6.0, dist/echarts.min.js of the npm package (see
// assets/VERSIONS). It is a string so that nothing can change it. Every HTML
// chart loads it from the sibling file EChartsFile.
//
//go:embed assets/echarts.min.js
var echartsJS string

// EChartsFile is the name of the ECharts library written beside the HTML
// charts.
const EChartsFile = "echarts.min.js"
