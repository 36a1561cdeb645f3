package simengine

import (
	"net/http"
	"testing"
)

// discardWriter is an http.ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Flush()                      {}

func newTestEventWriter() *eventWriter {
	s := &Server{opts: Options{SentTimestamps: true}, created: 1, modelJSON: []byte(`"m"`)}
	w := &discardWriter{h: http.Header{}}
	return &eventWriter{
		s: s, w: w, rc: http.NewResponseController(w),
		c:   completion{chat: true, cont: true, prompt: 100},
		id:  "chatcmpl-sim-1",
		buf: make([]byte, 0, 512),
	}
}

// TestContentEventAllocs checks that sending a content event, with
// continuous usage and a send stamp, allocates nothing: ten thousand streams
// must not load the garbage collector per token. (AllocsPerRun refuses to
// run in a parallel test.)
func TestContentEventAllocs(t *testing.T) {
	st := newTestEventWriter()
	if err := st.content(1, ""); err != nil { // the first event carries the role
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(200, func() {
		if err := st.content(2, ""); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("content event: %v allocations, want 0", allocs)
	}
}

func BenchmarkContentEvent(b *testing.B) {
	st := newTestEventWriter()
	b.ReportAllocs()
	for b.Loop() {
		if err := st.content(1, ""); err != nil {
			b.Fatal(err)
		}
	}
}
