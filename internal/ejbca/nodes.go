package ejbca

import (
	"net/url"
	"sync"
	"time"
)

// DefaultNodeRetry is how long a node that failed is set aside before a
// read-only call tries it first again; the same as the least spacing of an
// issuer's health checks, so a dead node costs at most one call per minute
// on top of the health check's own.
const DefaultNodeRetry = time.Minute

// MaxNodes bounds the nodes of one client (the API allows url and 4 more).
const MaxNodes = 5

// nodeSet is the EJBCA nodes of one issuer and what the client believes of
// each. The nodes share one database, so any of them can answer any call;
// the client prefers them in the order given (stable preference, not
// spread): that is predictable for the operator (the first node takes the
// traffic while it works), keeps one node's caches and the client's pooled
// connections warm, and needs no coordination between replicas.
//
// A node that failed (no connection, TLS failure, timeout, 5xx) is
// suspect: calls try it only after every usable node, until a call
// succeeds on it. Once its retry time has come, one read-only call (a GET
// or a search; never an enrolment) tries it first, and the retry time moves
// on, so a dead node is tried at most once per retry period.
type nodeSet struct {
	retry time.Duration

	mu    sync.Mutex
	nodes []nodeState
}

type nodeState struct {
	raw  string // as written in the issuer
	base *url.URL
	// suspect: the last call to this node failed; since, why and when it
	// may be tried first again.
	suspect bool
	since   time.Time
	reason  string
	retryAt time.Time
}

func newNodeSet(raw []string, retry time.Duration) (*nodeSet, error) {
	if retry <= 0 {
		retry = DefaultNodeRetry
	}
	s := &nodeSet{retry: retry}
	for _, r := range raw {
		base, err := BaseURL(r)
		if err != nil {
			return nil, err
		}
		s.nodes = append(s.nodes, nodeState{raw: r, base: base})
	}
	return s, nil
}

func (s *nodeSet) len() int { return len(s.nodes) }

// plan is the order in which a call tries the nodes: the usable ones in
// list order, then the suspect ones in list order (a call never gives up
// without trying every node). A read-only call takes the first suspect node
// whose retry time has come and tries it first, pushing its retry time one
// period on so that concurrent calls do not all probe it.
func (s *nodeSet) plan(now time.Time, readOnly bool) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	order := make([]int, 0, len(s.nodes))
	probe := -1
	if readOnly {
		for i := range s.nodes {
			if n := &s.nodes[i]; n.suspect && !now.Before(n.retryAt) {
				n.retryAt = now.Add(s.retry)
				probe = i
				order = append(order, i)
				break
			}
		}
	}
	for i, n := range s.nodes {
		if !n.suspect {
			order = append(order, i)
		}
	}
	for i, n := range s.nodes {
		if n.suspect && i != probe {
			order = append(order, i)
		}
	}
	return order
}

// failed marks node i suspect for reason; a node already suspect keeps its
// first time of failure. It reports whether the node was usable until now.
func (s *nodeSet) failed(i int, now time.Time, reason string) (lost bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := &s.nodes[i]
	if !n.suspect {
		n.suspect, n.since, lost = true, now, true
	}
	n.reason = reason
	n.retryAt = now.Add(s.retry)
	return lost
}

// succeeded marks node i usable.
func (s *nodeSet) succeeded(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := &s.nodes[i]
	n.suspect, n.since, n.reason, n.retryAt = false, time.Time{}, "", time.Time{}
}

// anyUsable reports whether a node is believed usable.
func (s *nodeSet) anyUsable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.nodes {
		if !n.suspect {
			return true
		}
	}
	return false
}

// NodeState is what the client believes of one EJBCA node.
type NodeState struct {
	// URL as written in the issuer.
	URL string
	// Usable is false once a call to the node failed, until one succeeds.
	Usable bool
	// Since the node failed, and why (the last failure).
	Since  time.Time
	Reason string
}

func (s *nodeSet) states() []NodeState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]NodeState, len(s.nodes))
	for i, n := range s.nodes {
		out[i] = NodeState{URL: n.raw, Usable: !n.suspect, Since: n.since, Reason: n.reason}
	}
	return out
}
