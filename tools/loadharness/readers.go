package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"time"

	"github.com/veeksha-go/veeksha/pkg/client"
)

// reader runs one stream from request to end and fills rec.
type reader interface {
	stream(ctx context.Context, seq int, rec *streamRecord)
}

// prompt is the user message of every request; the zero-cost engine does
// not charge for it.
const prompt = "load harness"

// withConnTrace adds httptrace hooks recording when the request asked the
// transport for a connection and when it got one: for a new connection
// that spans the TCP connect (and the wait for the dial), for an idle one it
// is ~0. It composes with any trace already in ctx (pkg/client adds its
// own).
func withConnTrace(ctx context.Context, began time.Time, rec *streamRecord) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GetConn: func(string) { rec.getConn = time.Since(began) },
		GotConn: func(info httptrace.GotConnInfo) {
			rec.gotConn = time.Since(began)
			rec.reused = info.Reused
		},
	})
}

// clientReader reads streams through pkg/client, the project's client,
// taking the engine's stamp from Call.OnEvent.
type clientReader struct {
	c       *client.Client
	began   time.Time
	beganNs int64 // began as wall-clock Unix ns
	tokens  int
}

func newClientReader(cfg workerConfig, began time.Time) (*clientReader, error) {
	c, err := client.New(client.Config{
		BaseURL:         cfg.URL,
		Model:           cfg.Model,
		RequestTimeout:  cfg.deadline(),
		RequestDeadline: cfg.deadline(), // a bound on the whole stream, as before the timeout became an inactivity one
		MaxConcurrency:  cfg.Streams,
		NonStandard:     true, // ignore_eos: the engine would stop early without it
		RunID:           "loadharness",
	})
	if err != nil {
		return nil, err
	}
	return &clientReader{c: c, began: began, beganNs: began.UnixNano(), tokens: cfg.Tokens}, nil
}

func (r *clientReader) stream(ctx context.Context, seq int, rec *streamRecord) {
	res := r.c.Stream(withConnTrace(ctx, r.began, rec), r.began, client.Call{
		Seq:       seq,
		Prompt:    prompt,
		MaxTokens: r.tokens,
		OnEvent: func(arrival time.Duration, data []byte) {
			// arrival is the client's own stamp (began + monotonic
			// offset), the one it records as the token time.
			rec.add(r.beganNs+int64(arrival), data)
		},
	})
	rec.sent = res.Sent
	rec.headers = res.Headers
	rec.errClass, rec.err = res.ErrClass, res.Err
	if rec.errClass == "" && len(res.TokenTimes) != rec.chunks {
		rec.errClass = "harness"
		rec.err = fmt.Sprintf("client recorded %d token times, OnEvent saw %d content chunks", len(res.TokenTimes), rec.chunks)
	}
}

// bareReader is the baseline: net/http with the same transport settings as
// pkg/client and a bufio line reader that stamps each "data:" line as soon
// as it is read. It does not decode JSON; it only finds the engine's stamp.
// What pkg/client costs beyond it is the cost of the client library.
type bareReader struct {
	hc      *http.Client
	url     string
	body    []byte
	began   time.Time
	beganNs int64
}

func newBareReader(cfg workerConfig, began time.Time) (*bareReader, error) {
	// The same request body pkg/client sends with NonStandard set.
	body, err := json.Marshal(map[string]any{
		"model":          cfg.Model,
		"messages":       []map[string]string{{"role": "user", "content": prompt}},
		"max_tokens":     cfg.Tokens,
		"min_tokens":     cfg.Tokens,
		"ignore_eos":     true,
		"stream":         true,
		"stream_options": map[string]bool{"include_usage": true, "continuous_usage_stats": true},
	})
	if err != nil {
		return nil, fmt.Errorf("request body: %w", err)
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: cfg.Streams,
		DisableCompression:  true,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 only
	}
	return &bareReader{
		hc:      &http.Client{Transport: tr},
		url:     cfg.URL + "/chat/completions",
		body:    body,
		began:   began,
		beganNs: began.UnixNano(),
	}, nil
}

var (
	dataPrefix = []byte("data:")
	doneData   = []byte("[DONE]")
)

func (r *bareReader) stream(ctx context.Context, seq int, rec *streamRecord) {
	req, err := http.NewRequestWithContext(withConnTrace(ctx, r.began, rec), http.MethodPost, r.url, bytes.NewReader(r.body))
	if err != nil {
		rec.errClass, rec.err = "harness", err.Error()
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	rec.sent = time.Since(r.began)
	res, err := r.hc.Do(req)
	if err != nil {
		rec.errClass, rec.err = "connect", err.Error()
		return
	}
	defer res.Body.Close()
	rec.headers = time.Since(r.began)
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		rec.errClass, rec.err = "http_status", fmt.Sprintf("HTTP %d: %s", res.StatusCode, bytes.TrimSpace(b))
		return
	}
	br := bufio.NewReaderSize(res.Body, 4096)
	for {
		line, err := br.ReadSlice('\n')
		if bytes.HasPrefix(line, dataPrefix) {
			at := time.Since(r.began)
			data := bytes.TrimSpace(line[len(dataPrefix):])
			if bytes.Equal(data, doneData) {
				_, _ = io.Copy(io.Discard, br) // read to the end so the connection closes cleanly
				return
			}
			rec.add(r.beganNs+int64(at), data)
		}
		if err != nil {
			rec.errClass, rec.err = "stream", fmt.Sprintf("body ended before [DONE] after %d chunks: %v", rec.chunks, err)
			return
		}
	}
}
