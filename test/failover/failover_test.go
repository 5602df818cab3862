package failover

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/manager"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// Where in the leader's work a round stops it.
const (
	// midCall: when the simulator has received every enrolment of the
	// round's batch (EJBCA is working on them: fastProcessing).
	midCall = "mid-call"
	// decision: between the leader's decision to enrol a request of the
	// batch and its EJBCA call. The signer keeps no record of the decision
	// outside its memory, so the window is the in-memory note and the lease
	// check before the call, then the connection for the call: the leader
	// stops when it opens one (its TLS ClientHello has arrived; the
	// handshake, which asks the lease again, completes only once it runs
	// again). Frozen, it is resumed as soon as a standby took over.
	decision = "decision"
	// decisionLong: as decision, but the leader stays frozen until EJBCA
	// has issued every request of the batch (the new leader enrolled those
	// the old one had not sent, after the settle time); then it goes on with
	// the handshake of the call it had decided to make.
	decisionLong = "decision-long"
	// renewal: when the API server has carried out a lease renewal, while
	// batch enrolments are in flight; the manager never gets the answer
	// (its client gives up once resumed, as when its timeout ran out while
	// it was frozen).
	renewal = "renewal"
	// atRandom: at a random moment in the second after the batch was
	// created (its own enrolments are answered in about 0.6 s: with no
	// write before the call, a longer span mostly stops a leader that is
	// done).
	atRandom = "random"
)

// leaderTenure is how long a round's leader must have led before the batch
// is created, so that it counts the batch as its own (created after the
// inventory of existing requests it takes when it begins signing) and
// enrols it at once. A batch that the inventory saw would count as possibly
// sent by the predecessor: searched for, and enrolled only after the settle
// time.
const leaderTenure = 2500 * time.Millisecond

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
	// issued is closed when every request of the batch was seen Issued (at
	// issuedAt), or issuedErr says why not.
	issued    chan struct{}
	issuedAt  time.Time
	issuedErr error
}

const batch = 3

// TestLeaderFailover freezes (SIGSTOP, then SIGCONT once a standby leads)
// or kills (SIGKILL) the leading manager with a batch of 3 requests in
// flight, roundsPerMode() rounds each (5 in make test, 20 in make soak),
// every round stopping the leader at a chosen point:
// while EJBCA works on its enrolments; when it opens the connection for an
// enrolment of the batch, between its decision and its call (its only
// record of the decision is in memory), resumed at once or only after the
// new leader enrolled the batch itself past the settle time; during a lease
// renewal whose answer it never gets; or at a random moment. The first five
// rounds of each subtest run every mode of that subtest at least once.
// Rounds overlap
// (a round's requests may still settle while the next round runs); the two
// subtests take turns, one failover at a time. For every round:
//   - every request ends Issued with exactly one certificate from EJBCA,
//     the one it holds, and finalize is never called;
//   - the new leader took over no sooner than a held lease allows;
//   - the resumed leader sends no EJBCA call that issues or adds after it
//     was resumed (judged from the EJBCA proxies' records), never writes
//     the lease again, and exits;
//   - once resumed (the new leader wrote the lease before), the old leader
//     sends no other write to the API server either: no event, no request
//     status, no change to a request, issuer or Secret (judged from the API
//     proxy's records, read after it exited); only client-go's own event on
//     the Lease that it stopped leading.
func TestLeaderFailover(t *testing.T) {
	t.Parallel()
	n := roundsPerMode(t)
	t.Run("freeze", func(t *testing.T) {
		t.Parallel()
		runRounds(t, &turn, "fz", false, freezeModes[:n])
	})
	t.Run("kill", func(t *testing.T) {
		t.Parallel()
		runRounds(t, &turn, "kl", true, killModes[:n])
	})
}

// The stopping points of the freeze and kill rounds, in the order they run.
var (
	freezeModes = []string{
		midCall, decisionLong, renewal, atRandom, decision, decisionLong, midCall, decisionLong, renewal, atRandom,
		decisionLong, midCall, renewal, decisionLong, decisionLong, decision, atRandom, renewal, decision, midCall,
	}
	killModes = []string{
		midCall, decision, atRandom, midCall, decision, atRandom, midCall, decision, atRandom, midCall,
		decision, atRandom, midCall, decision, atRandom, midCall, decision, atRandom, decision, midCall,
	}
)

// roundsEnv sets the rounds per subtest: make test runs defaultRounds, make
// soak all of them.
const (
	roundsEnv     = "EJBCA_ISSUER_FAILOVER_ROUNDS"
	defaultRounds = 5
)

func roundsPerMode(t *testing.T) int {
	v := os.Getenv(roundsEnv)
	if v == "" {
		return defaultRounds
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > len(freezeModes) {
		t.Fatalf("%s=%q: want a number of rounds from 1 to %d", roundsEnv, v, len(freezeModes))
	}
	return n
}

func runRounds(t *testing.T, turn *sync.Mutex, prefix string, kill bool, modes []string) {
	start := time.Now()
	n := len(modes)
	var wg sync.WaitGroup
	results := make([]string, n)
	problems := make([][]string, n)
	// A round that missed its moment stops the leader anyway (a fallback):
	// its requests are still checked, but the risk its mode stands for was
	// not run. More than half of a mode's rounds falling back fails the
	// test, so the modes cannot all quietly turn into random stops.
	planned, fellBack := map[string]int{}, map[string]int{}
	for i := 0; i < n; i++ {
		r := &round{n: i, name: fmt.Sprintf("%s%02d", prefix, i), mode: modes[i], kill: kill, resumed: make(chan struct{}), issued: make(chan struct{})}
		turn.Lock()
		err := runRound(t, r)
		turn.Unlock()
		if err != nil {
			wg.Wait()
			t.Fatalf("round %s (%s): %v", r.name, r.mode, err)
		}
		planned[r.mode]++
		if r.fallback != "" {
			fellBack[r.mode]++
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
	// A mode run once or twice (the short run) may fall back once; more
	// than half of all rounds falling back fails the short run too.
	total := 0
	for mode, k := range fellBack {
		total += k
		if 2*k > planned[mode] && (planned[mode] >= 3 || k > 1) {
			t.Errorf("%d of %d %s rounds missed their moment and fell back: that risk was not run", k, planned[mode], mode)
		}
	}
	if 2*total > n {
		t.Errorf("%d of %d rounds missed their moment and fell back", total, n)
	}
	t.Logf("%d rounds, %d requests, %d rounds with problems, %d fallbacks, in %s", n, n*batch, failed, total, time.Since(start).Round(time.Millisecond))
}

// waitLeader waits for a leader that has led for leaderTenure and is
// renewing its lease, with a standby ready to take over. With quiet, it
// also waits until that leader has no work left on EJBCA A (every request
// for issuerA is Issued; a new leader searches for the requests it
// inherited and waits out the settle time): the connections it opens to
// EJBCA A from then on are for the batch the round creates.
func waitLeader(quiet bool) (*proc, error) {
	var leader *proc
	timeout := 60 * time.Second
	if quiet {
		timeout = 2*settleTime + 90*time.Second
	}
	err := testkit.Poll(timeout, func() string {
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
		if led := time.Since(suite.api.leadingSince(pid)); led < leaderTenure {
			return fmt.Sprintf("%s has led for %s only", pr, led.Round(time.Millisecond))
		}
		if quiet {
			if msg := pendingFor(issuerA); msg != "" {
				return msg
			}
		}
		leader = pr
		return ""
	})
	return leader, err
}

// pendingFor names a request for the issuer that is not Issued yet, ""
// when there is none.
func pendingFor(issuer string) string {
	list := &cmapi.CertificateRequestList{}
	if err := suite.k8s.List(context.Background(), list, client.InNamespace(namespace)); err != nil {
		return err.Error()
	}
	for i := range list.Items {
		cr := &list.Items[i]
		if cr.Spec.IssuerRef.Name != issuer {
			continue
		}
		if c := readyOf(cr); c == nil || c.Reason != cmapi.CertificateRequestReasonIssued {
			return cr.Name + " is not issued yet"
		}
	}
	return ""
}

func runRound(t *testing.T, r *round) error {
	atHello := r.mode == decision || r.mode == decisionLong
	old, err := waitLeader(atHello)
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
	var created atomic.Bool
	if atHello {
		// Armed before the batch exists, so that its calls need new
		// connections; it fires on the old leader's first connection once
		// the batch exists (the leader has no other work on EJBCA A: see
		// waitLeader).
		hello = &helloHook{pid: old.pid, fire: stop, fired: make(chan struct{}, 1), ready: created.Load}
		suite.ejA.armHello(hello)
	}
	r.crs = newRequests(t, issuerA, r.name, batch, func() { created.Store(true) })
	// Watched from now on, so that the time they were all Issued is known
	// whenever it comes, also before the stop.
	go func() {
		r.issuedErr = waitIssued(r.crs, 2*settleTime+120*time.Second)
		r.issuedAt = time.Now()
		close(r.issued)
	}()
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
		err := testkit.Poll(20*time.Second, func() string {
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
		select {
		case <-hello.fired:
			got := enrolments()
			r.stoppedAt = fmt.Sprintf("opening a connection to EJBCA, %d of the batch's enrolments in EJBCA's hands", got)
			if got == batch {
				// Every enrolment had gone: the connection was for
				// something else, and no decision was held.
				r.fallback = "the connection was opened after every enrolment of the batch was sent"
			}
		case <-time.After(20 * time.Second):
			if suite.ejA.disarmHello(hello) {
				r.fallback = "no connection opened within 20s"
				stop()
			} else {
				<-hello.fired
			}
		}
	case renewal:
		if err := testkit.Poll(20*time.Second, func() string {
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
	case atRandom:
		d := time.Duration(rand.Int64N(int64(time.Second)))
		time.Sleep(d) // a random moment, not a wait for something
		stop()
		r.stoppedAt = fmt.Sprintf("%s after the batch was created, %d enrolments in EJBCA's hands", d.Round(time.Millisecond), enrolments())
	}

	// A standby takes over once the lease has expired.
	err = testkit.Poll(30*time.Second, func() string {
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
	case r.mode == decisionLong && r.fallback == "":
		// Stay frozen, while the next rounds run, until EJBCA has issued
		// every request of the batch: the new leader gave up waiting for
		// the old leader's calls (the settle time) and enrolled those it had
		// not sent. Then resume the old leader, which goes on with the
		// handshake of the call it had decided to make.
		go func() {
			err := testkit.Poll(2*settleTime+60*time.Second, func() string {
				if time.Since(r.stopAt) < settleTime {
					return "within the settle time"
				}
				got := map[string]bool{}
				for _, c := range suite.simA.Issued() {
					got[c.Username] = true
				}
				for u := range users {
					if !got[u] {
						return "EJBCA has not issued to " + u
					}
				}
				return ""
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
	<-r.issued
	err := r.issuedErr
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
	var notOnce []string
	if err == nil {
		if err := testkit.Poll(30*time.Second, func() string { return suite.ejA.inFlight(r.crs) }); err != nil {
			problems = append(problems, err.Error())
		}
		notOnce = checkOnce(suite.simA, r.crs)
		problems = append(problems, notOnce...)
	}
	when := fmt.Sprintf("%s after the stop", r.issuedAt.Sub(r.stopAt).Round(100*time.Millisecond))
	if r.issuedAt.Before(r.stopAt) {
		when = fmt.Sprintf("all Issued %s before the stop", r.stopAt.Sub(r.issuedAt).Round(100*time.Millisecond))
	}
	switch {
	case err != nil:
		summary += fmt.Sprintf("; not every request was issued (gave up %s)", when)
	case len(notOnce) > 0:
		summary += fmt.Sprintf("; %d requests issued, not once each (%s)", len(r.crs), when)
	default:
		summary += fmt.Sprintf("; %d requests issued once each (%s)", len(r.crs), when)
	}
	defer func() {
		if len(problems) > 0 {
			problems = append(problems, timeline(r))
		}
	}()
	users := map[string]bool{}
	for _, cr := range r.crs {
		users[username(cr)] = true
	}
	// How the batch went: the EJBCA calls for it (a successor searches for
	// what it inherited), those the successors enrolled and when, and the
	// managers' API writes for it.
	var calls, writes []string
	var firstTaken time.Duration
	taken := 0
	for _, c := range suite.ejA.snapshot() {
		if !users[c.username] {
			continue
		}
		if c.pid == 0 && c.issuing() {
			problems = append(problems, fmt.Sprintf("%s for %s %s after the stop came from a process the proxy could not tell", c.endpoint, c.username, relTo(r.stopAt, c.received)))
		}
		calls = append(calls, c.endpoint)
		if c.endpoint == "pkcs10enroll" && c.status/100 == 2 && c.pid != r.old.pid && c.received.After(r.stopAt) {
			if d := c.received.Sub(r.stopAt); taken == 0 || d < firstTaken {
				firstTaken = d
			}
			taken++
		}
	}
	for _, w := range suite.api.snapshot() {
		if users[w.request] && w.upstream/100 == 2 {
			writes = append(writes, w.kind)
		}
	}
	summary += fmt.Sprintf("; EJBCA calls for it [%s]", countBy(calls))
	if taken > 0 {
		summary += fmt.Sprintf(", %d enrolled by a successor (the first %s after the stop)", taken, firstTaken.Round(100*time.Millisecond))
	}
	summary += fmt.Sprintf("; API writes for it [%s]", countBy(writes))
	if r.kill {
		return summary, problems
	}
	summary += fmt.Sprintf("; resumed, it exited %s later (%v)", exited.Sub(r.resumeAt).Round(time.Millisecond), exitErr)

	// What the old leader sent after it was resumed: nothing that issues or
	// adds, whatever it had decided before it was frozen (the lease check
	// in the TLS handshake, or before the call, stops it).
	var late, lateWrites []string
	for _, px := range []*ejbcaProxy{suite.ejA, suite.ejB} {
		for _, c := range px.snapshot() {
			if c.pid != r.old.pid || !(c.received.After(r.resumeAt) || c.delivered.After(r.resumeAt)) {
				continue
			}
			if !c.issuing() {
				late = append(late, c.endpoint)
				continue
			}
			msg := fmt.Sprintf("%s (%s, received %s and delivered %s after SIGCONT)", c.endpoint, c.username,
				relTo(r.resumeAt, c.received), relTo(r.resumeAt, c.delivered))
			problems = append(problems, fmt.Sprintf("deposed leader %s sent EJBCA a call that issues or adds after it was resumed: %s", r.old, msg))
			late = append(late, "issuing "+msg)
		}
	}
	for _, w := range suite.api.snapshot() {
		if w.pid != r.old.pid || !w.received.After(r.resumeAt) {
			continue
		}
		lateWrites = append(lateWrites, fmt.Sprintf("%s %d", w.kind, w.status))
		if w.kind == "lease" && w.status/100 == 2 {
			problems = append(problems, fmt.Sprintf("deposed leader %s wrote the lease (holder %q) %s after it was resumed, though pid %d leads",
				r.old, w.holder, w.received.Sub(r.resumeAt).Round(time.Millisecond), r.newLeader))
		}
		if w.kind != "lease" && !stoppedLeading(w) {
			// Resumed, it has lost the lease (the new leader wrote it
			// before the resume): every event, status or object write from
			// here on tells a story the new leader may tell otherwise,
			// whether or not the API server took it.
			problems = append(problems, fmt.Sprintf("deposed leader %s sent a %s write (%s %s, about %q) %s after it was resumed, though pid %d leads",
				r.old, w.kind, w.method, w.path, w.request, w.received.Sub(r.resumeAt).Round(time.Millisecond), r.newLeader))
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

// stoppedLeading is client-go's leader election event on the Lease saying
// that this process stopped leading: true, and about the lease alone.
func stoppedLeading(w apiWrite) bool {
	return w.kind == "event" && w.request == clusterResourceNamespace+"/"+manager.LeaderElectionID && strings.Contains(w.body, "stopped leading")
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
