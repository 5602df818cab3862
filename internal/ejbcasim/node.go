package ejbcasim

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Node is one more listener of a simulator: another node of the same EJBCA,
// over the same state (CAs, end entities, approvals, issued certificates,
// counters), as EJBCA Enterprise's nodes share one database. Each node can
// be taken down or frozen on its own. A test-only option: StartNode is
// never called by the simulator itself.
//
// What is modelled: nodes of an EJBCA cluster (or RA nodes) answer every
// REST call from the shared database, so an approval request made through
// one node is polled through another and a certificate issued through one
// is found by a search through another (EJBCA's database-backed session
// beans: EndEntityManagementSessionBean, ApprovalSessionBean,
// CertificateStoreSessionBean). Deliberate deviations: nodes share the
// simulator's faults, latency and switches (a fault injected for an
// endpoint is taken by whichever node serves the call first), and there is
// no replication delay (EJBCA's nodes read one database, so there is none
// to model).
type Node struct {
	sim       *Sim
	srv       *http.Server
	url       string
	serveDone chan struct{}
	closed    chan struct{}
	closeOnce sync.Once

	listener downSwitch

	mu     sync.Mutex
	thaw   chan struct{}  // non-nil while frozen; closed when thawed
	calls  map[string]int // by path suffix after the REST prefix
	frozen int            // calls held by the freeze
	refuse bool           // refuse every authenticated call with 403
	dialed int            // connections accepted, those reset while down included
}

// StartNode starts another node of s on a new loopback port, closed with s
// (or by Close).
func (s *Sim) StartNode() (*Node, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ejbcasim: listen for a node: %w", err)
	}
	n := &Node{sim: s, url: "https://" + dialableAddr(ln.Addr()), serveDone: make(chan struct{}), closed: make(chan struct{}),
		calls: map[string]int{}}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	n.srv = &http.Server{
		Handler:           n.wrap(s.routes()),
		ConnState:         n.listener.trackConn,
		Protocols:         protocols,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	gate := &gateListener{Listener: &countingListener{Listener: ln, node: n}, isDown: n.isDown}
	go func() {
		defer close(n.serveDone)
		_ = n.srv.Serve(tls.NewListener(gate, s.tlsConfig))
	}()
	go func() {
		select {
		case <-s.closed:
			n.Close()
		case <-n.closed:
		}
	}()
	return n, nil
}

// URL is the node's origin, "https://127.0.0.1:PORT".
func (n *Node) URL() string { return n.url }

// Close stops the node and drops its connections.
func (n *Node) Close() {
	n.closeOnce.Do(func() {
		close(n.closed)
		_ = n.srv.Close()
		<-n.serveDone
	})
}

// SetDown takes the node down (its connections and every new one are reset,
// the port stays bound) or brings it back, as Sim.SetDown does for the
// simulator's own listener.
func (n *Node) SetDown(down bool) { n.listener.set(down) }

// SetFrozen freezes the node (a hung JVM, a node stuck on its database):
// it accepts connections and reads calls but neither handles nor answers
// them. Thawing drops the held calls with a connection reset, unhandled, as
// a hung node that is restarted does; calls after that are served.
func (n *Node) SetFrozen(frozen bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case frozen && n.thaw == nil:
		n.thaw = make(chan struct{})
	case !frozen && n.thaw != nil:
		close(n.thaw)
		n.thaw = nil
	}
}

// SetRefuseCredentials makes the node answer every REST call that needs
// credentials (not the status endpoints, which need none; after the
// presets' absent endpoints and a disabled protocol, which answer as they
// do on every node) with a 403, whatever the credentials, while the other nodes accept
// them: a node whose own configuration differs (its application server's
// truststore lacks the administrator CA, or its OAuth provider settings are
// stale). EJBCA refuses credentials with 403 and its JSON error body
// (ExceptionHandler for AuthenticationFailedException); the message is the
// simulator's own (listed in the package doc).
func (n *Node) SetRefuseCredentials(refuse bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.refuse = refuse
}

// Calls is how many calls reached the node whose REST path ends with
// suffix (e.g. "/pkcs10enroll"; "" counts every call), whether it answered
// them or not.
func (n *Node) Calls(suffix string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	total := 0
	for path, c := range n.calls {
		if strings.HasSuffix(path, suffix) {
			total += c
		}
	}
	return total
}

// Dialed is how many connections clients opened to the node, those it
// reset while down included: how often a client tried it.
func (n *Node) Dialed() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dialed
}

type countingListener struct {
	net.Listener
	node *Node
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.node.mu.Lock()
		l.node.dialed++
		l.node.mu.Unlock()
	}
	return c, err
}

// Held is how many calls the node holds frozen right now.
func (n *Node) Held() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.frozen
}

func (n *Node) isDown() bool { return n.listener.isDown() }

func (n *Node) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		n.calls[strings.TrimPrefix(r.URL.Path, restPrefix)]++
		thaw, refuse := n.thaw, n.refuse
		if thaw != nil {
			n.frozen++
		}
		n.mu.Unlock()
		if n.isDown() {
			abortConnection(w)
			return
		}
		if thaw != nil {
			select {
			case <-thaw:
			case <-r.Context().Done():
			case <-n.closed:
			}
			n.mu.Lock()
			n.frozen--
			n.mu.Unlock()
			abortConnection(w)
			return
		}
		if refuse {
			// The endpoint decides (Sim.serveEndpoint): only calls that
			// need credentials are refused.
			r = r.WithContext(context.WithValue(r.Context(), refusingNode{}, true))
		}
		h.ServeHTTP(w, r)
	})
}

// refusingNode marks, in a request's context, a call that reached a node
// refusing credentials (Node.SetRefuseCredentials).
type refusingNode struct{}

func refusedByNode(r *http.Request) bool {
	v, _ := r.Context().Value(refusingNode{}).(bool)
	return v
}
