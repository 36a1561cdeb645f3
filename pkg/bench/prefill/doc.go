// Package prefill is the prefill microbenchmark: how time to first chunk
// (TTFC) grows with prompt length. It sends one request at a time, lengths
// in a stair (each length SamplesPerLength times, in the user's order),
// after discarded warm-up requests, and summarizes TTFC per length.
//
// Run measures, Analyze summarizes, Check validates, and Table and Charts
// describe the results for the report writers. Analyze and Check work from
// the recorded requests alone, so a saved run can be validated again later.
package prefill
