package report

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/veeksha-go/veeksha/pkg/result"
)

// Records reach the file within the flush interval, before the point
// ends, and Close leaves them in send order.
func TestRecordFileStreams(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c=2", "requests.jsonl")
	rf, err := OpenRecords(path)
	if err != nil {
		t.Fatal(err)
	}
	rf.Record(result.Request{Seq: 1, Sent: time.Millisecond})
	rf.Record(result.Request{Seq: 0, Sent: 2 * time.Millisecond})
	lines := 0
	for deadline := time.Now().Add(RecordFlushInterval + 3*time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if lines = bytes.Count(b, []byte("\n")); lines == 2 {
			break
		}
	}
	if lines != 2 {
		t.Fatalf("%d records on disk before Close, want the 2 that ended", lines)
	}
	all := []result.Request{{Seq: 0, Sent: 2 * time.Millisecond}, {Seq: 1, Sent: time.Millisecond}, {Seq: 2, ErrClass: result.ErrCanceled}}
	if err := rf.Close(all); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRecords(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Seq != 0 || got[1].Seq != 1 || got[2].Seq != 2 {
		t.Errorf("after Close: %+v, want seq 0, 1, 2", got)
	}
	rf.Record(result.Request{Seq: 9}) // after Close: ignored, no panic
}

func TestRecordsRefusesOutsidePaths(t *testing.T) {
	t.Parallel()
	d, err := Create(t.TempDir(), "stress", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Records("../x.jsonl"); err == nil {
		t.Error("Records(../x.jsonl) = nil error, want a refusal")
	}
	rf, err := d.Records("c=1/requests.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if err := rf.Close(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d.Path(), "c=1", "requests.jsonl")); err != nil {
		t.Error(err)
	}
}
