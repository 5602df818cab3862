package failover

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

// Where in the leader's work a round stops it.
const (
	// midCall: when the simulator has received every enrolment of the
	// round's batch (EJBCA is working on them: fastProcessing).
	midCall = "mid-call"
	// decision: when the API server has written the enrolment marker of one
	// of the batch's requests, before the manager reads that answer; its
	// EJBCA call would come next: between its decision and its call.
	decision = "decision"
	// decisionLong: as decision, but the leader stays frozen until the new
	// leader has enrolled that request itself (after the settle time).
	decisionLong = "decision-long"
	// renewal: when the API server has carried out a lease renewal, while
	// batch enrolments are in flight; the manager never gets the answer
	// (its client gives up once resumed, as when its timeout ran out while
	// it was frozen).
	renewal = "renewal"
	// inCall: when the leader, having written a batch request's marker
	// and checked its lease, opens the connection for its EJBCA call (TLS
	// handshake begun, nothing sent); it stays frozen until the new leader
	// has enrolled every request of the batch after the settle time.
	inCall = "in-call"
	// atRandom: at a random moment in the 1.5 s after the batch was created.
	atRandom = "random"
)

// turn is held by whoever changes or needs a stable leader: each failover
// round (the freeze and kill subtests take turns, so that their last rounds
// settle together), and TestSlowEJBCA until its race has happened.
var turn sync.Mutex

// round is one leader failover with a batch of requests in flight.
type round struct {
	n    int
	name string
	mode string
	kill bool
	crs  []*cmapi.CertificateRequest

	old       *proc
	stopAt    time.Time // SIGKILL sent, or every thread stopped by SIGSTOP
	stopLag   time.Duration
	stoppedAt string // what the leader was doing, when known
	newLeader int
	takeover  time.Duration // from the stop to the new leader's lease write
	// sinceRenewal is from the old leader's last renewal to the new
	// leader's lease write.
	sinceRenewal time.Duration
	resumeAt     time.Time // SIGCONT sent
	logAt        int64     // the old leader's log size at SIGCONT
	resumed      chan struct{}
	fallback     string
}

const batch = 3

// TestLeaderFailover freezes (SIGSTOP, then SIGCONT once a standby leads)
// or kills (SIGKILL) the leading manager with a batch of 3 requests in
// flight, 20 rounds each, every round stopping the leader at a chosen point:
// while EJBCA works on its enrolments; after the API server wrote a
// request's enrolment marker, before the manager read the answer (its call
// would come next), resumed at once or only after the new leader enrolled
// the request itself past the settle time; while the TLS handshake of its
// enrolment call is under way, past the settle time; during a lease renewal
// whose answer it never gets; or at a random moment. Rounds overlap (a
// round's requests may still settle while the next round runs); the two
// subtests take turns, one failover at a time. For every round:
//   - every request ends Issued with exactly one certificate from EJBCA,
//     the one it holds, and finalize is never called;
//   - the new leader took over no sooner than a held lease allows;
//   - the resumed leader makes no EJBCA issuing call it decided on after
//     it was resumed (judged from its marker writes), never writes the
//     lease again, and exits.
func TestLeaderFailover(t *testing.T) {
	t.Parallel()
	t.Run("freeze", func(t *testing.T) {
		t.Parallel()
		runRounds(t, &turn, "fz", false, []string{
			midCall, inCall, renewal, atRandom, decisionLong, midCall, inCall, renewal, decision, atRandom,
			inCall, midCall, renewal, decisionLong, inCall, decision, atRandom, renewal, decision, midCall,
		})
	})
	t.Run("kill", func(t *testing.T) {
		t.Parallel()
		runRounds(t, &turn, "kl", true, []string{
			midCall, decision, atRandom, midCall, decision, atRandom, midCall, decision, atRandom, midCall,
			decision, atRandom, midCall, decision, atRandom, midCall, decision, atRandom, decision, midCall,
		})
	})
}

func runRounds(t *testing.T, turn *sync.Mutex, prefix string, kill bool, modes []string) {
	start := time.Now()
	n := len(modes)
	var wg sync.WaitGroup
	results := make([]string, n)
	problems := make([][]string, n)
	for i := 0; i < n; i++ {
		r := &round{n: i, name: fmt.Sprintf("%s%02d", prefix, i), mode: modes[i], kill: kill, resumed: make(chan struct{})}
		turn.Lock()
		err := runRound(t, r)
		turn.Unlock()
		if err != nil {
			wg.Wait()
			t.Fatalf("round %s (%s): %v", r.name, r.mode, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[r.n], problems[r.n] = verifyRound(r)
		}()
	}
	wg.Wait()
	failed := 0
	for i := range results {
		t.Logf("%s", results[i])
		for _, p := range problems[i] {
			t.Errorf("round %s%02d: %s", prefix, i, p)
		}
		if len(problems[i]) > 0 {
			failed++
		}
	}
	t.Logf("%d rounds, %d requests, %d rounds with problems, in %s", n, n*batch, failed, time.Since(start).Round(time.Millisecond))
}

// waitLeader waits for a leader that is renewing its lease, with a standby
// ready to take over.
func waitLeader() (*proc, error) {
	var leader *proc
	err := eventually(60*time.Second, func() string {
		pid, at := suite.api.leader()
		pr := suite.pool.byPID(pid)
		switch {
		case pr == nil:
			return "no leader"
		case !pr.alive() || pr.isFrozen():
			return pr.String() + " holds the lease but is not running"
		case time.Since(at) > 2*retryPeriod+500*time.Millisecond:
			return fmt.Sprintf("%s last renewed %s ago", pr, time.Since(at).Round(time.Millisecond))
		case suite.pool.standbys(pid) == 0:
			return "no standby is running"
		}
		leader = pr
		return ""
	})
	return leader, err
}

func runRound(t *testing.T, r *round) error {
	old, err := waitLeader()
	if err != nil {
		return err
	}
	r.old = old
	sig := syscall.SIGSTOP
	if r.kill {
		sig = syscall.SIGKILL
	}
	stop := func() {
		sent := time.Now()
		_ = old.signal(sig)
		if !r.kill {
			// stopAt is when every thread has stopped: an answer written
			// after it is read only after SIGCONT.
			if err := old.waitStopped(5 * time.Second); err != nil {
				r.fallback = err.Error()
			}
		}
		r.stopAt = time.Now()
		r.stopLag = r.stopAt.Sub(sent)
	}
	users := map[string]bool{}
	for i := 0; i < batch; i++ {
		users[fmt.Sprintf("%s/%s-%d", namespace, r.name, i)] = true
	}
	var hello *helloHook
	if r.mode == inCall {
		// Armed before the batch exists, so that its calls need new
		// connections; it fires only after a marker of the batch.
		hello = &helloHook{pid: old.pid, fire: stop, fired: make(chan struct{}, 1), ready: func() bool {
			for _, w := range suite.api.snapshot() {
				if w.pid == old.pid && w.kind == "marker" && users[w.request] && w.status/100 == 2 {
					return true
				}
			}
			return false
		}}
		suite.ejA.armHello(hello)
	}
	r.crs = newRequests(t, issuerA, r.name, batch)
	held := "" // the request whose marker answer the old leader waits for
	// enrolments counts the batch's enrolments the simulator has received
	// from the old leader.
	enrolments := func() int {
		n := 0
		for _, c := range suite.ejA.snapshot() {
			if c.endpoint == "pkcs10enroll" && users[c.username] && c.pid == old.pid && !c.delivered.IsZero() {
				n++
			}
		}
		return n
	}

	switch r.mode {
	case midCall:
		err := eventually(20*time.Second, func() string {
			if got := enrolments(); got < batch {
				return fmt.Sprintf("%d of %d enrolments of the batch received", got, batch)
			}
			return ""
		})
		if err != nil {
			r.fallback = err.Error()
		}
		stop()
		r.stoppedAt = fmt.Sprintf("%d enrolments in EJBCA's hands", enrolments())
	case decision, decisionLong:
		h := &apiHook{pid: old.pid, fire: stop, fired: make(chan *apiWrite, 1),
			match: func(w *apiWrite) bool { return w.kind == "marker" && users[w.request] }}
		suite.api.arm(h)
		select {
		case w := <-h.fired:
			r.stoppedAt = "after the marker of " + w.request + " was written"
			held = w.request
		case <-time.After(20 * time.Second):
			if suite.api.disarm(h) {
				r.fallback = "no marker written within 20s"
				stop()
			} else {
				<-h.fired
			}
		}
	case renewal:
		if err := eventually(20*time.Second, func() string {
			if enrolments() == 0 {
				return "no enrolment of the batch received"
			}
			return ""
		}); err != nil {
			r.fallback = err.Error()
		}
		h := &apiHook{pid: old.pid, fire: stop, fired: make(chan *apiWrite, 1), withhold: true,
			match: func(w *apiWrite) bool { return w.kind == "lease" && w.holder != "" }}
		suite.api.arm(h)
		select {
		case <-h.fired:
			r.stoppedAt = fmt.Sprintf("after a lease renewal was written, %d enrolments in EJBCA's hands", enrolments())
		case <-time.After(10 * time.Second):
			if suite.api.disarm(h) {
				r.fallback = "no renewal within 10s"
				stop()
			} else {
				<-h.fired
			}
		}
	case inCall:
		select {
		case <-hello.fired:
			r.stoppedAt = fmt.Sprintf("opening a connection to EJBCA after writing a marker, %d enrolments in EJBCA's hands", enrolments())
		case <-time.After(20 * time.Second):
			if suite.ejA.disarmHello(hello) {
				r.fallback = "no connection opened after a marker within 20s"
				stop()
			} else {
				<-hello.fired
			}
		}
	case atRandom:
		d := time.Duration(rand.Int64N(int64(1500 * time.Millisecond)))
		time.Sleep(d) // a random moment, not a wait for something
		stop()
		r.stoppedAt = fmt.Sprintf("%s after the batch was created, %d enrolments in EJBCA's hands", d.Round(time.Millisecond), enrolments())
	}

	// A standby takes over once the lease has expired.
	err = eventually(30*time.Second, func() string {
		pid, at := suite.api.leader()
		if pid != 0 && pid != old.pid && at.After(r.stopAt) {
			r.newLeader, r.takeover = pid, at.Sub(r.stopAt)
			r.sinceRenewal = at.Sub(suite.api.lastRenewal(old.pid, r.stopAt))
			return ""
		}
		return "no standby took over"
	})
	if err != nil {
		if r.kill {
			return err
		}
		_ = old.signal(syscall.SIGCONT)
		return err
	}
	resume := func() error {
		r.logAt = old.logSize()
		r.resumeAt = time.Now()
		err := old.signal(syscall.SIGCONT)
		close(r.resumed)
		return err
	}
	switch {
	case r.kill:
		close(r.resumed)
	case r.mode == inCall && r.fallback == "":
		// Stay frozen until the new leader has waited out the settle time
		// and enrolled every request of the batch itself.
		go func() {
			err := eventually(settleTime+60*time.Second, func() string {
				if time.Since(r.stopAt) < settleTime {
					return "within the settle time"
				}
				got := map[string]bool{}
				for _, c := range suite.simA.Issued() {
					got[c.Username] = true
				}
				for u := range users {
					if !got[u] {
						return "the new leader has not enrolled " + u
					}
				}
				return ""
			})
			if err != nil {
				r.fallback = err.Error()
			}
			_ = resume()
		}()
	case r.mode == decisionLong && held != "":
		// Stay frozen, while the next rounds run, until the new leader has
		// given up waiting for the old leader's call (the settle time) and
		// enrolled the request itself; then resume the old leader, which
		// goes on to the call it had decided to make.
		go func() {
			err := eventually(settleTime+60*time.Second, func() string {
				for _, c := range suite.simA.Issued() {
					if c.Username == held {
						return ""
					}
				}
				return "the new leader has not enrolled " + held
			})
			if err != nil {
				r.fallback = err.Error()
			}
			_ = resume()
		}()
	default:
		return resume()
	}
	return nil
}

// verifyRound waits for the round's requests and checks them and what the
// old leader did after it was resumed.
func verifyRound(r *round) (summary string, problems []string) {
	<-r.resumed
	how := "froze"
	if r.kill {
		how = "killed"
	}
	summary = fmt.Sprintf("round %s (%s %s): %s %s", r.name, how, r.mode, how, r.old)
	if r.stoppedAt != "" {
		summary += " " + r.stoppedAt
	}
	if r.fallback != "" {
		summary += " [fallback: " + r.fallback + "]"
	}
	if !r.kill {
		summary += fmt.Sprintf(" (stopped %s after SIGSTOP)", r.stopLag.Round(10*time.Microsecond))
	}
	summary += fmt.Sprintf("; pid %d took over after %s", r.newLeader, r.takeover.Round(time.Millisecond))

	// A standby takes over a lease duration after it last saw the lease
	// record change. client-go compares records with their renew time in
	// whole seconds, so a renewal in the same second as the one before is
	// not seen as a change: the takeover can come up to a second less than
	// a lease after the last renewal, never sooner. Sooner means the lease
	// was not held to its term.
	if least := leaseDuration - time.Second - 100*time.Millisecond; r.sinceRenewal < least {
		problems = append(problems, fmt.Sprintf("pid %d acquired the lease %s after the leader's last renewal, less than the %s a held lease allows: two processes led at once",
			r.newLeader, r.sinceRenewal.Round(time.Millisecond), least))
	}

	err := waitIssued(r.crs, 2*settleTime+60*time.Second)
	issued := time.Now()
	if err != nil {
		problems = append(problems, err.Error())
	}
	// The old leader is gone: killed, or it exits once it noticed.
	select {
	case <-r.old.done:
	case <-time.After(30 * time.Second):
		problems = append(problems, fmt.Sprintf("%s still runs 30s after it was resumed", r.old))
		return summary, problems
	}
	exited, exitErr := r.old.exit()
	// Count once EJBCA has finished every call it got for these requests
	// (it carries a call out even when its client has gone).
	if err == nil {
		if err := eventually(30*time.Second, func() string { return suite.ejA.inFlight(r.crs) }); err != nil {
			problems = append(problems, err.Error())
		}
		problems = append(problems, checkOnce(suite.simA, r.crs)...)
	}
	summary += fmt.Sprintf("; %d requests issued once each (%s after the stop)", len(r.crs),
		issued.Sub(r.stopAt).Round(100*time.Millisecond))
	defer func() {
		if len(problems) > 0 {
			problems = append(problems, timeline(r))
		}
	}()
	users := map[string]bool{}
	for _, cr := range r.crs {
		users[username(cr)] = true
	}
	for _, c := range suite.ejA.snapshot() {
		if c.pid == 0 && c.issuing() && users[c.username] {
			problems = append(problems, fmt.Sprintf("%s for %s %s after the stop came from a process the proxy could not tell", c.endpoint, c.username, relTo(r.stopAt, c.received)))
		}
	}
	if r.kill {
		return summary, problems
	}
	summary += fmt.Sprintf("; resumed, it exited %s later (%v)", exited.Sub(r.resumeAt).Round(time.Millisecond), exitErr)

	// What the old leader sent after it was resumed.
	writes := suite.api.snapshot()
	var late, lateWrites []string
	for _, px := range []*ejbcaProxy{suite.ejA, suite.ejB} {
		for _, c := range px.snapshot() {
			if c.pid != r.old.pid || !c.received.After(r.resumeAt) {
				continue
			}
			if !c.issuing() {
				late = append(late, c.endpoint)
				continue
			}
			// Allowed only if it had decided before it was frozen: the
			// marker it wrote for this request was answered before the
			// stop, and it wrote none after the resume.
			before, after := false, false
			for _, w := range writes {
				if w.pid != r.old.pid || w.kind != "marker" || w.request != c.username {
					continue
				}
				if !w.answered.IsZero() && w.answered.Before(r.stopAt) {
					before = true
				}
				if w.received.After(r.resumeAt) {
					after = true
				}
			}
			msg := fmt.Sprintf("%s (%s, %s after SIGCONT)", c.endpoint, c.username, c.received.Sub(r.resumeAt).Round(time.Millisecond))
			if !before || after {
				problems = append(problems, fmt.Sprintf("deposed leader %s called EJBCA after it was resumed, on a decision it made after the resume: %s", r.old, msg))
			}
			late = append(late, "issuing "+msg)
		}
	}
	for _, w := range writes {
		if w.pid != r.old.pid || !w.received.After(r.resumeAt) {
			continue
		}
		lateWrites = append(lateWrites, fmt.Sprintf("%s %d", w.kind, w.status))
		if w.kind == "lease" && w.status/100 == 2 {
			problems = append(problems, fmt.Sprintf("deposed leader %s wrote the lease (holder %q) %s after it was resumed, though pid %d leads",
				r.old, w.holder, w.received.Sub(r.resumeAt).Round(time.Millisecond), r.newLeader))
		}
	}
	summary += fmt.Sprintf("; after SIGCONT: EJBCA calls [%s], API writes [%s]", strings.Join(late, ", "), countBy(lateWrites))
	var logged []string
	for _, l := range r.old.logFrom(r.logAt) {
		logged = append(logged, logMessage(l))
	}
	summary += fmt.Sprintf("; its log after SIGCONT: %s", countBy(logged))
	return summary, problems
}

// logMessage is the message of a JSON or klog log line (or the line,
// shortened).
func logMessage(line string) string {
	if i := strings.Index(line, `] "`); i >= 0 && strings.ContainsAny(line[:1], "IWE") {
		rest := line[i+3:]
		if j := strings.Index(rest, `"`); j >= 0 {
			return rest[:j]
		}
	}
	if i := strings.Index(line, `"msg":"`); i >= 0 {
		rest := line[i+7:]
		if j := strings.Index(rest, `"`); j >= 0 {
			return rest[:j]
		}
	}
	if len(line) > 80 {
		line = line[:80]
	}
	return line
}

// timeline lists, relative to the stop, every EJBCA call and API write for
// the round's requests, with the process that made it: the evidence for a
// failed round.
func timeline(r *round) string {
	return fmt.Sprintf("timeline of round %s (times from the stop of %s; resumed at %s):%s", r.name, r.old,
		relTo(r.stopAt, r.resumeAt), requestTimeline(r.crs, suite.ejA, suite.simA, r.stopAt))
}

func relTo(ref, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Sub(ref).Round(time.Millisecond).String()
}

// requestTimeline lists, relative to ref, every EJBCA call (through px) and
// API write for the requests, the managers' starts, signals and exits
// around them, and the certificates EJBCA issued to them.
func requestTimeline(crs []*cmapi.CertificateRequest, px *ejbcaProxy, sim *ejbcasim.Sim, ref time.Time) string {
	type event struct {
		at   time.Time
		line string
	}
	users := map[string]bool{}
	for _, cr := range crs {
		users[username(cr)] = true
	}
	rel := func(t time.Time) string { return relTo(ref, t) }
	var events []event
	first, last := time.Time{}, time.Time{}
	note := func(t time.Time) {
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
	}
	for _, c := range px.snapshot() {
		if users[c.username] {
			note(c.received)
			events = append(events, event{c.received, fmt.Sprintf("%s %s by pid %d: received %s, delivered %s, EJBCA done %s (%d), answered %s (%d)",
				c.endpoint, c.username, c.pid, rel(c.received), rel(c.delivered), rel(c.simDone), c.status, rel(c.answered), c.answeredStatus)})
		}
	}
	for _, w := range suite.api.snapshot() {
		if users[w.request] {
			note(w.received)
			events = append(events, event{w.received, fmt.Sprintf("%s write %s by pid %d: received %s, answered %s (%d, API server %d)",
				w.kind, w.request, w.pid, rel(w.received), rel(w.answered), w.status, w.upstream)})
		}
	}
	for _, p := range suite.pool.all() {
		in := func(t time.Time) bool {
			return !t.IsZero() && !t.Before(first.Add(-5*time.Second)) && !t.After(last.Add(5*time.Second))
		}
		if in(p.started) {
			events = append(events, event{p.started, fmt.Sprintf("pid %d started at %s", p.pid, rel(p.started))})
		}
		for _, e := range p.history() {
			if in(e.at) {
				events = append(events, event{e.at, fmt.Sprintf("pid %d got %s at %s", p.pid, e.sig, rel(e.at))})
			}
		}
		if exited, _ := p.exit(); in(exited) {
			events = append(events, event{exited, fmt.Sprintf("pid %d exited at %s", p.pid, rel(exited))})
		}
	}
	for _, w := range suite.api.snapshot() {
		if w.kind == "lease" && w.upstream/100 == 2 && !w.received.Before(first.Add(-5*time.Second)) && !w.received.After(last) {
			events = append(events, event{w.received, fmt.Sprintf("lease written by pid %d (holder %q) at %s", w.pid, w.holder, rel(w.received))})
		}
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].at.Before(events[j].at) })
	var b strings.Builder
	for _, e := range events {
		b.WriteString("\n\t" + e.line)
	}
	for _, c := range sim.Issued() {
		if users[c.Username] {
			fmt.Fprintf(&b, "\n\tEJBCA issued %X to %s", c.Serial, c.Username)
		}
	}
	return b.String()
}
