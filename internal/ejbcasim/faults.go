package ejbcasim

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Fault is a misbehaviour injected into an endpoint's next calls, for testing
// how clients classify and survive EJBCA's (and the network's) failures.
// Latency applies first; then at most one of ResetBeforeHandling or Status
// replaces handling; otherwise the call is handled and ResetAfterIssuing,
// Truncate or MismatchedKey change what the client gets.
type Fault struct {
	// Count is how many calls the fault applies to; 0 means every call until
	// ClearFaults.
	Count int
	// Latency is added before the call is handled (on top of the global one).
	// A client that gives up during it leaves nothing done.
	Latency time.Duration
	// Processing is how long EJBCA takes to carry out the call, like a slow
	// HSM or a database lock. Unlike Latency it goes on when the client gives
	// up, as a servlet finishes a request whose client has gone: the call is
	// carried out at the end (a certificate is issued and found by search
	// only from then on), and the answer is written if anyone still waits.
	Processing time.Duration
	// Status, when set, is answered instead of handling the call, with Body
	// (default: EJBCA's JSON error body) and ContentType (default: guessed
	// from Body).
	Status      int
	Body        string
	ContentType string
	// RetryAfter sets the Retry-After header of a Status answer.
	RetryAfter string
	// ResetBeforeHandling closes the connection without answering and without
	// handling the call.
	ResetBeforeHandling bool
	// ResetAfterIssuing handles the call fully (a certificate is issued and
	// recorded) and then closes the connection without answering.
	ResetAfterIssuing bool
	// Truncate handles the call, then sends the headers with the full
	// Content-Length but only half of the body, and closes the connection.
	Truncate bool
	// MismatchedKey makes an enrolment issue the certificate for a fresh key
	// instead of the CSR's.
	MismatchedKey bool
}

// faultEntry is an injected fault with the calls it has left.
type faultEntry struct {
	fault     Fault
	remaining int // meaningful when fault.Count > 0
}

// InjectFault queues f for the endpoint's next f.Count calls (every call when
// Count is 0). Faults injected for one endpoint apply one after another.
// Endpoint names are those of Counters.Calls.
func (s *Sim) InjectFault(endpoint string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[endpoint] = append(s.faults[endpoint], &faultEntry{fault: f, remaining: f.Count})
}

// ClearFaults removes every injected fault.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string][]*faultEntry{}
}

// takeFault consumes one application of the endpoint's current fault.
func (s *Sim) takeFault(endpoint string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	queue := s.faults[endpoint]
	if len(queue) == 0 {
		return Fault{}, false
	}
	e := queue[0]
	if e.fault.Count > 0 {
		e.remaining--
		if e.remaining <= 0 {
			if len(queue) == 1 {
				delete(s.faults, endpoint)
			} else {
				s.faults[endpoint] = queue[1:]
			}
		}
	}
	return e.fault, true
}

// writeFault answers an injected status instead of handling the call.
func writeFault(w http.ResponseWriter, f Fault) {
	body, contentType := f.Body, f.ContentType
	if body == "" {
		rec := newBufferedResponse()
		writeError(rec, f.Status, http.StatusText(f.Status))
		body = rec.body.String()
		if contentType == "" {
			contentType = "application/json"
		}
	}
	if contentType == "" {
		trimmed := strings.TrimSpace(body)
		switch {
		case strings.HasPrefix(trimmed, "{"), strings.HasPrefix(trimmed, "["):
			contentType = "application/json"
		case strings.HasPrefix(trimmed, "<"):
			contentType = "text/html;charset=UTF-8"
		default:
			contentType = "text/plain;charset=UTF-8"
		}
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(f.Status)
	_, _ = w.Write([]byte(body))
}

// abortConnection drops the client's connection without an answer.
func abortConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	resetConn(conn)
}

// writeTruncated sends resp's status and headers with the full
// Content-Length but only the first half of its body, then closes the
// connection, as a proxy or server dying mid-answer would.
func writeTruncated(w http.ResponseWriter, resp *bufferedResponse) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	defer conn.Close()
	body := resp.body.Bytes()
	status := resp.statusCode()
	resp.header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.header.Set("Connection", "close")
	out := rw.Writer
	fmt.Fprintf(out, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	_ = resp.header.Write(out)
	_, _ = out.WriteString("\r\n")
	_, _ = out.Write(body[:len(body)/2])
	_ = out.Flush()
}
