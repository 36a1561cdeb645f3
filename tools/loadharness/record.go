package main

import (
	"bytes"
	"math"
	"time"
)

// sample is one content chunk as seen by a reader. Both times are
// wall-clock Unix nanoseconds on the same machine, so they compare across
// the engine and worker processes.
type sample struct {
	sent    int64 // the engine's sim_sent_unix_ns, just before its write
	arrived int64 // the reader's arrival stamp
}

// streamRecord is what a reader records about one stream. Its samples are
// preallocated (see newRecords) so that recording a chunk never allocates
// and the harness's own storage is in the memory baseline.
type streamRecord struct {
	samples []sample // content chunks in arrival order

	sent     time.Duration // request handed to the transport, offset from the run start
	getConn  time.Duration // httptrace GetConn, offset; 0 if not reached
	gotConn  time.Duration // httptrace GotConn, offset; 0 if not reached
	reused   bool          // the connection came from the idle pool
	headers  time.Duration // response headers arrived, offset; 0 if not reached
	chunks   int           // content chunks the reader counted (kept or not)
	noStamp  int           // content chunks without a sim_sent_unix_ns field
	overflow int           // content chunks past the preallocated capacity, not kept

	errClass string // "" on success
	err      string
}

// newRecords returns n records, each with room for capacity samples, all
// carved from one slice that is written once here so its pages are
// resident before the memory baseline is taken.
func newRecords(n, capacity int) []streamRecord {
	flat := make([]sample, n*capacity)
	for i := range flat {
		flat[i] = sample{sent: -1, arrived: -1}
	}
	recs := make([]streamRecord, n)
	for i := range recs {
		recs[i].samples = flat[i*capacity : i*capacity : (i+1)*capacity]
	}
	return recs
}

// add records one SSE data event (the data field, without "data:") that
// arrived at arrived (wall-clock Unix ns). Events other than content
// chunks (the usage-only chunk, [DONE]) are ignored.
func (r *streamRecord) add(arrived int64, data []byte) {
	if !isContent(data) {
		return
	}
	r.chunks++
	sent, ok := parseStamp(data)
	switch {
	case !ok:
		r.noStamp++
	case len(r.samples) == cap(r.samples):
		r.overflow++
	default:
		r.samples = append(r.samples, sample{sent: sent, arrived: arrived})
	}
}

var (
	stampKey     = []byte(`"sim_sent_unix_ns":`)
	emptyChoices = []byte(`"choices":[]`)
)

// isContent reports whether an event's data is a chunk with choices, as
// opposed to the final usage-only chunk ("choices":[]) or [DONE]. The
// simulated engine never sends role-only or empty chunks in the harness's
// configuration, so a chunk with choices carries one token.
func isContent(data []byte) bool {
	data = bytes.TrimLeft(data, " ")
	return len(data) > 0 && data[0] == '{' && !bytes.Contains(data, emptyChoices)
}

// parseStamp returns the value of "sim_sent_unix_ns" in data. The engine
// writes it last in the object, so the search starts from the end.
func parseStamp(data []byte) (int64, bool) {
	i := bytes.LastIndex(data, stampKey)
	if i < 0 {
		return 0, false
	}
	digits := data[i+len(stampKey):]
	n := 0
	for n < len(digits) && '0' <= digits[n] && digits[n] <= '9' {
		n++
	}
	if n == 0 || n > 19 {
		return 0, false
	}
	var v uint64 // 19 digits stay below 10^19 < 2^64
	for _, c := range digits[:n] {
		v = v*10 + uint64(c-'0')
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}
