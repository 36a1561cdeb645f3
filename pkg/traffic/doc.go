// Package traffic releases requests in the patterns the benchmarks need:
// one at a time (Sequential), a batch launched in order with each request
// released once the previous one is accepted (SequentialLaunch), a fixed
// number of clients in a closed loop (Closed), and open-loop arrivals on an
// absolute schedule (Open), with Poisson arrival times from
// PoissonArrivals.
//
// The patterns run in real time but never measure anything: they call a
// send function with a Slot saying which request it is and when the
// pattern intended it to be sent (an offset from the run start, computed
// from the plan, not from when a goroutine happened to run). The send
// function runs the request and records it.
//
// Every function returns only after all the sends it started have
// returned; when ctx is done it admits no new request, and the sends get
// the same ctx so that they can end. No goroutine outlives the call.
package traffic
