package client

import (
	"fmt"
	"strings"
	"testing"
)

// Chunks shaped like real servers' (ids and sizes shortened).
const (
	vllmChunk       = `{"id":"chatcmpl-8f3c","object":"chat.completion.chunk","created":1732612345,"model":"meta-llama/Meta-Llama-3-8B-Instruct","choices":[{"index":0,"delta":{"content":" the"},"logprobs":null,"finish_reason":null}],"usage":{"prompt_tokens":512,"total_tokens":513,"completion_tokens":1}}`
	vllmLast        = `{"id":"chatcmpl-8f3c","object":"chat.completion.chunk","created":1732612345,"model":"m","choices":[{"index":0,"delta":{"content":"."},"logprobs":null,"finish_reason":"length","stop_reason":null}],"usage":{"prompt_tokens":512,"total_tokens":612,"completion_tokens":100}}`
	vllmReasoning   = `{"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"reasoning_content":"Let me think"},"logprobs":null,"finish_reason":null}]}`
	openaiRole      = `{"id":"chatcmpl-A1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","service_tier":"default","system_fingerprint":"fp_0","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"a1B2"}`
	openaiLogprobs  = `{"id":"chatcmpl-A1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"caf\u00e9 \"q\""},"logprobs":{"content":[{"token":"caf\u00e9","logprob":-0.0123,"bytes":[99,97,102,195,169],"top_logprobs":[{"token":"cafe","logprob":-4.5e-1,"bytes":null}]}],"refusal":null},"finish_reason":null}],"usage":null}`
	openaiUsageOnly = `{"id":"chatcmpl-A1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"accepted_prediction_tokens":0}}}`
	sglangChunk     = `{"id":"6d1e","object":"chat.completion.chunk","created":1,"model":"default","choices":[{"index":0,"delta":{"role":null,"content":"Hi","reasoning_content":null,"tool_calls":null},"logprobs":null,"finish_reason":null,"matched_stop":null}],"usage":null}`
	sglangStop      = `{"id":"6d1e","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":null,"content":"","reasoning_content":null,"tool_calls":null},"logprobs":null,"finish_reason":"stop","matched_stop":128009}],"usage":{"prompt_tokens":5,"total_tokens":7,"completion_tokens":2,"prompt_tokens_details":null}}`
	ollamaChunk     = `{"id":"chatcmpl-501","object":"chat.completion.chunk","created":1,"model":"qwen3:0.6b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":"Okay"},"finish_reason":null}]}`
	completionsText = `{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":" world","logprobs":null,"finish_reason":null,"stop_reason":null,"prompt_logprobs":null}],"usage":{"prompt_tokens":3,"total_tokens":4,"completion_tokens":1},"error":null}`
)

// TestScanChunk checks what the scanner reads from the usual shapes, and
// that it leaves to encoding/json what it must not read itself.
func TestScanChunk(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		data   string
		want   chunkFacts
		wantOK bool
	}{
		{"vLLM content with usage", vllmChunk, chunkFacts{content: true, usage: true, prompt: 512, completion: 1}, true},
		{"vLLM last chunk", vllmLast, chunkFacts{content: true, finish: "length", usage: true, prompt: 512, completion: 100}, true},
		{"vLLM reasoning_content", vllmReasoning, chunkFacts{content: true}, true},
		{"OpenAI role chunk", openaiRole, chunkFacts{}, true},
		{"OpenAI escapes and nested logprobs", openaiLogprobs, chunkFacts{content: true}, true},
		{"OpenAI usage-only chunk", openaiUsageOnly, chunkFacts{usage: true, prompt: 9, completion: 12}, true},
		{"SGLang content", sglangChunk, chunkFacts{content: true}, true},
		{"SGLang stop", sglangStop, chunkFacts{finish: "stop", usage: true, prompt: 5, completion: 2}, true},
		{"Ollama reasoning", ollamaChunk, chunkFacts{content: true}, true},
		{"completions text, error null", completionsText, chunkFacts{content: true, usage: true, prompt: 3, completion: 1}, true},
		{"white space around", " \t{ \"choices\" : [ { \"text\" : \"a\" } ] }\r\n", chunkFacts{content: true}, true},
		{"null choice and null fields", `{"choices":[null,{"text":null,"delta":null,"finish_reason":null}],"usage":null,"object":null,"message":null}`, chunkFacts{}, true},
		{"last finish_reason wins", `{"choices":[{"finish_reason":"stop"},{"finish_reason":""},{"finish_reason":"length"}]}`, chunkFacts{finish: "length"}, true},
		{"unknown finish_reason kept", `{"choices":[{"finish_reason":"end_turn"}]}`, chunkFacts{finish: "end_turn"}, true},
		{"usage object with nulls", `{"usage":{"prompt_tokens":null,"completion_tokens":-0}}`, chunkFacts{usage: true}, true},

		{"error object", `{"error":{"message":"boom"}}`, chunkFacts{}, false},
		{"error string", `{"error":"boom"}`, chunkFacts{}, false},
		{"vLLM error event", `{"object":"error","message":"no"}`, chunkFacts{}, false},
		{"escaped error object", `{"object":"\u0065rror","message":"no"}`, chunkFacts{}, false},
		{"key in another case", `{"Choices":[{"text":"a"}]}`, chunkFacts{}, false},
		{"escaped key", `{"choice\u0073":[{"text":"a"}]}`, chunkFacts{}, false},
		{"non-ASCII key", "{\"choice\u017f\":[]}", chunkFacts{}, false},
		{"duplicate key", `{"usage":{"prompt_tokens":1},"usage":null}`, chunkFacts{}, false},
		{"escaped finish_reason", `{"choices":[{"finish_reason":"st\u006fp"}]}`, chunkFacts{}, false},
		{"float usage", `{"usage":{"completion_tokens":1.0}}`, chunkFacts{}, false},
		{"exponent usage", `{"usage":{"completion_tokens":1e2}}`, chunkFacts{}, false},
		{"huge usage", `{"usage":{"completion_tokens":12345678901234567890}}`, chunkFacts{}, false},
		{"content not a string", `{"choices":[{"delta":{"content":7}}]}`, chunkFacts{}, false},
		{"choices not an array", `{"choices":{}}`, chunkFacts{}, false},
		{"top level null", `null`, chunkFacts{}, false},
		{"top level array", `[]`, chunkFacts{}, false},
		{"truncated", `{"choices":[{"delta":{"content":"a"`, chunkFacts{}, false},
		{"trailing data", `{"choices":[]} {}`, chunkFacts{}, false},
		{"trailing comma", `{"choices":[],}`, chunkFacts{}, false},
		{"bad escape", `{"id":"\x"}`, chunkFacts{}, false},
		{"control character in a string", "{\"id\":\"a\tb\"}", chunkFacts{}, false},
		{"leading zero", `{"created":01}`, chunkFacts{}, false},
		{"too deep", `{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, chunkFacts{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := scanChunk([]byte(tt.data), nil)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("scanChunk(%s) = %+v, %v, want %+v, %v", tt.data, got, ok, tt.want, tt.wantOK)
			}
			// Whatever the scanner reads must agree with encoding/json.
			want, class, msg := decodeChunk([]byte(tt.data))
			if ok && (class != "" || got != want) {
				t.Errorf("decodeChunk(%s) = %+v, %q %q, want %+v and no error (the scanner's)", tt.data, want, class, msg, got)
			}
		})
	}
}

// TestScanChunkAllocs checks that reading a content chunk allocates nothing.
// (Not parallel: AllocsPerRun counts the whole program's allocations.)
func TestScanChunkAllocs(t *testing.T) {
	for _, data := range []string{vllmChunk, vllmLast, openaiLogprobs, sglangStop, completionsText} {
		b := []byte(data)
		if n := testing.AllocsPerRun(100, func() { _, _ = scanChunk(b, nil) }); n != 0 {
			t.Errorf("scanChunk(%.40s...) allocates %v times, want 0", data, n)
		}
	}
}

// FuzzChunkScanner checks the scanner against encoding/json: whenever the
// scanner reads an event, encoding/json must decode it without error (and
// find no server error in it) to the same facts.
// Run with: go test -run '^$' -fuzz FuzzChunkScanner -fuzztime 60s ./pkg/client
func FuzzChunkScanner(f *testing.F) {
	for _, s := range scannerSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := scanChunk(data, nil)
		if !ok {
			return // left to encoding/json
		}
		want, class, msg := decodeChunk(data)
		if class != "" {
			t.Fatalf("scanChunk(%q) = %+v, true, but encoding/json says %s: %s", data, got, class, msg)
		}
		if got != want {
			t.Errorf("scanChunk(%q) = %+v, want %+v (encoding/json)", data, got, want)
		}
	})
}

// scannerSeeds are the fuzz tests' seed chunks: real servers' shapes and
// the corners of JSON the scanner must leave to encoding/json.
var scannerSeeds = [...]string{
	vllmChunk, vllmLast, vllmReasoning, openaiRole, openaiLogprobs, openaiUsageOnly,
	sglangChunk, sglangStop, ollamaChunk, completionsText,
	`{"choices":[{"delta":{"content":"a"}}],"error":null}`,
	`{"choices":[{"text":"t","finish_reason":null}],"usage":{"prompt_tokens":3,"completion_tokens":1}}`,
	`{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}`,
	`{"choices":[{"delta":{"content":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}}]}`,
	`{"choices":[{"delta":{"content":null,"reasoning":""}}],"usage":null}`,
	`{"error":{"message":"boom","code":500}}`,
	`{"object":"error","message":"vllm says no","code":400}`,
	`{"choices":[{"delta":{"content":7}}]}`,
	`{"CHOICES":[{"Text":"a"}],"Usage":{"Prompt_Tokens":1}}`,
	`{"usage":{"completion_tokens":-12,"prompt_tokens":1.5e3}}`,
	`{"a":[true,false,null,-0.5e-3,{"b":{}},[]],"choices":[{"text":""}]}`,
	"{\"choices\":[{\"finish_reason\":\"caf\xc3\"}]}",
	`null`, `{}`, `[DONE]`, ``,
}

// TestChunkPrefix checks that a stream's chunks are read from the end of
// the members they repeat, and that what is read that way is what a read
// from the start gives.
func TestChunkPrefix(t *testing.T) {
	t.Parallel()
	const next = `{"id":"chatcmpl-8f3c","object":"chat.completion.chunk","created":1732612345,"model":"meta-llama/Meta-Llama-3-8B-Instruct","choices":[{"index":0,"delta":{"content":" cat"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":512,"total_tokens":514,"completion_tokens":2}}`
	tests := []struct {
		name        string
		first, then string
		wantPrefix  string // remembered after first
		resumed     bool   // then is read from the end of the prefix
	}{
		{"a stream's next chunk", vllmChunk, next,
			`{"id":"chatcmpl-8f3c","object":"chat.completion.chunk","created":1732612345,"model":"meta-llama/Meta-Llama-3-8B-Instruct",`, true},
		{"another stream", vllmChunk, sglangChunk,
			`{"id":"chatcmpl-8f3c","object":"chat.completion.chunk","created":1732612345,"model":"meta-llama/Meta-Llama-3-8B-Instruct",`, false},
		// The keys read before the prefix's end are remembered: a key
		// repeated after it is still left to encoding/json.
		{"a key repeated after the prefix", `{"object":"x","choices":[]}`, `{"object":"x","object":"y","choices":[]}`,
			`{"object":"x",`, true},
		{"white space kept", " {\"id\" : \"a\" ,\n\"usage\":null}", " {\"id\" : \"a\" ,\n\"usage\":{\"prompt_tokens\":1}}",
			" {\"id\" : \"a\" ,\n", true},
		{"nothing before choices", `{"choices":[{"text":"a"}]}`, `{"choices":[{"text":"b"}]}`, `{`, true},
		{"an error is not remembered", `{"id":"a","error":{"message":"boom"}}`, `{"id":"a","choices":[]}`, ``, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var p chunkPrefix
			got1, ok1 := scanChunk([]byte(tt.first), &p)
			want1, wantOK1 := scanChunk([]byte(tt.first), nil)
			if got1 != want1 || ok1 != wantOK1 {
				t.Errorf("first chunk with a prefix = %+v, %v; without = %+v, %v", got1, ok1, want1, wantOK1)
			}
			if string(p.b) != tt.wantPrefix {
				t.Errorf("remembered %q, want %q", p.b, tt.wantPrefix)
			}
			if resumed := len(p.b) > 0 && strings.HasPrefix(tt.then, string(p.b)); resumed != tt.resumed {
				t.Fatalf("the next chunk resumes: %v, want %v", resumed, tt.resumed)
			}
			got, ok := scanChunk([]byte(tt.then), &p)
			want, wantOK := scanChunk([]byte(tt.then), nil)
			if got != want || ok != wantOK {
				t.Errorf("next chunk with the prefix = %+v, %v; from its start = %+v, %v", got, ok, want, wantOK)
			}
		})
	}
}

// FuzzChunkPrefix checks that a chunk read after another, from the end of
// the members they share, gives what a read from its start gives.
// Run with: go test -run '^$' -fuzz FuzzChunkPrefix -fuzztime 60s ./pkg/client
func FuzzChunkPrefix(f *testing.F) {
	for _, a := range scannerSeeds {
		for _, b := range []string{vllmChunk, vllmLast, sglangStop, `{"object":"x","object":"y","choices":[]}`} {
			f.Add([]byte(a), []byte(b))
		}
	}
	f.Fuzz(func(t *testing.T, first, then []byte) {
		var p chunkPrefix
		scanChunk(first, &p)
		got, ok := scanChunk(then, &p)
		want, wantOK := scanChunk(then, nil)
		if got != want || ok != wantOK {
			t.Errorf("after %q (prefix %q): scanChunk(%q) = %+v, %v; from its start %+v, %v", first, p.b, then, got, ok, want, wantOK)
		}
	})
}

// BenchmarkScanChunk scans the chunk shapes of real servers, one after
// another, each read from its start: ns/op is per chunk.
func BenchmarkScanChunk(b *testing.B) {
	chunks := [][]byte{[]byte(vllmChunk), []byte(vllmLast), []byte(openaiLogprobs), []byte(sglangChunk), []byte(ollamaChunk), []byte(completionsText)}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, ok := scanChunk(chunks[i%len(chunks)], nil); !ok {
			b.Fatal("scanChunk gave up on a real server's chunk")
		}
	}
}

// BenchmarkScanStream scans one stream's chunks in order, as a stream's
// reader does: with the stream's chunkPrefix (the members every chunk
// repeats are not read again) and, for comparison, without. The chunks
// are shaped like the simulated engine's with sent timestamps, what the
// load harness reads. ns/op is per chunk.
func BenchmarkScanStream(b *testing.B) {
	chunks := make([][]byte, 64)
	for i := range chunks {
		chunks[i] = fmt.Appendf(nil, `{"id":"chatcmpl-sim-123","object":"chat.completion.chunk","created":1796174571,"model":"sim","choices":[{"index":0,"delta":{"content":" tok%d"},"logprobs":null,"finish_reason":null}],"usage":{"prompt_tokens":8,"completion_tokens":%d,"total_tokens":%d},"sim_sent_unix_ns":%d}`,
			i, i+1, i+9, 1796174572026499535+int64(i)*20e6)
	}
	for _, withPrefix := range []bool{true, false} {
		b.Run(fmt.Sprintf("prefix=%v", withPrefix), func(b *testing.B) {
			var prefix *chunkPrefix
			if withPrefix {
				prefix = &chunkPrefix{}
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, ok := scanChunk(chunks[i%len(chunks)], prefix); !ok {
					b.Fatal("scanChunk gave up on the engine's chunk")
				}
			}
		})
	}
}
