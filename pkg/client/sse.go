package client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// sseBufSize is the read buffer of one stream, in bytes: a line longer
// than this is assembled in a separate buffer.
const sseBufSize = 4096

// maxEventBytes bounds one line and one event's data, in bytes (as
// openai-go's decoder did): a longer one ends the stream with an error.
const maxEventBytes = 32 << 20

// errEventTooLong ends a stream whose line or event passes maxEventBytes.
var errEventTooLong = fmt.Errorf("server-sent event longer than %d bytes", maxEventBytes)

// sseReader reads the data of server-sent events from a response body
// without allocating per event: lines end in LF or CRLF; "data:" lines
// (with or without a space after the colon) are joined with "\n", each
// followed by "\n"; comments (":") and other fields (event, id, retry) are
// skipped; a blank line ends an event, and so does the end of the body. An
// event without any data line is not returned.
type sseReader struct {
	br   *bufio.Reader
	long []byte // a line longer than br's buffer, assembled
	data []byte // the current event's data
	err  error  // set once the body has ended or failed
	// events counts the events returned.
	events int
}

func newSSEReader(body io.Reader) *sseReader {
	return &sseReader{br: bufio.NewReaderSize(body, sseBufSize)}
}

// next returns the data of the next event. The slice is valid only until
// the following call. At the end of the stream it returns io.EOF (clean
// end) or the read error; an event cut by a read error is dropped.
func (r *sseReader) next() ([]byte, error) {
	r.data = r.data[:0]
	hasData := false
	for r.err == nil {
		line, err := r.readLine()
		if err != nil {
			r.err = err
			if err != io.EOF {
				return nil, err
			}
		}
		if len(line) == 0 && r.err == nil {
			if hasData {
				r.events++
				return r.data, nil // a blank line ends the event
			}
			continue
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		if string(name) != "data" {
			continue // a comment, another field, or a line that is not a field
		}
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		if len(r.data)+len(value) >= maxEventBytes {
			r.err = errEventTooLong
			return nil, r.err
		}
		r.data = append(r.data, value...)
		r.data = append(r.data, '\n')
		hasData = true
	}
	if hasData && r.err == io.EOF {
		r.events++
		return r.data, nil // the body ended without a blank line after the event
	}
	return nil, r.err
}

// readLine returns the next line without its line end. err is nil for a
// line ended by "\n"; otherwise the line is what came before the error
// (io.EOF at the end of the body).
func (r *sseReader) readLine() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		r.long = append(r.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(r.long) >= maxEventBytes {
				return nil, errEventTooLong
			}
			line, err = r.br.ReadSlice('\n')
			r.long = append(r.long, line...)
		}
		line = r.long
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return line, err
}
