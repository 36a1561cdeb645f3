package report

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/veeksha-go/veeksha/pkg/result"
)

// RecordFlushInterval is the longest a finished request's record waits in
// memory before it reaches the file: a process killed without warning
// loses at most the requests in flight and the last interval's records.
const RecordFlushInterval = time.Second

// RecordFile is a requests.jsonl being written while its point runs: each
// record is appended as its request ends (buffered, flushed within
// RecordFlushInterval), and Close rewrites the file in send order once
// the point is over. It is safe for concurrent use.
type RecordFile struct {
	path string

	mu      sync.Mutex
	f       *os.File
	buf     *bufio.Writer
	enc     *json.Encoder
	pending *time.Timer // the next flush, nil when nothing is buffered
	err     error       // the first write error; later records are dropped and Close returns it
}

// Records opens the record file rel (e.g. "c=8/requests.jsonl") inside the
// run folder, creating its parent folders. An existing file is replaced.
func (d *Dir) Records(rel string) (*RecordFile, error) {
	rel = filepath.FromSlash(rel)
	if rel == "" || !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("records %q: not a relative path inside the run folder", rel)
	}
	return OpenRecords(filepath.Join(d.Path(), rel))
}

// OpenRecords creates the record file at path, creating its parent folders.
func OpenRecords(path string) (*RecordFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("records %s: %w", path, err)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("records %s: %w", path, err)
	}
	buf := bufio.NewWriterSize(f, 64*1024)
	return &RecordFile{path: path, f: f, buf: buf, enc: json.NewEncoder(buf)}, nil
}

// Record appends one finished request.
func (rf *RecordFile) Record(r result.Request) {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	if rf.err != nil || rf.f == nil {
		return
	}
	if err := rf.enc.Encode(r); err != nil {
		rf.err = fmt.Errorf("records %s: request %d: %w", rf.path, r.Seq, err)
		return
	}
	if rf.pending == nil {
		rf.pending = time.AfterFunc(RecordFlushInterval, rf.flush)
	}
}

// flush writes the buffered records to the file.
func (rf *RecordFile) flush() {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	rf.pending = nil
	if rf.err != nil || rf.f == nil {
		return
	}
	if err := rf.buf.Flush(); err != nil {
		rf.err = fmt.Errorf("records %s: %w", rf.path, err)
	}
}

// Close ends the stream and replaces the file, atomically, with all
// (every record of the point, in send order): the order the results
// format promises. Once that rewrite succeeds the file is whole, so an
// earlier error of the stream is no longer one; otherwise both are
// returned.
func (rf *RecordFile) Close(all []result.Request) error {
	rf.mu.Lock()
	if rf.pending != nil {
		rf.pending.Stop()
		rf.pending = nil
	}
	streamErr := rf.err
	if rf.f != nil {
		streamErr = errors.Join(streamErr, rf.buf.Flush(), rf.f.Close())
		rf.f = nil
	}
	rf.mu.Unlock()
	err := WriteFileAtomic(rf.path, func(w io.Writer) error { return result.WriteJSONL(w, all) })
	if err != nil && streamErr != nil {
		return errors.Join(err, fmt.Errorf("records %s: %w", rf.path, streamErr))
	}
	return err
}
