package sim

import (
	"net"
	"syscall"
)

// quickAck makes a TCP connection acknowledge what it receives at once.
//
// Real servers that leave Nagle's algorithm on (jabberd2 never sets
// TCP_NODELAY; Prosody only when told to) hold a small write until the
// previous one is acknowledged, and Linux delays an acknowledgement by up
// to 40 ms when it has nothing to send: every STARTTLS, stream restart
// and verify connection with them stalled that long (jabberd2's TLS
// Dialback took ≈100 ms instead of ≈15 ms). The harness acknowledging at
// once changes nothing a peer can see but the timing. TCP_QUICKACK does
// not stick, so it is set again after every read.
func quickAck(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	q := &quickAckConn{TCPConn: tc, rc: rc}
	q.set()
	return q
}

type quickAckConn struct {
	*net.TCPConn
	rc syscall.RawConn
}

func (q *quickAckConn) set() {
	_ = q.rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}

func (q *quickAckConn) Read(b []byte) (int, error) {
	n, err := q.TCPConn.Read(b)
	q.set()
	return n, err
}
