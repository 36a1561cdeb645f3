package client

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/openai/openai-go/v3"
)

// openAIBody is the body openai-go's client sent before this package
// built its own (params, then option.WithJSONSet("stream", true) and, with
// NonStandard, "stream_options.continuous_usage_stats"), built with
// openai-go's param types: the API's vocabulary, held here as the
// reference for the field names and values.
func openAIBody(t testing.TB, ep Endpoint, nonStandard bool, model, prompt string, maxTokens int) []byte {
	t.Helper()
	usage := openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	extra := map[string]any{"stream": true}
	if nonStandard {
		usage.SetExtraFields(map[string]any{"continuous_usage_stats": true})
		extra["ignore_eos"] = true
		if maxTokens > 0 {
			extra["min_tokens"] = maxTokens
		}
	}
	var p any
	if ep == Completions {
		cp := openai.CompletionNewParams{
			Model:         openai.CompletionNewParamsModel(model),
			Prompt:        openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)},
			StreamOptions: usage,
		}
		if maxTokens > 0 {
			cp.MaxTokens = openai.Int(int64(maxTokens))
		}
		cp.SetExtraFields(extra)
		p = cp
	} else {
		cp := openai.ChatCompletionNewParams{
			Model:         model,
			Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
			StreamOptions: usage,
		}
		if maxTokens > 0 {
			cp.MaxTokens = openai.Int(int64(maxTokens))
		}
		cp.SetExtraFields(extra)
		p = cp
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBodyMatchesOpenAIParams checks that Prepare sends the same JSON
// (keys and values, not key order) as openai-go's params did, on both
// endpoints, with and without the non-standard fields and max_tokens,
// and for prompts that need escaping.
func TestBodyMatchesOpenAIParams(t *testing.T) {
	t.Parallel()
	prompts := []string{"one two three four", "quote \" backslash \\ tab \t newline \n <html> & \u2028 é 😀", ""}
	for _, ep := range []Endpoint{Chat, Completions} {
		for _, ns := range []bool{false, true} {
			for _, maxTokens := range []int{0, 1, 4096} {
				for _, p := range prompts {
					c, err := New(Config{BaseURL: "http://127.0.0.1:1/v1", Model: "org/model-8B", Endpoint: ep, NonStandard: ns})
					if err != nil {
						t.Fatal(err)
					}
					call, err := c.Prepare(Call{Seq: 3, Prompt: p, MaxTokens: maxTokens})
					if err != nil {
						t.Fatal(err)
					}
					var got, want map[string]any
					if err := json.Unmarshal(call.Body, &got); err != nil {
						t.Fatalf("body %s: %v", call.Body, err)
					}
					ref := openAIBody(t, ep, ns, "org/model-8B", p, maxTokens)
					if err := json.Unmarshal(ref, &want); err != nil {
						t.Fatalf("openai-go body %s: %v", ref, err)
					}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("%s, non-standard %v, max_tokens %d, prompt %q: body (-openai-go +ours):\n%s", ep, ns, maxTokens, p, diff)
					}
				}
			}
		}
	}
}

// TestPrepareKeepsBody checks that a body already prepared is kept, and
// that Prepare fills nothing else.
func TestPrepareKeepsBody(t *testing.T) {
	t.Parallel()
	c, err := New(Config{BaseURL: "http://127.0.0.1:1/v1", Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	in := Call{Seq: 1, Prompt: "p", MaxTokens: 2, Body: []byte(`{"x":1}`)}
	out, err := c.Prepare(in)
	if err != nil || !bytes.Equal(out.Body, in.Body) {
		t.Errorf("Prepare(prepared) = %s, %v; want the body kept", out.Body, err)
	}
	out, err = c.Prepare(Call{Seq: 1, Prompt: "p", MaxTokens: 2})
	if err != nil || out.Seq != 1 || out.Prompt != "p" || out.MaxTokens != 2 || !strings.Contains(string(out.Body), `"max_tokens":2`) {
		t.Errorf("Prepare = %+v, %v", out, err)
	}
}

// BenchmarkPrepare measures the CPU cost of serializing one request body
// with a 16 KB prompt (about 4,000 tokens): this package's encoder, and
// openai-go's param types for comparison.
// Run with: go test -run '^$' -bench Prepare -cpu 1 ./pkg/client
func BenchmarkPrepare(b *testing.B) {
	prompt := strings.Repeat("hello world tok ", 1024)
	c, err := New(Config{BaseURL: "http://127.0.0.1:1/v1", Model: "m", NonStandard: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("client", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Prepare(Call{Prompt: prompt, MaxTokens: 128}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("openai-go", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			openAIBody(b, Chat, true, "m", prompt, 128)
		}
	})
}
