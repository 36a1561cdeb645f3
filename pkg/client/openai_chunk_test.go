package client

import (
	"encoding/json"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/packages/respjson"
)

// TestChunkFactsMatchOpenAITypes holds the chunk scanner to openai-go's
// own types, the API's typed vocabulary: on chunks shaped like real
// servers', what the scanner reads (generated text or not, the finish
// reason, the usage counts) is what openai-go's ChatCompletionChunk or
// Completion says. The reasoning fields are no part of the OpenAI API;
// openai-go keeps them among a delta's extra fields.
func TestChunkFactsMatchOpenAITypes(t *testing.T) {
	t.Parallel()
	nonEmpty := func(f respjson.Field) bool {
		var s string
		return json.Unmarshal([]byte(f.Raw()), &s) == nil && s != ""
	}
	for _, data := range []string{vllmChunk, vllmLast, vllmReasoning, openaiRole, openaiLogprobs, openaiUsageOnly, sglangChunk, sglangStop, ollamaChunk} {
		var c openai.ChatCompletionChunk
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatalf("openai-go cannot decode %s: %v", data, err)
		}
		var want chunkFacts
		for _, ch := range c.Choices {
			extra := ch.Delta.JSON.ExtraFields
			if ch.Delta.Content != "" || nonEmpty(extra["reasoning_content"]) || nonEmpty(extra["reasoning"]) {
				want.content = true
			}
			if ch.FinishReason != "" {
				want.finish = ch.FinishReason
			}
		}
		if c.JSON.Usage.Valid() {
			want.usage, want.prompt, want.completion = true, int(c.Usage.PromptTokens), int(c.Usage.CompletionTokens)
		}
		checkScan(t, data, want)
	}
	var c openai.Completion
	if err := json.Unmarshal([]byte(completionsText), &c); err != nil {
		t.Fatalf("openai-go cannot decode %s: %v", completionsText, err)
	}
	want := chunkFacts{content: c.Choices[0].Text != "", finish: string(c.Choices[0].FinishReason)}
	if c.JSON.Usage.Valid() {
		want.usage, want.prompt, want.completion = true, int(c.Usage.PromptTokens), int(c.Usage.CompletionTokens)
	}
	checkScan(t, completionsText, want)
}

func checkScan(t *testing.T, data string, want chunkFacts) {
	t.Helper()
	got, ok := scanChunk([]byte(data), nil)
	if !ok {
		got, _, _ = decodeChunk([]byte(data))
	}
	if got != want {
		t.Errorf("scanChunk(%s) = %+v, openai-go says %+v", data, got, want)
	}
}
