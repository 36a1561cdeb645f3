//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package client

import "net"

// wireSupported: connAlive cannot peek at a socket here, so a connection
// the server closed while idle would be found only by the request sent on
// it. net/http's Transport, which watches its idle connections, is used
// for http base URLs too.
const wireSupported = false

func connAlive(net.Conn) bool { return true }
