//go:build linux

package client

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
)

// recvStamps reads a TCP connection with recvmsg and keeps the kernel's
// receive time (SO_TIMESTAMPNS) of the data each read returns: the wall
// clock when the bytes reached this machine's network stack, before this
// process was woken to read them. Token times taken from it do not grow
// with the client's own scheduling and decoding delays (see arrivalClock).
//
// For TCP the kernel reports the time of the last segment a read copied:
// when several queued segments are read at once, the earlier bytes get a
// later time than theirs, never an earlier one. A read that reports none
// sets last to 0. Read must be called from one goroutine at a time, as for
// any reader of the connection.
type recvStamps struct {
	conn net.Conn
	rc   syscall.RawConn
	read func(fd uintptr) bool // made once: a closure per Read would allocate

	// The arguments and results of read.
	p    []byte
	n    int
	oobn int
	err  error
	oob  [64]byte

	last int64 // kernel receive time of the latest read's data, Unix ns; 0 if none
}

// newRecvStamps turns on receive timestamps for conn and returns its
// reader, or nil when conn is not a TCP connection or the kernel refuses
// the option (the caller then reads conn as usual).
func newRecvStamps(conn net.Conn) *recvStamps {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}); err != nil || serr != nil {
		return nil
	}
	s := &recvStamps{conn: conn, rc: rc}
	s.read = func(fd uintptr) bool {
		for {
			s.n, s.oobn, _, _, s.err = syscall.Recvmsg(int(fd), s.p, s.oob[:], 0)
			if s.err != syscall.EINTR {
				break
			}
		}
		// Nothing to read yet: RawConn.Read waits for the socket to be
		// readable and calls read again.
		return s.err != syscall.EAGAIN
	}
	return s
}

// Read reads into p as conn.Read does and records the kernel's receive
// time of what it read in last.
func (s *recvStamps) Read(p []byte) (int, error) {
	s.last = 0
	if len(p) == 0 {
		return 0, nil
	}
	s.p = p
	err := s.rc.Read(s.read)
	s.p = nil
	if err != nil {
		// The connection was closed (the request's cancellation does that).
		var oe *net.OpError
		if errors.As(err, &oe) {
			oe.Op = "read"
		}
		return 0, err
	}
	if s.err != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: s.conn.LocalAddr(), Addr: s.conn.RemoteAddr(), Err: os.NewSyscallError("recvmsg", s.err)}
	}
	if s.n == 0 {
		return 0, io.EOF
	}
	s.last = kernelStamp(s.oob[:s.oobn])
	return s.n, nil
}

// kernelStamp returns the SCM_TIMESTAMPNS time in a control message
// buffer, in Unix ns, or 0 when it holds none. The header is a word-sized
// length then two int32s (level, type); the data a timespec of two words.
func kernelStamp(oob []byte) int64 {
	word := strconv.IntSize / 8
	head := syscall.CmsgLen(0)
	if len(oob) < head+2*word {
		return 0
	}
	level := int32(binary.NativeEndian.Uint32(oob[word:]))
	typ := int32(binary.NativeEndian.Uint32(oob[word+4:]))
	if level != syscall.SOL_SOCKET || typ != syscall.SCM_TIMESTAMPNS {
		return 0
	}
	sec := nativeWord(oob[head:], word)
	nsec := nativeWord(oob[head+word:], word)
	return sec*1e9 + nsec
}

// nativeWord reads a signed machine word of word bytes.
func nativeWord(b []byte, word int) int64 {
	if word == 4 {
		return int64(int32(binary.NativeEndian.Uint32(b)))
	}
	return int64(binary.NativeEndian.Uint64(b))
}
