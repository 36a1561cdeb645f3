package simengine

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// TokenRunes is the longest word that counts as one token: a word of n
// non-whitespace characters counts ceil(n / TokenRunes) tokens.
const TokenRunes = 8

// ChatMessageTokens is the number of template tokens the chat endpoint adds
// per message: a three-token header (start of header, role, end of header)
// and an end-of-turn token, in the manner of Llama 3's template.
const ChatMessageTokens = 4

// ChatGenerationPromptTokens is the number of template tokens the chat
// endpoint adds once, after the messages, when add_generation_prompt is true
// (the default): the assistant's three-token header.
const ChatGenerationPromptTokens = 3

// vocabSize bounds the ids of ordinary tokens; the template's special
// tokens have ids above it, as in Llama 3.
const vocabSize = 128000

// Special token ids of the chat template.
const (
	tokStartHeader = 128006
	tokEndHeader   = 128007
	tokEndOfTurn   = 128009
)

// CountTokens counts the tokens of text under the simulated engine's
// tokenizer. Text is cut into words: a word is a maximal run of
// non-whitespace characters together with the whitespace before it. A word
// of n characters counts ceil(n/TokenRunes) tokens; whitespace at the end of
// the text, after the last word, counts one more token. The empty string has
// no tokens. No BOS or other special token is added.
func CountTokens(text string) int {
	n := 0
	forEachToken(text, func(string) { n++ })
	return n
}

// ChatPromptTokens is the number of prompt tokens the chat endpoint
// prefills for messages with the given contents: the tokens of each content,
// ChatMessageTokens per message and, when addGenerationPrompt is true,
// ChatGenerationPromptTokens.
func ChatPromptTokens(contents []string, addGenerationPrompt bool) int {
	n := 0
	for _, c := range contents {
		n += ChatMessageTokens + CountTokens(c)
	}
	if addGenerationPrompt {
		n += ChatGenerationPromptTokens
	}
	return n
}

// forEachToken calls fn with the text of every token of text, in order.
func forEachToken(text string, fn func(tok string)) {
	i := 0
	for i < len(text) {
		start := i
		for i < len(text) {
			r, size := decodeRune(text[i:])
			if !unicode.IsSpace(r) {
				break
			}
			i += size
		}
		if i == len(text) {
			fn(text[start:]) // trailing whitespace
			return
		}
		// A long word is cut every TokenRunes characters; the first
		// piece keeps the leading whitespace.
		runes := 0
		for i < len(text) {
			r, size := decodeRune(text[i:])
			if unicode.IsSpace(r) {
				break
			}
			if runes == TokenRunes {
				fn(text[start:i])
				start, runes = i, 0
			}
			i += size
			runes++
		}
		fn(text[start:i])
	}
}

func decodeRune(s string) (rune, int) {
	if s[0] < utf8.RuneSelf {
		return rune(s[0]), 1
	}
	return utf8.DecodeRuneInString(s)
}

// tokenID is the id of an ordinary token: the FNV-1a hash of its text
// (written out, so that hashing a prompt allocates nothing).
func tokenID(tok string) int {
	h := uint32(2166136261)
	for i := 0; i < len(tok); i++ {
		h ^= uint32(tok[i])
		h *= 16777619
	}
	return int(h % vocabSize)
}

// textTokenIDs returns the token ids of text.
func textTokenIDs(text string, ids []int) []int {
	forEachToken(text, func(tok string) { ids = append(ids, tokenID(tok)) })
	return ids
}

// chatTokenIDs returns the token ids of a chat prompt, template included.
// Its length is ChatPromptTokens of the same contents.
func chatTokenIDs(msgs []chatMessage, addGenerationPrompt bool) []int {
	var ids []int
	for _, m := range msgs {
		ids = append(ids, tokStartHeader, tokenID(m.Role), tokEndHeader)
		ids = textTokenIDs(m.Content.Text, ids)
		ids = append(ids, tokEndOfTurn)
	}
	if addGenerationPrompt {
		ids = append(ids, tokStartHeader, tokenID("assistant"), tokEndHeader)
	}
	return ids
}

// appendOutputToken appends the text of generated token i (0-based): one
// word such as " tok17", which CountTokens counts as exactly one token.
func appendOutputToken(b []byte, i int) []byte {
	b = append(b, " tok"...)
	return strconv.AppendInt(b, int64(i%1000), 10)
}
