package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// The client/bare ratios of issue 15 are about a P99 that one run on a
// shared machine moves by several times; -rounds repeats every
// measurement, the readers alternating, and this summary puts the rounds
// side by side: each reader's median over the rounds, their ratio, and
// the client's ratio to the bare reader of the same round.

// ratioTarget is issue 15's bound on the client's figures: at most this
// many times the bare reader's in the same run.
const ratioTarget = 1.25

// figure is one number taken from a measurement.
type figure[T any] struct {
	name string
	get  func(T) float64
}

var steadyFigures = []figure[workerResult]{
	{"receive lag p50 ms", func(x workerResult) float64 { return x.Lag.Median }},
	{"receive lag p99 ms", func(x workerResult) float64 { return x.Lag.P99 }},
	{"burst lag p99 ms", func(x workerResult) float64 { return x.BurstLag.P99 }},
	{"headers p99 ms", func(x workerResult) float64 { return x.HeadersLag.P99 }},
	{"CPU µs/chunk", func(x workerResult) float64 { return x.CPUPerChunkUs }},
}

var burstFigures = []figure[burstResult]{
	{"TTFC error p50 ms", func(x burstResult) float64 { return x.TTFCError.Median }},
	{"TTFC error p99 ms", func(x burstResult) float64 { return x.TTFCError.P99 }},
	{"CPU µs/request", func(x burstResult) float64 { return x.CPUPerRequestUs }},
}

// roundSummary is one figure of one scenario over the rounds.
type roundSummary struct {
	bare, client float64   // medians over the rounds
	ratios       []float64 // client / bare, per round that has both
}

// within counts the rounds whose ratio is at most ratioTarget.
func (s roundSummary) within() int {
	n := 0
	for _, r := range s.ratios {
		if r <= ratioTarget {
			n++
		}
	}
	return n
}

// summarizeRounds pairs the readers' values by round (a round missing
// either reader, or with a bare value of 0, gives no ratio) and takes
// each reader's median over all its rounds.
func summarizeRounds(bare, client map[int]float64) roundSummary {
	var s roundSummary
	for _, round := range slices.Sorted(maps.Keys(client)) {
		if b, ok := bare[round]; ok && b > 0 {
			s.ratios = append(s.ratios, client[round]/b)
		}
	}
	s.bare, s.client = median(slices.Collect(maps.Values(bare))), median(slices.Collect(maps.Values(client)))
	return s
}

// printRounds writes the summary of -rounds for the steady scenarios and
// the bursts.
func printRounds(w io.Writer, rows []row, bursts []burstRow) {
	var steady []measured[workerResult]
	var burst []measured[burstResult]
	rounds := 0
	for _, r := range rows {
		rounds = max(rounds, r.Round)
		if r.Err == "" {
			steady = append(steady, measured[workerResult]{r.Scenario.String(), r.Reader, r.Round, r.Worker})
		}
	}
	for _, r := range bursts {
		rounds = max(rounds, r.Round)
		if r.Err == "" {
			burst = append(burst, measured[burstResult]{fmt.Sprintf("burst %d", r.Streams), r.Reader, r.Round, r.Worker})
		}
	}
	fmt.Fprintf(w, "\nover %d rounds (readers alternating): each reader's median, the ratio of the medians, and the client's ratio to the bare reader of each round; target ≤ %.2f×\n", rounds, ratioTarget)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tfigure\tbare\tclient\t× bare\tper round\twithin\t")
	printFigures(tw, steady, steadyFigures)
	printFigures(tw, burst, burstFigures)
	_ = tw.Flush()
}

// measured is one reader's measurement of one scenario in one round.
type measured[T any] struct {
	scenario string // as printed: "1000x50", "burst 500"
	reader   string
	round    int
	x        T
}

// printFigures writes a line per scenario (in the order first measured)
// and figure: the readers' values paired by round.
func printFigures[T any](tw io.Writer, runs []measured[T], figures []figure[T]) {
	var scenarios []string
	for _, m := range runs {
		if !slices.Contains(scenarios, m.scenario) {
			scenarios = append(scenarios, m.scenario)
		}
	}
	for _, sc := range scenarios {
		for _, f := range figures {
			by := map[string]map[int]float64{"bare": {}, "client": {}}
			for _, m := range runs {
				if m.scenario == sc && by[m.reader] != nil {
					by[m.reader][m.round] = f.get(m.x)
				}
			}
			printRoundLine(tw, sc, f.name, summarizeRounds(by["bare"], by["client"]))
		}
	}
}

func printRoundLine(tw io.Writer, what, name string, s roundSummary) {
	ratio := "–"
	if s.bare > 0 && len(s.ratios) > 0 {
		ratio = fmt.Sprintf("%.2f", s.client/s.bare)
	}
	per := make([]string, len(s.ratios))
	for i, r := range s.ratios {
		per[i] = fmt.Sprintf("%.2f", r)
	}
	fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.3f\t%s\t%s\t%d/%d\t\n", what, name, s.bare, s.client, ratio, strings.Join(per, " "), s.within(), len(s.ratios))
}

// median is the middle value (the mean of the two middle ones for an
// even count); 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Sorted(slices.Values(v))
	m := len(v) / 2
	if len(v)%2 == 1 {
		return v[m]
	}
	return (v[m-1] + v[m]) / 2
}
