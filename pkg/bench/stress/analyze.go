package stress

import (
	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/metrics"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/servermetrics"
	"github.com/veeksha-go/veeksha/pkg/slo"
)

// Point is the summary of one level. Times are in seconds, throughputs
// in tokens per second, interactivity in tokens per second per user.
type Point struct {
	Level float64 `json:"level"`
	// Complete is false for a level that was interrupted.
	Complete bool `json:"complete"`

	InputThroughput  float64 `json:"input_throughput"`
	OutputThroughput float64 `json:"output_throughput"`
	E2EP50           float64 `json:"e2e_latency_p50"`
	E2EP99           float64 `json:"e2e_latency_p99"`
	TTFCP50          float64 `json:"ttfc_p50"`
	TTFCP99          float64 `json:"ttfc_p99"`
	TPOTP50          float64 `json:"tpot_p50"`
	TPOTP99          float64 `json:"tpot_p99"`
	// InteractivityP50 is 1 / TPOT P50; InteractivityP99 is 1 / TPOT P99,
	// the speed of the slowest 1 % of users (not a 99th percentile of speed).
	InteractivityP50 float64 `json:"interactivity_p50"`
	InteractivityP99 float64 `json:"interactivity_p99"`
	// NumRequests is the number of successful requests sent inside the
	// measurement window: the latency sample.
	NumRequests int `json:"num_requests"`

	// E2E, TTFC and TPOT are the full summaries of the same sample.
	E2E  metrics.Summary `json:"e2e_s"`
	TTFC metrics.Summary `json:"ttfc_s"`
	TPOT metrics.Summary `json:"tpot_s"`

	// Window is the fixed measurement window [warmup, duration] in seconds.
	WindowStartS float64 `json:"window_start_s"`
	WindowEndS   float64 `json:"window_end_s"`
	// Sent counts the requests sent inside the window, failures included;
	// Errors the failed ones among them. Cut counts those still receiving
	// tokens at the end of the grace period: not failures, but left out
	// of the latencies (a request that did not complete and was no longer
	// receiving is a failure of class timeout).
	Sent   int `json:"sent"`
	Errors int `json:"errors"`
	Cut    int `json:"cut"`
	// SentTotal counts every request the level sent, warm-up and after
	// the window included; ErrorsOutside the failed ones sent outside the
	// window. Canceled counts the requests an interrupt stopped (not
	// failures). ErrorsBy tallies every failure of the level by class.
	SentTotal     int                `json:"sent_total"`
	ErrorsOutside int                `json:"errors_outside_window"`
	Canceled      int                `json:"canceled,omitempty"`
	ErrorsBy      result.ErrorCounts `json:"error_counts"`
	OutputToks    float64            `json:"output_tokens_in_window"`
	InputToks     float64            `json:"input_tokens_in_window"`

	// SendLag summarizes actual minus intended send time (seconds). In
	// open loop it shows whether the client kept the schedule.
	SendLag metrics.Summary `json:"send_lag_s"`
	// Open loop only: the nominal rate, the rate of the realized Poisson
	// schedule inside the window, the rate actually sent, and latencies
	// measured from the intended send time (which include any client delay).
	OfferedRate    float64          `json:"offered_rate,omitempty"`
	ScheduledRate  float64          `json:"scheduled_rate,omitempty"`
	AchievedRate   float64          `json:"achieved_rate,omitempty"`
	E2EFromIntent  *metrics.Summary `json:"e2e_from_intended_s,omitempty"`
	TTFCFromIntent *metrics.Summary `json:"ttfc_from_intended_s,omitempty"`
	// Fidelity says whether the client kept up during the level.
	Fidelity fidelity.Assessment `json:"client_fidelity"`
	// Server is what the server's own metrics reported during the level.
	Server *servermetrics.Summary `json:"server_metrics,omitempty"`
	// Goodput, with an SLO, counts the requests sent in the window that
	// met it (failures count against the ratio); its keys
	// (goodput_ratio, goodput_rps, goodput_output_throughput) sit in the
	// entry itself.
	*slo.Goodput
}

// Valid reports whether the point has enough samples to be used at all.
func (p Point) Valid() bool { return p.NumRequests >= 2 }

// Failed is the number of failed requests the level sent, inside the
// window or not.
func (p Point) Failed() int { return p.Errors + p.ErrorsOutside }

// failure classifies a record: cut (still receiving at the end of the
// grace period), canceled by an interrupt, or failed.
func failure(r *result.Request) (cut, canceled, failed bool) {
	switch {
	case r.OK():
		return false, false, false
	case r.ErrClass == result.ErrCanceled && r.Err == CutError:
		return true, false, false
	case r.ErrClass == result.ErrCanceled:
		return false, true, false
	default:
		return false, false, true
	}
}

// Analyze summarizes one level. Output throughput counts every generated
// token whose chunk arrived inside [warmup, duration] — from requests that
// finished later, or failed, too — divided by the window's length; input
// throughput counts the prompt tokens of requests whose first chunk
// arrived inside the window. Latency percentiles use the successful
// requests sent inside the window.
func Analyze(run LevelRun) Point {
	win := run.window()
	p := Point{Level: run.Level, Complete: run.Complete(), WindowStartS: win.Start.Seconds(), WindowEndS: win.End.Seconds()}

	var e2e, ttfc, tpot, lag, e2eIntent, ttfcIntent []float64
	var inWindow, failed []result.Request
	for i := range run.Requests {
		r := &run.Requests[i]
		p.SentTotal++
		p.OutputToks += tokensInWindow(r, win)
		if len(r.TokenTimes) > 0 && win.Contains(r.TokenTimes[0]) {
			p.InputToks += float64(promptTokens(r))
		}
		cut, canceled, fail := failure(r)
		if fail {
			failed = append(failed, *r)
		}
		if canceled {
			p.Canceled++
		}
		if !win.Contains(r.Sent) {
			if fail {
				p.ErrorsOutside++
			}
			continue
		}
		p.Sent++
		inWindow = append(inWindow, *r)
		lag = append(lag, r.SendLag().Seconds())
		if !r.OK() {
			switch {
			case cut:
				p.Cut++
			case fail:
				p.Errors++
			}
			continue
		}
		d, ok := r.E2E()
		if !ok {
			continue
		}
		p.NumRequests++
		e2e = append(e2e, d.Seconds())
		first, _ := r.TTFC()
		ttfc = append(ttfc, first.Seconds())
		e2eIntent = append(e2eIntent, (r.TokenTimes[len(r.TokenTimes)-1] - r.Intended).Seconds())
		ttfcIntent = append(ttfcIntent, (r.TokenTimes[0] - r.Intended).Seconds())
		if t, ok := r.TPOT(); ok && t > 0 {
			tpot = append(tpot, t.Seconds())
		}
	}
	p.ErrorsBy = result.CountErrors(failed)
	p.Fidelity = fidelity.Assess(run.Client, inWindow)
	p.E2E, p.TTFC, p.TPOT, p.SendLag = metrics.Summarize(e2e), metrics.Summarize(ttfc), metrics.Summarize(tpot), metrics.Summarize(lag)
	p.E2EP50, p.E2EP99 = p.E2E.Median, p.E2E.P99
	p.TTFCP50, p.TTFCP99 = p.TTFC.Median, p.TTFC.P99
	p.TPOTP50, p.TPOTP99 = p.TPOT.Median, p.TPOT.P99
	if p.TPOTP50 > 0 {
		p.InteractivityP50 = 1 / p.TPOTP50
	}
	if p.TPOTP99 > 0 {
		p.InteractivityP99 = 1 / p.TPOTP99
	}
	p.OutputThroughput = win.Rate(p.OutputToks)
	p.InputThroughput = win.Rate(p.InputToks)
	if run.Config.TrafficMode == FixedRate {
		p.OfferedRate = run.load()
		p.AchievedRate = win.Rate(float64(p.Sent))
		scheduled := 0
		for i := range run.Requests {
			if win.Contains(run.Requests[i].Intended) {
				scheduled++
			}
		}
		p.ScheduledRate = win.Rate(float64(scheduled))
		ei, ti := metrics.Summarize(e2eIntent), metrics.Summarize(ttfcIntent)
		p.E2EFromIntent, p.TTFCFromIntent = &ei, &ti
	}
	return p
}

// AnalyzeSLO is Analyze plus the point's goodput against s: the requests
// sent inside the window are judged, and the rates divide by the window's
// length. A zero s leaves Goodput nil.
func AnalyzeSLO(run LevelRun, s slo.SLO) Point {
	p := Analyze(run)
	if s.IsZero() {
		return p
	}
	win := run.window()
	var sent []result.Request
	for i := range run.Requests {
		if win.Contains(run.Requests[i].Sent) {
			sent = append(sent, run.Requests[i])
		}
	}
	g := s.Judge(sent, win.Len())
	p.Goodput = &g
	return p
}

// tokensInWindow counts the generated tokens of r whose chunk arrived
// inside w. A chunk's token count is known from per-chunk usage; else,
// when the server reported more tokens than chunks, the tokens are spread
// evenly over the chunks; else a chunk is one token.
func tokensInWindow(r *result.Request, w metrics.Window) float64 {
	perChunk := 1.0
	known := len(r.TokensPerChunk) == len(r.TokenTimes)
	if !known && r.UsageReported && len(r.TokenTimes) > 0 && r.OutputTokens > len(r.TokenTimes) {
		perChunk = float64(r.OutputTokens) / float64(len(r.TokenTimes))
	}
	var n float64
	for i, t := range r.TokenTimes {
		if !w.Contains(t) {
			continue
		}
		if known {
			n += float64(r.TokensPerChunk[i])
		} else {
			n += perChunk
		}
	}
	return n
}

// promptTokens is the server's count when reported, else the target.
func promptTokens(r *result.Request) int {
	if r.UsageReported {
		return r.PromptTokens
	}
	return r.TargetPromptTokens
}
