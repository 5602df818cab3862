package ejbcasim

import (
	"crypto/tls"
	"net"
	"net/http"
)

// gateListener keeps the port bound while the simulator is "down" but resets
// every connection it accepts meanwhile, so clients see an unreachable EJBCA.
type gateListener struct {
	net.Listener
	isDown func() bool
}

func (l *gateListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.isDown() {
			return c, nil
		}
		resetConn(c)
	}
}

// SetDown simulates an unreachable EJBCA: while down, open connections are
// reset and new ones are reset as soon as they are accepted; the listener
// stays bound, so the URL is valid again after SetDown(false).
func (s *Sim) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	var open []net.Conn
	if down {
		for c := range s.conns {
			open = append(open, c)
		}
	}
	s.mu.Unlock()
	for _, c := range open {
		resetConn(c)
	}
}

func (s *Sim) isDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

// trackConn remembers the server's open connections, for SetDown.
func (s *Sim) trackConn(c net.Conn, state http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch state {
	case http.StateNew:
		s.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(s.conns, c)
	}
}

// resetConn closes c with a TCP reset (no TLS close_notify), the way a
// crashed server or a dropping firewall looks to the client.
func resetConn(c net.Conn) {
	raw := c
	if tc, ok := c.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = raw.Close()
}
