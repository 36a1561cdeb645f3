package simengine

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// fastProfile keeps real-time tests short: 1 ms iterations.
func fastProfile() Profile {
	p := testProfile()
	p.Cost = CostModel{BaseMS: 1}
	p.MaxModelLen = 4096
	return p
}

func TestStreamShapes(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{Profile: fastProfile()})
	msgs := []map[string]string{{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there world"}}
	chatPrompt := ChatPromptTokens([]string{"be brief", "hello there world"}, true)
	tests := []struct {
		name       string
		path       string
		body       map[string]any
		object     string
		prompt     int
		usageLast  bool // a final usage chunk with empty choices
		usageEvery bool // continuous usage in every chunk
	}{
		{"chat", "/chat/completions", map[string]any{"messages": msgs}, "chat.completion.chunk", chatPrompt, false, false},
		{"chat with usage", "/chat/completions",
			map[string]any{"messages": msgs, "stream_options": map[string]any{"include_usage": true}},
			"chat.completion.chunk", chatPrompt, true, false},
		{"chat with continuous usage", "/chat/completions",
			map[string]any{"messages": msgs, "stream_options": map[string]any{"include_usage": true, "continuous_usage_stats": true}},
			"chat.completion.chunk", chatPrompt, true, true},
		{"completions text", "/completions",
			map[string]any{"prompt": "one two three four", "stream_options": map[string]any{"include_usage": true}},
			"text_completion", 4, true, false},
		{"completions ids", "/completions", map[string]any{"prompt": []int{5, 6, 7}}, "text_completion", 3, false, false},
		{"completions nested ids", "/completions", map[string]any{"prompt": [][]int{{5, 6, 7, 8}}}, "text_completion", 4, false, false},
		{"completions one-string batch", "/completions", map[string]any{"prompt": []string{"a b"}}, "text_completion", 2, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const out = 5
			body := map[string]any{"model": s.Model(), "stream": true, "max_tokens": out, "ignore_eos": true}
			for k, v := range tt.body {
				body[k] = v
			}
			res := post(t, s.BaseURL()+tt.path, body)
			if res.status != http.StatusOK || !res.done {
				t.Fatalf("status %d, done %v, body %q; want 200 and [DONE]", res.status, res.done, res.body)
			}
			var text strings.Builder
			contents := 0
			for i, e := range res.events {
				c := decodeChunk(t, e.data)
				if c.Object != tt.object || c.Model != s.Model() || !strings.HasPrefix(c.ID, "c") || c.Created == 0 {
					t.Errorf("event %d: id %q object %q model %q created %d; want object %q, model %q",
						i, c.ID, c.Object, c.Model, c.Created, tt.object, s.Model())
				}
				if len(c.Choices) == 0 {
					if !tt.usageLast || i != len(res.events)-1 {
						t.Errorf("event %d has no choices; only a final usage event may", i)
					}
					if c.Usage == nil || *c.Usage != newUsage(tt.prompt, out) {
						t.Errorf("final usage = %+v, want %+v", c.Usage, newUsage(tt.prompt, out))
					}
					continue
				}
				contents++
				text.WriteString(c.text())
				if tt.usageEvery && (c.Usage == nil || *c.Usage != newUsage(tt.prompt, contents)) {
					t.Errorf("event %d usage = %+v, want cumulative %+v", i, c.Usage, newUsage(tt.prompt, contents))
				}
				if !tt.usageEvery && c.Usage != nil {
					t.Errorf("event %d carries usage %+v without continuous_usage_stats", i, c.Usage)
				}
				fin := c.Choices[0].FinishReason
				if last := contents == out; (fin != nil) != last || (last && *fin != finishLength) {
					t.Errorf("event %d finish_reason = %v, want \"length\" on the last content event only", i, fin)
				}
				if c.SentNS != 0 {
					t.Errorf("event %d carries sim_sent_unix_ns without SentTimestamps", i)
				}
			}
			if contents != out || CountTokens(text.String()) != out {
				t.Errorf("%d content events, text %q of %d tokens; want %d of each", contents, text.String(), CountTokens(text.String()), out)
			}
		})
	}
}

func TestNonStream(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{Profile: fastProfile()})
	for _, tt := range []struct {
		path string
		body map[string]any
	}{
		{"/chat/completions", map[string]any{"messages": []map[string]string{{"role": "user", "content": "hi there"}}, "max_completion_tokens": 4}},
		{"/completions", map[string]any{"prompt": "hi there", "max_tokens": 4}},
	} {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			tt.body["ignore_eos"] = true
			res := post(t, s.BaseURL()+tt.path, tt.body)
			if res.status != http.StatusOK {
				t.Fatalf("status %d %s, want 200", res.status, res.body)
			}
			var got struct {
				Object  string `json:"object"`
				Choices []struct {
					Message *struct {
						Role, Content string
					} `json:"message"`
					Text         *string `json:"text"`
					FinishReason string  `json:"finish_reason"`
				} `json:"choices"`
				Usage usage `json:"usage"`
			}
			if err := json.Unmarshal([]byte(res.body), &got); err != nil {
				t.Fatalf("body %q: %v", res.body, err)
			}
			if len(got.Choices) != 1 || got.Choices[0].FinishReason != finishLength || got.Usage.CompletionTokens != 4 {
				t.Fatalf("body %s: want one choice, finish length, 4 completion tokens", res.body)
			}
			text := ""
			if ch := got.Choices[0]; ch.Message != nil {
				text = ch.Message.Content
				if got.Object != "chat.completion" || ch.Message.Role != "assistant" {
					t.Errorf("chat body %s: want object chat.completion and role assistant", res.body)
				}
			} else if ch.Text != nil {
				text = *ch.Text
				if got.Object != "text_completion" {
					t.Errorf("completions body %s: want object text_completion", res.body)
				}
			}
			if CountTokens(text) != 4 {
				t.Errorf("text %q has %d tokens, want 4", text, CountTokens(text))
			}
		})
	}
}

func TestEarlyStop(t *testing.T) {
	t.Parallel()
	const seed = 11
	s := startServer(t, Options{Profile: fastProfile(), Seed: seed})
	stops := 0
	for seq := range 6 {
		res := post(t, s.BaseURL()+"/completions", map[string]any{
			"prompt": "x", "max_tokens": 20, "min_tokens": 8, "stream": true,
			"stream_options": map[string]any{"include_usage": true},
		})
		cs, _ := contentEvents(res)
		want := stopLength(seed, seq, 8, 20)
		wantFinish := finishStop
		if want == 20 {
			wantFinish = finishLength
		} else {
			stops++
		}
		if len(cs) != want || *cs[len(cs)-1].Choices[0].FinishReason != wantFinish {
			t.Errorf("request %d: %d tokens, finish %q; want %d, %q", seq, len(cs), *cs[len(cs)-1].Choices[0].FinishReason, want, wantFinish)
		}
		if last := decodeChunk(t, res.events[len(res.events)-1].data); last.Usage == nil || last.Usage.CompletionTokens != want {
			t.Errorf("request %d: usage %+v, want %d completion tokens", seq, last.Usage, want)
		}
	}
	if stops == 0 {
		t.Error("no request stopped early; the seed should make some stop before max_tokens")
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{Profile: fastProfile(), KVCacheTokens: 3000})
	chat := func(extra map[string]any) map[string]any {
		b := map[string]any{"messages": []map[string]string{{"role": "user", "content": "hi"}}}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	tests := []struct {
		name   string
		path   string
		body   any
		status int
		part   string
	}{
		{"not json", "/chat/completions", "nope", 400, "not valid JSON"},
		{"no messages", "/chat/completions", map[string]any{"model": s.Model()}, 400, "messages is required"},
		{"no prompt", "/completions", map[string]any{"max_tokens": 3}, 400, "prompt is required"},
		{"bad prompt", "/completions", map[string]any{"prompt": map[string]int{"a": 1}}, 400, "prompt is neither"},
		{"two prompts", "/completions", map[string]any{"prompt": []string{"a", "b"}}, 400, "2 prompts"},
		{"unknown model", "/chat/completions", chat(map[string]any{"model": "gpt-9"}), 404, "does not exist"},
		{"zero max tokens", "/chat/completions", chat(map[string]any{"max_tokens": 0}), 400, "at least 1"},
		{"min above max", "/chat/completions", chat(map[string]any{"max_tokens": 3, "min_tokens": 4}), 400, "min_tokens"},
		{"n=2", "/chat/completions", chat(map[string]any{"n": 2}), 400, "one choice"},
		{"prompt too long", "/completions", map[string]any{"prompt": tokenIDs(5000)}, 400, "maximum context length is 4096 tokens"},
		{"prompt plus output too long", "/completions", map[string]any{"prompt": tokenIDs(100), "max_tokens": 4000}, 400, "you requested 4100 tokens"},
		{"larger than the KV cache", "/completions", map[string]any{"prompt": tokenIDs(2000), "max_tokens": 1001}, 400, "KV cache"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := post(t, s.BaseURL()+tt.path, tt.body)
			var e struct {
				Error struct {
					Message string `json:"message"`
					Type    string `json:"type"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(res.body), &e); err != nil {
				t.Fatalf("body %q is not JSON: %v", res.body, err)
			}
			if res.status != tt.status || !strings.Contains(e.Error.Message, tt.part) || e.Error.Type == "" {
				t.Errorf("status %d, error %+v; want %d with a message containing %q", res.status, e.Error, tt.status, tt.part)
			}
		})
	}
}

func TestModelsTokenizeHealthMetrics(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{Profile: fastProfile(), Model: "my-model"})
	root := "http://" + s.Addr()
	status, body := getText(t, s.BaseURL()+"/models")
	var models struct {
		Object string `json:"object"`
		Data   []struct {
			ID, Object string
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &models); err != nil || status != 200 || models.Object != "list" ||
		len(models.Data) != 1 || models.Data[0].ID != "my-model" || models.Data[0].Object != "model" {
		t.Errorf("GET /v1/models = %d %s, want a list holding model my-model", status, body)
	}
	if status, _ := getText(t, root+"/health"); status != 200 {
		t.Errorf("GET /health = %d, want 200", status)
	}

	msgs := []map[string]string{{"role": "user", "content": "count these five words"}}
	tok := func(body map[string]any) (count int, tokens int) {
		res := post(t, root+"/tokenize", body)
		var got struct {
			Count       int   `json:"count"`
			MaxModelLen int   `json:"max_model_len"`
			Tokens      []int `json:"tokens"`
		}
		if err := json.Unmarshal([]byte(res.body), &got); err != nil || res.status != 200 || got.MaxModelLen != 4096 {
			t.Fatalf("POST /tokenize %v = %d %s", body, res.status, res.body)
		}
		return got.Count, len(got.Tokens)
	}
	tests := []struct {
		name string
		body map[string]any
		want int
	}{
		{"prompt", map[string]any{"model": "my-model", "prompt": "count these five words please"}, 5},
		{"messages", map[string]any{"messages": msgs}, ChatPromptTokens([]string{"count these five words"}, true)},
		{"messages without generation prompt", map[string]any{"messages": msgs, "add_generation_prompt": false},
			ChatPromptTokens([]string{"count these five words"}, false)},
	}
	for _, tt := range tests {
		if count, n := tok(tt.body); count != tt.want || n != tt.want {
			t.Errorf("tokenize %s: count %d, %d tokens; want %d", tt.name, count, n, tt.want)
		}
	}
	// The chat endpoint's prompt_tokens agrees with /tokenize.
	res := post(t, s.BaseURL()+"/chat/completions", map[string]any{
		"messages": msgs, "max_tokens": 2, "ignore_eos": true, "stream": true, "stream_options": map[string]any{"include_usage": true},
	})
	last := decodeChunk(t, res.events[len(res.events)-1].data)
	if want := tests[1].want; last.Usage == nil || last.Usage.PromptTokens != want {
		t.Errorf("chat usage = %+v, want prompt_tokens %d as /tokenize says", last.Usage, want)
	}
	if res := post(t, root+"/tokenize", map[string]any{"model": "other", "prompt": "x"}); res.status != 404 {
		t.Errorf("tokenize with an unknown model = %d, want 404", res.status)
	}
	if res := post(t, root+"/tokenize", map[string]any{}); res.status != 400 {
		t.Errorf("tokenize without prompt or messages = %d, want 400", res.status)
	}

	_, page := getText(t, root+"/metrics")
	wantPrompt := float64(tests[1].want)
	for name, want := range map[string]float64{
		"vllm:num_requests_running":       0,
		"vllm:num_requests_waiting":       0,
		"vllm:gpu_cache_usage_perc":       0,
		"vllm:kv_cache_usage_perc":        0,
		"vllm:prompt_tokens_total":        wantPrompt,
		"vllm:generation_tokens_total":    2,
		"vllm:num_preemptions_total":      0,
		"vllm:prefix_cache_hits_total":    0,
		"vllm:prefix_cache_queries_total": wantPrompt,
	} {
		if got := metricValue(page, name); got != want {
			t.Errorf("metric %s = %v, want %v", name, got, want)
		}
	}
	if want := `vllm:num_requests_running{model_name="my-model"} 0`; !strings.Contains(page, want) {
		t.Errorf("metrics page lacks %q:\n%s", want, page)
	}
}
