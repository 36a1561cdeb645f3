//go:build !linux

package client

import "net"

// recvStamps would read a connection with the kernel's receive times;
// only Linux gives them for TCP here, so elsewhere there is none and
// token times are taken when the client reads the bytes.
type recvStamps struct{ last int64 }

func newRecvStamps(net.Conn) *recvStamps { return nil }

func (*recvStamps) Read([]byte) (int, error) { panic("client: no receive timestamps on this platform") }
