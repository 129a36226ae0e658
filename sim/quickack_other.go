//go:build !linux

package sim

import "net"

// quickAck is Linux's TCP_QUICKACK (see quickack_linux.go); elsewhere
// connections keep their system's acknowledgement timing.
func quickAck(c net.Conn) net.Conn { return c }
