// Command shardgen writes synthetic shard runs of one stress plan, laid
// out as real shard runs are (stress_results.json, and per level
// level.json and requests.jsonl), for timing --merge on large record
// sets without a server. Every record is a successful request whose
// tokens arrive on a fixed schedule; nothing in them is measured.
//
//	go run ./tools/shardgen -shards 4 -records 1000000 -out /tmp/shards
//	veeksha.microbench.stress --merge /tmp/shards/shard-* --output-dir /tmp/merged
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/veeksha-go/veeksha/pkg/bench/stress"
	"github.com/veeksha-go/veeksha/pkg/report"
	"github.com/veeksha-go/veeksha/pkg/result"
)

func main() {
	shards := flag.Int("shards", 4, "number of shard runs")
	records := flag.Int("records", 1_000_000, "records in all, spread evenly over the shards")
	tokens := flag.Int("tokens", 32, "output tokens (content chunks) per record")
	clients := flag.Int("clients", 10_000, "the level, in clients")
	out := flag.String("out", "", "folder to write shard-0 ... shard-N-1 into (required)")
	flag.Parse()
	if *out == "" || *shards < 1 || *records < *shards || *tokens < 1 || *clients < 1 {
		fmt.Fprintln(os.Stderr, "shardgen: want -out, -shards >= 1, -records >= -shards, -tokens >= 1, -clients >= 1")
		os.Exit(2)
	}
	for i := range *shards {
		if err := writeShard(filepath.Join(*out, fmt.Sprint("shard-", i)), i, *shards, *records / *shards, *tokens, *clients); err != nil {
			fmt.Fprintln(os.Stderr, "shardgen:", err)
			os.Exit(1)
		}
	}
}

// writeShard writes shard i of n: one level of clients, n records.
func writeShard(dir string, i, n, records, tokens, clients int) error {
	start := time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
	cfg := stress.Config{InputLength: 128, OutputLength: tokens, TrafficMode: stress.FixedClients, Mode: stress.Manual,
		Levels: []float64{float64(clients)}, PointDuration: result.Seconds(120 * time.Second), WarmupDuration: result.Seconds(10 * time.Second),
		GracePeriod: result.Seconds(30 * time.Second), Seed: 42, Shard: &stress.Shard{Index: i, Count: n, StartAt: start, Gap: result.Seconds(stress.DefaultShardGap)}}
	level := float64(clients)
	late := time.Duration(i) * time.Millisecond // each shard a little later than the last
	lr := stress.LevelRun{Level: level, EndReason: result.EndCompleted, Began: start.Add(late), PlannedStart: start, LateS: late.Seconds(),
		Share: cfg.Share(level), Config: stress.LevelRunConditions{InputLength: 128, OutputLength: tokens, TrafficMode: cfg.TrafficMode,
			PointDuration: cfg.PointDuration, WarmupDuration: cfg.WarmupDuration, GracePeriod: cfg.GracePeriod}}
	reqs := make([]result.Request, records)
	span := cfg.PointDuration.D() - 10*time.Second
	for s := range reqs {
		sent := time.Duration(int64(span) * int64(s) / int64(records))
		r := result.Request{Seq: s, Shard: i, Shards: n, TargetPromptTokens: 128, PromptTokens: 128, UsageReported: true,
			TargetOutputTokens: tokens, OutputTokens: tokens, Intended: sent, Sent: sent + 50*time.Microsecond,
			Headers: sent + time.Millisecond, FirstByte: sent + time.Millisecond, FinishReason: "length", HTTPStatus: 200,
			TokenTimes: make([]time.Duration, tokens)}
		for k := range r.TokenTimes {
			r.TokenTimes[k] = sent + 20*time.Millisecond + time.Duration(k)*200*time.Millisecond
		}
		r.End = r.TokenTimes[tokens-1]
		reqs[s] = r
	}
	name := cfg.LevelName(level)
	if err := report.WriteFileAtomic(filepath.Join(dir, name, stress.RecordsFile), func(w io.Writer) error { return result.WriteJSONL(w, reqs) }); err != nil {
		return err
	}
	lr.Requests = reqs
	p := stress.Analyze(lr)
	if err := report.WriteFileAtomic(filepath.Join(dir, name, stress.LevelFile), func(w io.Writer) error {
		return report.WriteJSON(w, struct {
			stress.LevelRun
			Point stress.Point `json:"point"`
		}{lr, p})
	}); err != nil {
		return err
	}
	res := stress.Results{Meta: result.Meta{StartedAt: start}.For("stress", "throughput_latency"), Config: cfg, TrafficMode: cfg.TrafficMode,
		InputLength: 128, OutputLength: tokens, Levels: []stress.LevelRun{lr}, Results: []stress.Point{p}}
	res.EndReason = result.EndCompleted
	res.Settings = result.Settings{APIBase: "http://synthetic/v1", Server: "synthetic (tools/shardgen)", Model: "synthetic", Endpoint: "chat", Seed: 42, PromptSalt: true}
	return report.WriteFileAtomic(filepath.Join(dir, stress.ResultsFile), func(w io.Writer) error { return report.WriteJSON(w, res) })
}
