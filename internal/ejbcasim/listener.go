package ejbcasim

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
)

// gateListener keeps the port bound while its owner (the simulator or a
// Node) is "down" but resets
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
func (s *Sim) SetDown(down bool) { s.listener.set(down) }

func (s *Sim) isDown() bool { return s.listener.isDown() }

// downSwitch is a listener's "down" state and its open connections, for
// the simulator's own listener and each Node's: taken down, the open
// connections are reset, and gateListener resets each new one.
type downSwitch struct {
	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

func (d *downSwitch) set(down bool) {
	d.mu.Lock()
	d.down = down
	var open []net.Conn
	if down {
		for c := range d.conns {
			open = append(open, c)
		}
	}
	d.mu.Unlock()
	for _, c := range open {
		resetConn(c)
	}
}

func (d *downSwitch) isDown() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.down
}

// trackConn remembers the server's open connections (an http.Server's
// ConnState), for set.
func (d *downSwitch) trackConn(c net.Conn, state http.ConnState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch state {
	case http.StateNew:
		if d.conns == nil {
			d.conns = map[net.Conn]struct{}{}
		}
		d.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(d.conns, c)
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
