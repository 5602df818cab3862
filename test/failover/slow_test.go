package failover

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// TestSlowEJBCA: EJBCA takes longer than the managers' 1 s EJBCA timeout
// to carry out each enrolment (1.2-3 s, every fourth 8.5-10 s: still
// within the 12 s settle time) and finishes it after the manager gave up (issue
// 17's first double). The recovery search that follows runs while EJBCA is
// still issuing, and finds nothing: the test asserts that it did. Requests
// come in overlapping waves, with a stable leader until that race has
// happened (TestLeaderFailover's rounds wait for it), then while the
// failovers change leaders. Each request must end Issued with exactly one
// certificate.
func TestSlowEJBCA(t *testing.T) {
	t.Parallel()
	const waves, perWave = 4, 6
	// One fault per enrolment, each with its own processing time (more
	// than enough for the retries a failover adds).
	for i := 0; i < 4*waves*perWave; i++ {
		d := 1200*time.Millisecond + time.Duration(rand.Int64N(int64(1800*time.Millisecond)))
		if i%4 == 3 {
			// A very slow one, still done within the settle time (12 s
			// after the attempt the signer notes in memory just before the
			// call): the first recovery search (1 s + the retry backoff,
			// which grows with the request's age, or when a new leader takes
			// over) runs before EJBCA is done.
			d = 8500*time.Millisecond + time.Duration(rand.Int64N(int64(1500*time.Millisecond)))
		}
		suite.simB.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, Processing: d})
	}
	// A stable leader until the race has happened: under failovers, a
	// leader rarely lives to run its own search after a call timed out.
	turn.Lock()
	locked := true
	unlock := func() {
		if locked {
			locked = false
			turn.Unlock()
		}
	}
	defer unlock()
	start := time.Now()
	var all []*cmapi.CertificateRequest
	var wg sync.WaitGroup
	errs := make([]error, waves)
	for w := 0; w < waves; w++ {
		crs := newRequests(t, issuerB, fmt.Sprintf("slow%d", w), perWave, nil)
		all = append(all, crs...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = waitIssued(crs, 2*settleTime+90*time.Second)
		}()
		if w < waves-1 {
			time.Sleep(1500 * time.Millisecond) // the next wave arrives while this one is in EJBCA's hands
		}
	}
	if err := testkit.Poll(60*time.Second, func() string {
		if searchesWhileIssuing(suite.ejB.snapshot(), all) == 0 {
			return "no recovery search has run while EJBCA was still issuing"
		}
		return ""
	}); err != nil {
		t.Error(err)
	}
	unlock()
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Errorf("wave %d: %v", w, err)
		}
	}
	if t.Failed() {
		return
	}
	// Count once the managers frozen now (one could hold a call it decided
	// on before its freeze) are gone, and EJBCA has finished every call it
	// got. The requests are final: no manager decides to call for them any
	// more.
	frozen := suite.pool.frozenNow()
	if err := testkit.Poll(90*time.Second, func() string {
		for _, p := range frozen {
			if p.alive() {
				return p.String() + " was frozen when the requests were issued and still runs"
			}
		}
		return suite.ejB.inFlight(all)
	}); err != nil {
		t.Fatal(err)
	}
	if problems := checkOnce(suite.simB, all); len(problems) > 0 {
		for _, p := range problems {
			t.Error(p)
		}
		var doubled []*cmapi.CertificateRequest
		for _, cr := range all {
			for _, p := range problems {
				if strings.HasPrefix(p, cr.Name+":") {
					doubled = append(doubled, cr)
				}
			}
		}
		t.Errorf("timeline (from the test's start):%s", requestTimeline(doubled, suite.ejB, suite.simB, start))
	}

	// How often the race of issue 17 was run: a search for a request while
	// EJBCA was still carrying out its enrolment.
	calls := suite.ejB.snapshot()
	users := map[string]bool{}
	for _, cr := range all {
		users[username(cr)] = true
	}
	enrolled, timedOut := 0, 0
	for _, c := range calls {
		if !users[c.username] {
			continue
		}
		if os.Getenv("FAILOVER_DEBUG") != "" {
			t.Logf("%s %s pid %d received %s delivered %s simDone %s (%d) answered %s (%d)", c.endpoint, c.username, c.pid,
				c.received.Format("05.000"), c.delivered.Format("05.000"), c.simDone.Format("05.000"), c.status, c.answered.Format("05.000"), c.answeredStatus)
		}
		if c.endpoint == "pkcs10enroll" {
			enrolled++
			if c.answered.IsZero() || c.answeredStatus == 0 {
				timedOut++
			}
		}
	}
	searchesDuring := searchesWhileIssuing(calls, all)
	t.Logf("%d requests in %d waves issued once each in %s: %d enrolment calls (%d given up by the manager before EJBCA answered), %d searches ran while EJBCA was still issuing",
		len(all), waves, time.Since(start).Round(time.Millisecond), enrolled, timedOut, searchesDuring)

}

// searchesWhileIssuing counts the recovery searches for the requests that
// ran while EJBCA was still carrying out an enrolment for the same request.
func searchesWhileIssuing(calls []ejbcaCall, crs []*cmapi.CertificateRequest) int {
	users := map[string]bool{}
	for _, cr := range crs {
		users[username(cr)] = true
	}
	n := 0
	for _, c := range calls {
		if !users[c.username] || (c.endpoint != "search" && c.endpoint != "search-v2") {
			continue
		}
		for _, e := range calls {
			if e.endpoint == "pkcs10enroll" && e.username == c.username && !e.delivered.IsZero() &&
				e.delivered.Before(c.received) && (e.simDone.IsZero() || e.simDone.After(c.received)) {
				n++
				break
			}
		}
	}
	return n
}
