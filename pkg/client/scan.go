package client

import "bytes"

// This file holds the allocation-free decoder of stream chunks: it reads
// only the fields chunkEvent reads and gives up (ok = false) on anything
// it is not sure encoding/json would read the same way, so that the caller
// can fall back to encoding/json. FuzzChunkScanner checks the two against
// each other.

// chunkFacts is what one stream chunk tells the client.
type chunkFacts struct {
	// content: some choice carries generated text (text, delta.content,
	// delta.reasoning_content or delta.reasoning is a non-empty string).
	content bool
	// finish is the last non-empty finish_reason of the chunk's choices.
	finish string
	// usage: the chunk has a non-null usage object, whose counts (in
	// server tokens) are prompt and completion.
	usage              bool
	prompt, completion int
}

// maxScanDepth bounds the nesting the scanner follows; deeper values are
// left to encoding/json.
const maxScanDepth = 64

// Keys read at each level, lowercase ASCII: encoding/json matches them
// case-insensitively, so the scanner gives up on a key that equals one of
// them in another case. These arrays are never written.
var (
	topKeys    = [...]string{"choices", "usage", "error", "object", "message"}
	choiceKeys = [...]string{"text", "delta", "finish_reason"}
	deltaKeys  = [...]string{"content", "reasoning_content", "reasoning"}
	usageKeys  = [...]string{"prompt_tokens", "completion_tokens"}
)

// knownFinish are finish reasons returned without allocating.
var knownFinish = [...]string{"stop", "length", "tool_calls", "content_filter", "function_call", "abort", "eos", "error"}

// chunkScanner walks one chunk's JSON text. Its methods return false when
// the text is not valid JSON or holds something the scanner leaves to
// encoding/json; the walk then stops.
type chunkScanner struct {
	b []byte
	i int
}

// scanChunk decodes data without allocating (except for a finish_reason
// outside knownFinish). ok is false when data is not a JSON object this
// scanner can read exactly as encoding/json reads it into chunkEvent, or
// when it carries a server error; the caller then decodes it with
// encoding/json.
func scanChunk(data []byte) (f chunkFacts, ok bool) {
	s := chunkScanner{b: data}
	s.ws()
	if s.peek() != '{' || !s.top(&f) {
		return chunkFacts{}, false
	}
	s.ws()
	if s.i != len(s.b) {
		return chunkFacts{}, false
	}
	return f, true
}

// top reads the chunk object.
func (s *chunkScanner) top(f *chunkFacts) bool {
	var seen uint
	return s.object(func(key []byte) bool {
		k, ok := keyIndex(key, topKeys[:], &seen)
		if !ok {
			return false
		}
		switch k {
		case 0: // choices
			return s.choices(f)
		case 1: // usage
			if s.null() {
				return true
			}
			f.usage = true
			return s.peek() == '{' && s.usage(f)
		case 2: // error: only null is not an error
			return s.null()
		case 3: // object: "error" marks an error event
			raw, ok := s.stringOrNull()
			return ok && string(raw) != "error" && !hasEscape(raw)
		case 4: // message: read only with "object":"error"
			_, ok := s.stringOrNull()
			return ok
		}
		return s.skip(1)
	})
}

// choices reads the choices array (or null).
func (s *chunkScanner) choices(f *chunkFacts) bool {
	if s.null() {
		return true
	}
	if !s.eat('[') {
		return false
	}
	s.ws()
	if s.eat(']') {
		return true
	}
	for {
		s.ws()
		if !s.null() && (s.peek() != '{' || !s.choice(f)) {
			return false
		}
		s.ws()
		if s.eat(']') {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

// choice reads one element of choices.
func (s *chunkScanner) choice(f *chunkFacts) bool {
	var seen uint
	return s.object(func(key []byte) bool {
		k, ok := keyIndex(key, choiceKeys[:], &seen)
		if !ok {
			return false
		}
		switch k {
		case 0: // text
			raw, ok := s.stringOrNull()
			f.content = f.content || len(raw) > 0
			return ok
		case 1: // delta
			if s.null() {
				return true
			}
			return s.peek() == '{' && s.delta(f)
		case 2: // finish_reason
			return s.finishReason(f)
		}
		return s.skip(1)
	})
}

// delta reads a choice's delta object.
func (s *chunkScanner) delta(f *chunkFacts) bool {
	var seen uint
	return s.object(func(key []byte) bool {
		k, ok := keyIndex(key, deltaKeys[:], &seen)
		if !ok {
			return false
		}
		if k < 0 {
			return s.skip(2)
		}
		raw, ok := s.stringOrNull()
		f.content = f.content || len(raw) > 0
		return ok
	})
}

// finishReason reads a finish_reason value; only plain ASCII text without
// escapes is read here (encoding/json rewrites invalid UTF-8).
func (s *chunkScanner) finishReason(f *chunkFacts) bool {
	raw, ok := s.stringOrNull()
	if !ok || len(raw) == 0 {
		return ok
	}
	for _, c := range raw {
		if c >= 0x80 {
			return false
		}
	}
	if hasEscape(raw) {
		return false
	}
	for _, known := range knownFinish {
		if string(raw) == known {
			f.finish = known
			return true
		}
	}
	f.finish = string(raw)
	return true
}

// usage reads the usage object.
func (s *chunkScanner) usage(f *chunkFacts) bool {
	var seen uint
	return s.object(func(key []byte) bool {
		k, ok := keyIndex(key, usageKeys[:], &seen)
		if !ok {
			return false
		}
		switch k {
		case 0:
			return s.intOrNull(&f.prompt)
		case 1:
			return s.intOrNull(&f.completion)
		}
		return s.skip(2)
	})
}

// keyIndex returns the index of key in names, or -1 for a key encoding/json
// would match to none of them. ok is false for a key the scanner leaves to
// encoding/json: escaped or non-ASCII (it might fold to a known key), a
// known key in another case, or a known key seen before in this object
// (seen has one bit per name).
func keyIndex(key []byte, names []string, seen *uint) (k int, ok bool) {
	for _, c := range key {
		if c >= 0x80 || c == '\\' {
			return 0, false
		}
	}
	for i, name := range names {
		if !asciiEqualFold(key, name) {
			continue
		}
		if string(key) != name || *seen&(1<<i) != 0 {
			return 0, false
		}
		*seen |= 1 << i
		return i, true
	}
	return -1, true
}

// asciiEqualFold reports whether b equals the lowercase ASCII name, ignoring
// ASCII case.
func asciiEqualFold(b []byte, name string) bool {
	if len(b) != len(name) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

// object reads an object (s is at its '{'), calling member for each key
// with s at the member's value; member must consume the value.
func (s *chunkScanner) object(member func(key []byte) bool) bool {
	if !s.eat('{') {
		return false
	}
	s.ws()
	if s.eat('}') {
		return true
	}
	for {
		s.ws()
		key, ok := s.str()
		if !ok {
			return false
		}
		s.ws()
		if !s.eat(':') {
			return false
		}
		s.ws()
		if !member(key) {
			return false
		}
		s.ws()
		if s.eat('}') {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

// skip consumes any JSON value at nesting depth.
func (s *chunkScanner) skip(depth int) bool {
	if depth > maxScanDepth {
		return false
	}
	switch c := s.peek(); {
	case c == '"':
		_, ok := s.str()
		return ok
	case c == '{':
		return s.object(func([]byte) bool { return s.skip(depth + 1) })
	case c == '[':
		s.i++
		s.ws()
		if s.eat(']') {
			return true
		}
		for {
			s.ws()
			if !s.skip(depth + 1) {
				return false
			}
			s.ws()
			if s.eat(']') {
				return true
			}
			if !s.eat(',') {
				return false
			}
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		_, _, ok := s.number()
		return ok
	}
	return false
}

// str reads a string (s is at its opening quote) and returns its raw
// bytes, between the quotes. It checks escapes and control characters as
// encoding/json does.
func (s *chunkScanner) str() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], true
		case c < 0x20:
			return nil, false
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return nil, false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return nil, false
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if !isHex(h) {
						return nil, false
					}
				}
				s.i += 6
			default:
				return nil, false
			}
		default:
			s.i++
		}
	}
	return nil, false
}

// hasEscape reports whether a raw string holds a backslash escape.
func hasEscape(raw []byte) bool {
	return bytes.IndexByte(raw, '\\') >= 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// stringOrNull reads a string, returning its raw bytes, or null (nil).
func (s *chunkScanner) stringOrNull() ([]byte, bool) {
	if s.null() {
		return nil, true
	}
	return s.str()
}

// number reads a JSON number. plainFits reports an integer without
// fraction or exponent and with at most 18 digits (so it fits an int64);
// v is then its value.
func (s *chunkScanner) number() (v int, plainFits, ok bool) {
	neg := s.eat('-')
	digits := 0
	switch c := s.peek(); {
	case c == '0':
		s.i++
		digits = 1
	case '1' <= c && c <= '9':
		for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
			v = v*10 + int(s.b[s.i]-'0')
			digits++
			s.i++
			if digits > 18 {
				v = 0 // no longer meaningful; keep scanning
			}
		}
	default:
		return 0, false, false
	}
	plainFits = digits <= 18
	if s.eat('.') {
		plainFits = false
		if !s.digits() {
			return 0, false, false
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		plainFits = false
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if !s.digits() {
			return 0, false, false
		}
	}
	if neg {
		v = -v
	}
	return v, plainFits, true
}

// digits consumes one or more decimal digits.
func (s *chunkScanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// intOrNull reads an integer into *v (null leaves it as is). Numbers
// encoding/json would not put in an int (fraction, exponent), and long
// ones, are left to it.
func (s *chunkScanner) intOrNull(v *int) bool {
	if s.null() {
		return true
	}
	n, plainFits, ok := s.number()
	if !ok || !plainFits {
		return false
	}
	*v = n
	return true
}

// null consumes a null literal if s is at one.
func (s *chunkScanner) null() bool {
	return s.peek() == 'n' && s.literal("null")
}

// literal consumes lit, which must come next.
func (s *chunkScanner) literal(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// eat consumes c if it comes next.
func (s *chunkScanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// peek returns the next byte, or 0 at the end.
func (s *chunkScanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// ws skips JSON white space.
func (s *chunkScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}
