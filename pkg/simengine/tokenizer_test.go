package simengine

import (
	"slices"
	"strings"
	"testing"
)

func TestCountTokens(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		want int
		toks []string // the token texts, when worth checking
	}{
		{"", 0, nil},
		{"hello", 1, []string{"hello"}},
		{"hello world", 2, []string{"hello", " world"}},
		{"  hello", 1, []string{"  hello"}},
		{"hello  ", 2, []string{"hello", "  "}},
		{" ", 1, []string{" "}},
		{"\n\t ", 1, nil},
		{"12345678", 1, nil},
		{"123456789", 2, []string{"12345678", "9"}},
		{" abcdefghijklmnopq", 3, []string{" abcdefgh", "ijklmnop", "q"}},
		{"a\nb\r\nc", 3, []string{"a", "\nb", "\r\nc"}},
		{"日本語のテキストです", 2, []string{"日本語のテキスト", "です"}}, // 10 characters, not bytes
		{"héllo wörld", 2, nil},
		{"a\u00a0b", 2, nil}, // a no-break space separates words too
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			t.Parallel()
			if got := CountTokens(tt.text); got != tt.want {
				t.Errorf("CountTokens(%q) = %d, want %d", tt.text, got, tt.want)
			}
			var toks []string
			forEachToken(tt.text, func(tok string) { toks = append(toks, tok) })
			if strings.Join(toks, "") != tt.text {
				t.Errorf("tokens of %q = %q, do not concatenate back to the text", tt.text, toks)
			}
			if tt.toks != nil && !slices.Equal(toks, tt.toks) {
				t.Errorf("tokens of %q = %q, want %q", tt.text, toks, tt.toks)
			}
			if ids := textTokenIDs(tt.text, nil); len(ids) != tt.want {
				t.Errorf("len(textTokenIDs(%q)) = %d, want %d", tt.text, len(ids), tt.want)
			}
		})
	}
}

func TestChatPromptTokens(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		contents []string
		gen      bool
		want     int
	}{
		{"one message", []string{"hello world"}, true, ChatMessageTokens + 2 + ChatGenerationPromptTokens},
		{"no generation prompt", []string{"hello world"}, false, ChatMessageTokens + 2},
		{"two messages", []string{"be brief", "hi"}, true, 2*ChatMessageTokens + 3 + ChatGenerationPromptTokens},
		{"empty content", []string{""}, true, ChatMessageTokens + ChatGenerationPromptTokens},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ChatPromptTokens(tt.contents, tt.gen); got != tt.want {
				t.Errorf("ChatPromptTokens(%q, %v) = %d, want %d", tt.contents, tt.gen, got, tt.want)
			}
			msgs := make([]chatMessage, len(tt.contents))
			for i, c := range tt.contents {
				msgs[i] = chatMessage{Role: "user", Content: messageContent{Text: c}}
			}
			if ids := chatTokenIDs(msgs, tt.gen); len(ids) != tt.want {
				t.Errorf("len(chatTokenIDs) = %d, want %d", len(ids), tt.want)
			}
		})
	}
}

// TestOutputTokensCountOne checks that generated text round-trips through
// the tokenizer: n output tokens are counted as n tokens.
func TestOutputTokensCountOne(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 2, 10, 999, 1000, 1001, 5000} {
		var b []byte
		for i := range n {
			b = appendOutputToken(b, i)
		}
		if got := CountTokens(string(b)); got != n {
			t.Errorf("CountTokens(%d generated tokens) = %d, want %d", n, got, n)
		}
	}
}

func BenchmarkCountTokens(b *testing.B) {
	text := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 2000) // 18k tokens
	for b.Loop() {
		CountTokens(text)
	}
}
