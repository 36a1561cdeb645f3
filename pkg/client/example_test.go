package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/veeksha-go/veeksha/pkg/client"
)

func ExampleClient_Stream() {
	// A stand-in server that streams two chunks, usage and [DONE].
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, `data: {"choices":[{"delta":{"content":"Hello"}}]}`+"\n\n"+
			`data: {"choices":[{"delta":{"content":" world"},"finish_reason":"length"}]}`+"\n\n"+
			`data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":2}}`+"\n\n"+
			"data: [DONE]\n\n")
	}))
	defer srv.Close()

	c, err := client.New(client.Config{BaseURL: srv.URL + "/v1", Model: "m", RequestTimeout: 10 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	began := time.Now() // the run's start: every time in the record is an offset from it
	r := c.Stream(context.Background(), began, client.Call{Seq: 0, Prompt: "Say hello", MaxTokens: 2})
	ttfc, _ := r.TTFC()
	fmt.Println("ok:", r.OK(), "chunks:", len(r.TokenTimes), "output tokens:", r.OutputTokens,
		"prompt tokens:", r.PromptTokens, "finish:", r.FinishReason, "ttfc > 0:", ttfc > 0)
	// Output: ok: true chunks: 2 output tokens: 2 prompt tokens: 12 finish: length ttfc > 0: true
}

func ExampleClient_ResolveModel() {
	// A stand-in server that lists one model and has no chat endpoint.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/models" {
			_, _ = io.WriteString(w, `{"object":"list","data":[{"id":"tiny","object":"model"}]}`)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()

	// One Client for the whole setup: built before the model is known.
	c, err := client.New(client.Config{BaseURL: srv.URL + "/v1", RequestTimeout: 10 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	model, err := c.ResolveModel(context.Background(), "") // the server's first model
	if err != nil {
		fmt.Println(err)
		return
	}
	c = c.WithModel(model)

	err = c.Preflight(context.Background())
	var se *client.SetupError
	if errors.As(err, &se) {
		fmt.Println("model:", model, "setup:", se.Kind, se.Status)
	}
	// Output: model: tiny setup: no_endpoint 404
}
