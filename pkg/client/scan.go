package client

// This file holds the allocation-free decoder of stream chunks: it reads
// only the fields chunkEvent reads and gives up (ok = false) on anything
// it is not sure encoding/json would read the same way, so that the caller
// can fall back to encoding/json. FuzzChunkScanner checks the two against
// each other, FuzzChunkPrefix a chunk read after another against the same
// chunk read alone.

import "bytes"

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
	// keyAt is where the key of the member being read starts (its
	// opening quote), set by members.
	keyAt int
}

// chunkPrefix remembers the start of a stream's last chunk up to its
// first member that tells something (choices or usage): the members
// before it (id, object, created, model…) are the same bytes in every
// chunk of a stream, and reading them is about a third of the work. A
// chunk that starts with the same bytes is read from that point, with
// the keys seen before it: the scanner is a function of the bytes it
// has read, so its state there is the one it had in the last chunk.
// The zero value remembers nothing.
type chunkPrefix struct {
	b    []byte // the bytes before the member, white space included
	seen uint   // topKeys bits of the members in b
}

// maxChunkPrefix bounds how much of a chunk a chunkPrefix keeps.
const maxChunkPrefix = 512

// prefixMark is where a scan found its first member that tells
// something; at < 0 when it found none.
type prefixMark struct {
	at   int
	seen uint
}

// scanChunk decodes data without allocating (except for a finish_reason
// outside knownFinish, and when prefix first remembers a chunk's start). ok is false when data is not a JSON object this
// scanner can read exactly as encoding/json reads it into chunkEvent, or
// when it carries a server error; the caller then decodes it with
// encoding/json.
//
// prefix, when non-nil, is the stream's chunkPrefix: data is read from
// the end of the remembered bytes when it starts with them, and a chunk
// read from its start is remembered for the next one. The result is the
// same either way.
func scanChunk(data []byte, prefix *chunkPrefix) (f chunkFacts, ok bool) {
	s := chunkScanner{b: data}
	if prefix != nil && len(prefix.b) > 0 && bytes.HasPrefix(data, prefix.b) {
		s.i = len(prefix.b)
		ok = s.top(&f, true, prefix.seen, nil)
	} else {
		mark := prefixMark{at: -1}
		s.ws()
		ok = s.peek() == '{' && s.top(&f, false, 0, &mark)
		s.ws()
		if ok && s.i == len(s.b) && prefix != nil && 0 < mark.at && mark.at <= maxChunkPrefix {
			prefix.b = append(prefix.b[:0], data[:mark.at]...)
			prefix.seen = mark.seen
		}
	}
	if !ok {
		return chunkFacts{}, false
	}
	s.ws()
	if s.i != len(s.b) {
		return chunkFacts{}, false
	}
	return f, true
}

// top reads the chunk object: from its '{', or with resume from a member
// boundary inside it (after a ',' and any white space), seen holding the
// bits of the keys read before. mark, when non-nil, records the boundary
// before the first member that tells something (choices or usage) and
// the keys seen before it.
func (s *chunkScanner) top(f *chunkFacts, resume bool, seen uint, mark *prefixMark) bool {
	member := func(key []byte, plain bool) bool {
		before := seen
		k, ok := keyIndex(key, plain, topKeys[:], &seen)
		if !ok {
			return false
		}
		if mark != nil && mark.at < 0 && (k == 0 || k == 1) {
			mark.at, mark.seen = s.keyAt, before
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
			raw, plain, ok := s.stringOrNull()
			// An escaped value might spell "error": left to encoding/json.
			return ok && plain && string(raw) != "error"
		case 4: // message: read only with "object":"error"
			_, _, ok := s.stringOrNull()
			return ok
		}
		return s.skip(1)
	}
	if resume {
		return s.members(member)
	}
	return s.object(member)
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
	return s.object(func(key []byte, plain bool) bool {
		k, ok := keyIndex(key, plain, choiceKeys[:], &seen)
		if !ok {
			return false
		}
		switch k {
		case 0: // text
			raw, _, ok := s.stringOrNull()
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
	return s.object(func(key []byte, plain bool) bool {
		k, ok := keyIndex(key, plain, deltaKeys[:], &seen)
		if !ok {
			return false
		}
		if k < 0 {
			return s.skip(2)
		}
		raw, _, ok := s.stringOrNull()
		f.content = f.content || len(raw) > 0
		return ok
	})
}

// finishReason reads a finish_reason value; only plain ASCII text without
// escapes is read here (encoding/json rewrites invalid UTF-8).
func (s *chunkScanner) finishReason(f *chunkFacts) bool {
	raw, plain, ok := s.stringOrNull()
	if !ok || len(raw) == 0 {
		return ok
	}
	if !plain {
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
	return s.object(func(key []byte, plain bool) bool {
		k, ok := keyIndex(key, plain, usageKeys[:], &seen)
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
// would match to none of them. plain is as str reports it. ok is false for
// a key the scanner leaves to encoding/json: escaped or non-ASCII (it might
// fold to a known key), a known key in another case, or a known key seen
// before in this object (seen has one bit per name).
func keyIndex(key []byte, plain bool, names []string, seen *uint) (k int, ok bool) {
	if !plain {
		return 0, false
	}
	for i, name := range names {
		if len(key) != len(name) {
			continue
		}
		if string(key) != name {
			if asciiEqualFold(key, name) {
				return 0, false
			}
			continue
		}
		if *seen&(1<<i) != 0 {
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
// (plain as str says) with s at the member's value; member must consume
// the value.
func (s *chunkScanner) object(member func(key []byte, plain bool) bool) bool {
	if !s.eat('{') {
		return false
	}
	s.ws()
	if s.eat('}') {
		return true
	}
	return s.members(member)
}

// members reads an object's members and its closing '}', from the start
// of a member (the white space before its key).
func (s *chunkScanner) members(member func(key []byte, plain bool) bool) bool {
	for {
		s.ws()
		s.keyAt = s.i
		key, plain, ok := s.str()
		if !ok {
			return false
		}
		s.ws()
		if !s.eat(':') {
			return false
		}
		s.ws()
		if !member(key, plain) {
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
		_, _, ok := s.str()
		return ok
	case c == '{':
		return s.object(func([]byte, bool) bool { return s.skip(depth + 1) })
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

// Classes of bytes inside a JSON string, for str.
const (
	strPlain   = iota // printable ASCII other than '"' and '\\'
	strQuote          // '"': the end of the string
	strEscape         // '\\': an escape follows
	strControl        // below 0x20: not allowed in a JSON string
	strHigh           // 0x80 and above: part of a UTF-8 sequence
)

// strClass is the class of every byte value. It is never written after
// its initialisation.
var strClass = func() (t [256]uint8) {
	for c := range t {
		switch {
		case c == '"':
			t[c] = strQuote
		case c == '\\':
			t[c] = strEscape
		case c < 0x20:
			t[c] = strControl
		case c >= 0x80:
			t[c] = strHigh
		}
	}
	return t
}()

// str reads a string (s is at its opening quote) and returns its raw
// bytes, between the quotes. It checks escapes and control characters as
// encoding/json does. plain reports a string of printable ASCII without
// escapes, whose raw bytes are its value. The loop works on local copies
// of the scanner's fields, which the compiler keeps in registers: this is
// the scanner's innermost loop, over most of a chunk's bytes.
func (s *chunkScanner) str() (raw []byte, plain, ok bool) {
	b, i := s.b, s.i
	if i >= len(b) || b[i] != '"' {
		return nil, false, false
	}
	i++
	start := i
	plain = true
	for i < len(b) {
		for i < len(b) && strClass[b[i]] == strPlain {
			i++
		}
		if i == len(b) {
			break
		}
		switch strClass[b[i]] {
		case strQuote:
			s.i = i + 1
			return b[start:i], plain, true
		case strControl:
			return nil, false, false
		case strHigh:
			plain = false
			i++
		case strEscape:
			plain = false
			if i+1 >= len(b) {
				return nil, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return nil, false, false
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return nil, false, false
					}
				}
				i += 6
			default:
				return nil, false, false
			}
		}
	}
	return nil, false, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// stringOrNull reads a string, returning its raw bytes, or null (nil,
// which is plain).
func (s *chunkScanner) stringOrNull() (raw []byte, plain, ok bool) {
	if s.null() {
		return nil, true, true
	}
	return s.str()
}

// number reads a JSON number. plainFits reports an integer without
// fraction or exponent and with at most 18 digits (so it fits an int64);
// v is then its value.
func (s *chunkScanner) number() (v int, plainFits, ok bool) {
	neg := s.eat('-')
	switch c := s.peek(); {
	case c == '0':
		s.i++
		plainFits = true
	case '1' <= c && c <= '9':
		// The digits loop works on locals, as str's does.
		b, i := s.b, s.i
		start := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			v = v*10 + int(b[i]-'0')
			i++
		}
		s.i = i
		if plainFits = i-start <= 18; !plainFits {
			v = 0 // overflowed: not meaningful
		}
	default:
		return 0, false, false
	}
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

// ws skips JSON white space. Chunks rarely hold any, so the first test
// returns at once on anything above a space.
func (s *chunkScanner) ws() {
	if s.i < len(s.b) && s.b[s.i] > ' ' {
		return
	}
	s.skipSpace()
}

// skipSpace is ws's loop.
func (s *chunkScanner) skipSpace() {
	b, i := s.b, s.i
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			s.i = i
			return
		}
	}
	s.i = i
}
