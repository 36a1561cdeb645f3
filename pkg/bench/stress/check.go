package stress

import (
	"fmt"
	"math"
	"time"

	"github.com/veeksha-go/veeksha/pkg/fidelity"
	"github.com/veeksha-go/veeksha/pkg/metrics"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/result"
	"github.com/veeksha-go/veeksha/pkg/validate"
)

// monotonicDrop is the throughput ratio below which a higher level's
// output throughput counts as a drop.
const monotonicDrop = 0.9

// Check validates every level and the sweep as a whole.
func Check(cfg Config, runs []LevelRun, points []Point, bounds fidelity.Bounds) validate.Report {
	var rep validate.Report
	if len(points) == 0 {
		rep.Add("levels_measured", "", validate.Fail, "no level was measured")
		return rep
	}
	for i, p := range points {
		label := cfg.LevelName(p.Level)
		switch {
		case runs[i].EndReason == result.EndServerFailing:
			rep.Add("server_healthy", label, validate.Fail, "the level was ended early because the server kept failing: %s", runs[i].StopReason)
		case runs[i].EndReason == EndMissedStart && !runs[i].PlannedStart.IsZero():
			// A shard's own run; a merged run says it in its shards check.
			rep.Add("level_start", label, validate.Fail, "this shard reached the level %.2f s after its planned start, too late to measure anything: it sent nothing, so a merge lacks its share of the load", runs[i].LateS)
		case !p.Complete:
			rep.Add("level_complete", label, validate.Warn, "the level was interrupted: its numbers cover only part of the point duration")
		}
		if lr := runs[i]; !lr.PlannedStart.IsZero() && lr.EndReason != EndMissedStart {
			if late := lr.LateS; late > LateWarning.Seconds() {
				end := ""
				if lr.Window != nil {
					end = " and stopped sending at the planned end"
				}
				rep.Add("level_start", label, validate.Warn, "this shard started the level %.3f s after its planned start %s%s", late, lr.PlannedStart.Format(time.RFC3339Nano), end)
			} else {
				rep.Add("level_start", label, validate.Pass, "started %.1f ms after its planned start %s", 1000*late, lr.PlannedStart.Format(time.RFC3339Nano))
			}
		}
		// Every request the level sent counts, warm-up included: a server
		// that fails while warming up is not healthy.
		// The count and its breakdown by class are one tally
		// (p.ErrorsBy.Total is p.Failed(), see Analyze), stated once.
		if n := p.Failed(); n > 0 {
			rep.Add("no_errors", label, validate.Fail, "%d of %d requests the level sent failed (%d in the window, %d in warm-up or after it): %s",
				n, p.SentTotal, p.Errors, p.ErrorsOutside, p.ErrorsBy.Classes())
		} else {
			rep.Add("no_errors", label, validate.Pass, "none of the %d requests the level sent failed", p.SentTotal)
		}
		if p.Cut > 0 {
			rep.Add("no_cut_requests", label, validate.Warn, "%d requests were still receiving tokens at the end of the %s grace period and were cut: the latencies exclude them", p.Cut, runs[i].Config.GracePeriod)
		}
		if p.Fidelity.WallS > 0 {
			p.Fidelity.Check(&rep, label, bounds)
		}
		measured := validate.Measured(runs[i].Requests)
		rep.PromptTokensExact(label, measured)
		rep.OutputTokens(label, measured, cfg.OutputLength)
		if p.NumRequests >= MinSamples {
			detail := fmt.Sprintf("%d requests after warm-up", p.NumRequests)
			if !p.E2E.CI95.P99.Supported {
				detail += fmt.Sprintf("; P99s need >= %d for a 95%% interval short of the maximum", metrics.SamplesFor(99, report.P99SearchLimit))
			}
			rep.Add("sample_count", label, validate.Pass, "%s", detail)
		} else {
			rep.Add("sample_count", label, validate.Warn, "only %d requests after warm-up (need >= %d): lengthen --point-duration", p.NumRequests, MinSamples)
		}
		if runs[i].Config.TrafficMode == FixedRate && p.ScheduledRate > 0 {
			gap := math.Abs(p.AchievedRate-p.ScheduledRate) / p.ScheduledRate
			if gap <= RateTolerance {
				rep.Add("arrival_rate", label, validate.Pass, "sent %.2f req/s of the %.2f scheduled (nominal %.2f), send lag P99 %.1f ms", p.AchievedRate, p.ScheduledRate, p.OfferedRate, 1000*p.SendLag.P99)
			} else {
				rep.Add("arrival_rate", label, validate.Fail, "sent %.2f req/s but the schedule asked for %.2f (%.0f%% off): the client could not keep up", p.AchievedRate, p.ScheduledRate, 100*gap)
			}
		}
	}
	drops, prev := 0, -1.0
	for _, p := range points {
		if !p.Complete || p.NumRequests < MinSamples {
			continue
		}
		if prev > 0 && p.OutputThroughput < monotonicDrop*prev {
			drops++
		}
		prev = p.OutputThroughput
	}
	if drops == 0 {
		rep.Add("throughput_monotonicity", "", validate.Pass, "output throughput does not drop as load rises")
	} else {
		rep.Add("throughput_monotonicity", "", validate.Warn, "output throughput dropped by more than 10%% at %d level(s): saturation or instability", drops)
	}
	return rep
}
