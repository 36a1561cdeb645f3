package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/veeksha-go/veeksha/pkg/result"
)

// readAll reads every event of r and the error that ended it.
func readAll(r *sseReader) ([]string, error) {
	var events []string
	for {
		data, err := r.next()
		if err != nil {
			return events, err
		}
		events = append(events, string(data))
	}
}

func TestSSEReader(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 3*sseBufSize+17)
	broken := errors.New("connection reset")
	tests := []struct {
		name    string
		body    io.Reader
		want    []string
		wantErr error
	}{
		{"LF", strings.NewReader("data: a\n\ndata: b\n\n"), []string{"a\n", "b\n"}, io.EOF},
		{"CRLF", strings.NewReader("data: a\r\n\r\ndata: b\r\n\r\n"), []string{"a\n", "b\n"}, io.EOF},
		{"no space after the colon, only the first space dropped", strings.NewReader("data:a\n\ndata:  b\n\n"), []string{"a\n", " b\n"}, io.EOF},
		{"multi-line data", strings.NewReader("data: {\"a\":\ndata: 1}\n\n"), []string{"{\"a\":\n1}\n"}, io.EOF},
		{"comments and other fields skipped", strings.NewReader(": keep-alive\n\nevent: message\nid: 7\nretry: 10\ndata: a\nfoo\n\n"), []string{"a\n"}, io.EOF},
		{"events without data are not returned", strings.NewReader("\n\n: ping\n\nevent: x\n\ndata: a\n\n"), []string{"a\n"}, io.EOF},
		{"a bare data line is an empty data line", strings.NewReader("data\n\ndata:\n\n"), []string{"\n", "\n"}, io.EOF},
		{"last event without a blank line", strings.NewReader("data: a\n\ndata: [DONE]\n"), []string{"a\n", "[DONE]\n"}, io.EOF},
		{"last event without a line end", strings.NewReader("data: a\n\ndata: b"), []string{"a\n", "b\n"}, io.EOF},
		{"last event followed by a comment", strings.NewReader("data: a\n: bye"), []string{"a\n"}, io.EOF},
		{"a lone CR is not a line end", strings.NewReader("data: a\rdata: b\n\n"), []string{"a\rdata: b\n"}, io.EOF},
		{"line longer than the buffer", strings.NewReader("data: " + long + "\r\n\r\ndata: b\n\n"), []string{long + "\n", "b\n"}, io.EOF},
		{"one byte at a time", iotest.OneByteReader(strings.NewReader("data: a\r\n\r\ndata: b\n\n")), []string{"a\n", "b\n"}, io.EOF},
		{"empty body", strings.NewReader(""), nil, io.EOF},
		{"an event cut by a read error is dropped", io.MultiReader(strings.NewReader("data: a\n\ndata: b\n"), iotest.ErrReader(broken)), []string{"a\n"}, broken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := readAll(newSSEReader(tt.body))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("final error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestSSEReaderAllocs checks that reading events allocates nothing once the
// reader's buffers have grown.
// (Not parallel: AllocsPerRun counts the whole program's allocations.)
func TestSSEReaderAllocs(t *testing.T) {
	const events = 200
	body := bytes.Repeat([]byte("data: {\"choices\":[{\"delta\":{\"content\":\" the\"}}]}\r\n: c\r\n\r\n"), events+2)
	r := newSSEReader(bytes.NewReader(body))
	if _, err := r.next(); err != nil { // grows the data buffer
		t.Fatal(err)
	}
	n := testing.AllocsPerRun(events, func() {
		if _, err := r.next(); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("next allocates %v times per event, want 0", n)
	}
}

// TestReadAllocs checks the whole read path of a 1,000-chunk stream: the
// allocations are per stream (reader, buffers, token-time slices), not per
// chunk.
// (Not parallel: AllocsPerRun counts the whole program's allocations.)
func TestReadAllocs(t *testing.T) {
	const chunks, maxAllocs = 1000, 30
	body := vllmBody(chunks)
	c, err := New(Config{BaseURL: "http://127.0.0.1:1/v1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	began := time.Now()
	n := testing.AllocsPerRun(5, func() {
		res := &http.Response{
			StatusCode: http.StatusOK,
			Header:     http.Header{"Content-Type": {"text/event-stream"}},
			Body:       io.NopCloser(bytes.NewReader(body)),
		}
		r := result.Request{TargetOutputTokens: chunks}
		c.read(ctx, ctx, cancel, res, arrivalClock{began: began}, nil, &r)
		if !r.OK() || len(r.TokenTimes) != chunks {
			t.Fatalf("read = %d chunks, class %q, err %q, want %d chunks and success", len(r.TokenTimes), r.ErrClass, r.Err, chunks)
		}
	})
	if n > maxAllocs {
		t.Errorf("reading %d chunks allocates %v times, want at most %d", chunks, n, maxAllocs)
	}
}
