package ejbcasim

import (
	"net/http"
	"slices"
	"time"
)

// Counters is a snapshot of what the simulator has seen, for tests and
// benchmarks to assert on (how many calls, retries, handshakes, tokens).
type Counters struct {
	// Calls maps an endpoint name ("status", "ca", "ca-download",
	// "pkcs10enroll", "endentity", "approval-status", "approval-process",
	// "finalize", "certificaterequest", "revoke", "revocationstatus",
	// "search", "search-v2", "token") to HTTP status to count; status 0
	// counts calls that got no answer (reset, or cancelled by the client).
	Calls map[string]map[int]int `json:"calls"`
	// TLSHandshakes counts server-side TLS handshakes, resumed ones included.
	TLSHandshakes int `json:"tls_handshakes"`
	// TokensIssued counts successful OAuth2 token responses.
	TokensIssued int `json:"tokens_issued"`
	// Enrollments counts certificates issued by pkcs10enroll and
	// certificaterequest, including those whose answer was then lost.
	Enrollments int `json:"enrollments"`
}

// Get is the number of calls to endpoint, whatever their status.
func (c Counters) Get(endpoint string) int {
	n := 0
	for _, v := range c.Calls[endpoint] {
		n += v
	}
	return n
}

func newCounters() Counters {
	return Counters{Calls: map[string]map[int]int{}}
}

// Counters returns a snapshot of the counters.
func (s *Sim) Counters() Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Counters{
		Calls:         make(map[string]map[int]int, len(s.counters.Calls)),
		TLSHandshakes: s.counters.TLSHandshakes,
		TokensIssued:  s.counters.TokensIssued,
		Enrollments:   s.counters.Enrollments,
	}
	for ep, byStatus := range s.counters.Calls {
		m := make(map[int]int, len(byStatus))
		for st, n := range byStatus {
			m[st] = n
		}
		out.Calls[ep] = m
	}
	return out
}

// ResetCounters sets every counter back to zero.
func (s *Sim) ResetCounters() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counters = newCounters()
	s.revokeCalls = nil
	s.arrivals = nil
}

func (s *Sim) countCall(endpoint string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.counters.Calls[endpoint]
	if m == nil {
		m = map[int]int{}
		s.counters.Calls[endpoint] = m
	}
	m[status]++
}

func (s *Sim) countHandshake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counters.TLSHandshakes++
}

// handleCounters serves GET /sim/counters: the counters as JSON, without
// authentication, and not itself counted.
func (s *Sim) handleCounters(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Counters())
}

// maxArrivals bounds the arrival times kept per endpoint.
const maxArrivals = 20000

// noteArrival records when a call of endpoint arrived.
func (s *Sim) noteArrival(endpoint string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.arrivals == nil {
		s.arrivals = map[string][]time.Time{}
	}
	if len(s.arrivals[endpoint]) < maxArrivals {
		s.arrivals[endpoint] = append(s.arrivals[endpoint], time.Now())
	}
}

// Arrivals lists when the calls of endpoint arrived (wall clock, in
// order, at most 20000), for tests of how clients pace their calls.
func (s *Sim) Arrivals(endpoint string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.arrivals[endpoint])
}
