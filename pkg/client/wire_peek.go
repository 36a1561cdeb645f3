//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package client

import (
	"errors"
	"net"
	"syscall"
)

// wireSupported: connAlive can tell a connection the server closed while it
// was idle, so the wire transport is used for http base URLs.
const wireSupported = true

// connAlive reports whether an idle connection can take a request: the
// server has not closed it (a keep-alive timeout, as uvicorn's 5 s) and
// has sent nothing unasked. It peeks at the socket without waiting: one
// system call, no data consumed.
func connAlive(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Nothing to read is the only sign of health: data, the end of
		// the stream (n == 0, no error) and errors all rule it out.
		alive = errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK)
		return true
	})
	return err == nil && alive
}
