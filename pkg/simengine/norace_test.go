//go:build !race

package simengine

// raceEnabled widens bounds that include the server's request parsing,
// which the race detector slows several times.
const raceEnabled = false
