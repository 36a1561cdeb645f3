package result

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// SchemaVersion is the version of the results JSON layout. It changes
// when a key is renamed or removed; adding keys keeps it.
const SchemaVersion = 1

// Tool is the name written into every results file.
const Tool = "veeksha-go"

// End reasons of a run.
const (
	EndCompleted   = "completed"
	EndInterrupted = "interrupted"
	EndTimeout     = "benchmark_timeout"
	// EndServerFailing: the point (or run) ended early because the server
	// kept failing (connection failures in a row, a sustained error rate).
	EndServerFailing = "server_failing"
)

// Settings are the run-wide settings every benchmark shares, echoed into its
// results so a reader knows how the numbers were measured.
type Settings struct {
	APIBase string `json:"api_base"`
	// Server says what answered: "sim:<profile>" for the built-in engine,
	// else "external".
	Server string `json:"server"`
	// ServerSoftware names the server when it says what it is
	// ("ollama 0.17.4", "vllm 0.11.0"); empty when unknown.
	ServerSoftware string `json:"server_software,omitempty"`
	// Predicted says that the server was the simulated engine on a
	// profile fitted to a server's own runs (sim:<runs>): the results
	// are a prediction of that server, and a comparison with a measured
	// run is labelled as prediction error.
	Predicted   bool   `json:"predicted,omitempty"`
	Model       string `json:"model"`
	Endpoint    string `json:"endpoint"`
	Seed        uint64 `json:"seed"`
	PromptNonce uint64 `json:"prompt_nonce"`
	PromptSalt  bool   `json:"prompt_salt"`
	NonStandard bool   `json:"non_standard_fields"`
	// RequestTimeoutS is the inactivity timeout of a request: it failed
	// (class timeout) when nothing arrived for this long.
	RequestTimeoutS float64 `json:"request_timeout_s"`
	// RequestDeadlineS is the total deadline of a request from its send
	// (class deadline); 0 for none.
	RequestDeadlineS float64 `json:"request_deadline_s"`
	// BenchmarkTimeoutS bounds each prefill run and each decode (batch,
	// length) run.
	BenchmarkTimeoutS float64 `json:"benchmark_timeout_s"`
	// PromptOverheadTokens is what the server adds to a prompt's words
	// (chat template, BOS), as measured during calibration.
	PromptOverheadTokens int `json:"prompt_overhead_tokens"`
	// LengthSource says how prompt lengths were measured: "tokenize"
	// (the server's /tokenize endpoint) or "usage_probe".
	LengthSource string `json:"length_source"`
	// ContextLength is the model's context length in tokens as the
	// server listed it (max_model_len in /v1/models); absent when it did
	// not say. Plans that do not fit it are refused before the run.
	ContextLength int `json:"context_length,omitempty"`
}

// Meta is the header of every results JSON file.
type Meta struct {
	SchemaVersion int               `json:"schema_version"`
	Tool          string            `json:"tool"`
	ToolVersion   string            `json:"tool_version"`
	Type          string            `json:"type"`
	Metric        string            `json:"metric"`
	StartedAt     time.Time         `json:"started_at"`
	DurationS     float64           `json:"duration_s"`
	EndReason     string            `json:"end_reason"`
	Settings      Settings          `json:"settings"`
	Definitions   map[string]string `json:"definitions"`
	// PlotRenderer names what drew the PNG charts: "chromium", or "builtin"
	// (the pure-Go fallback; runs written before it replaced gonum/plot say
	// "gonum"), with the reason when the fallback was used.
	PlotRenderer       string `json:"plot_renderer,omitempty"`
	PlotFallbackReason string `json:"plot_fallback_reason,omitempty"`
}

// ErrorCounts tallies failed requests by error class.
type ErrorCounts struct {
	Total   int            `json:"total"`
	ByClass map[string]int `json:"by_class"`
	// ByStatus counts HTTP status codes of http_status failures.
	ByStatus map[int]int `json:"by_status,omitempty"`
}

// CountErrors tallies the failed, non-warmup requests of reqs.
func CountErrors(reqs []Request) ErrorCounts { return countErrors(reqs, false) }

// CountAllErrors tallies every failed request of reqs, warm-ups included.
func CountAllErrors(reqs []Request) ErrorCounts { return countErrors(reqs, true) }

func countErrors(reqs []Request, warmups bool) ErrorCounts {
	c := ErrorCounts{ByClass: map[string]int{}}
	for i := range reqs {
		r := &reqs[i]
		if (r.Warmup && !warmups) || r.OK() {
			continue
		}
		c.Total++
		c.ByClass[r.ErrClass]++
		if r.ErrClass == ErrHTTPStatus {
			if c.ByStatus == nil {
				c.ByStatus = map[int]int{}
			}
			c.ByStatus[r.HTTPStatus]++
		}
	}
	return c
}

// String describes the counts in one line: "3 failed: 2 http_status (500: 2), 1 timeout".
func (c ErrorCounts) String() string {
	if c.Total == 0 {
		return "no failed requests"
	}
	return fmt.Sprintf("%d failed: %s", c.Total, c.Classes())
}

// Classes lists the counts by class, without the total, for a message
// that gives the total itself: "2 http_status (500: 2), 1 timeout".
func (c ErrorCounts) Classes() string {
	classes := make([]string, 0, len(c.ByClass))
	for k := range c.ByClass {
		classes = append(classes, k)
	}
	slices.Sort(classes)
	parts := make([]string, 0, len(classes))
	for _, k := range classes {
		part := fmt.Sprintf("%d %s", c.ByClass[k], k)
		if k == ErrHTTPStatus && len(c.ByStatus) > 0 {
			codes := slices.Sorted(maps.Keys(c.ByStatus))
			var st []string
			for _, code := range codes {
				st = append(st, fmt.Sprintf("%d: %d", code, c.ByStatus[code]))
			}
			part += " (" + strings.Join(st, ", ") + ")"
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, ", ")
}

// For completes the header m for a benchmark's results file: the schema,
// the tool, the benchmark's type and headline metric, the metric
// definitions, and the start time when the caller left it unset.
func (m Meta) For(typ, metric string) Meta {
	m.SchemaVersion, m.Tool, m.Type, m.Metric = SchemaVersion, Tool, typ, metric
	m.Definitions = Definitions()
	if m.StartedAt.IsZero() {
		m.StartedAt = time.Now()
	}
	m.StartedAt = m.StartedAt.UTC()
	return m
}
