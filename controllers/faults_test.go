package controllers_test

import (
	"fmt"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// faultCells are the EJBCA faults of the fault matrix, by when they strike
// relative to EJBCA issuing. docs/reliability.md shows the matrix; the
// leader-change column is test/failover's.
var faultCells = []struct {
	name, when string
	fault      ejbcasim.Fault
}{
	{"EJBCA's JSON 503", "before", ejbcasim.Fault{Count: 1, Status: 503}},
	{"a proxy's 504 page", "before", ejbcasim.Fault{Count: 1, Status: 504, Body: "<html><body><h1>504 Gateway Time-out</h1></body></html>"}},
	{"reset before handling", "before", ejbcasim.Fault{Count: 1, ResetBeforeHandling: true}},
	{"slower than the client's timeout", "during", ejbcasim.Fault{Count: 1, Processing: 7 * time.Second}},
	{"reset after issuing", "after", ejbcasim.Fault{Count: 1, ResetAfterIssuing: true}},
	{"truncated 201", "after", ejbcasim.Fault{Count: 1, Truncate: true}},
	{"garbled 201", "after", ejbcasim.Fault{Count: 1, Status: 201, Body: `{"certificate":"<html>oops"}`}},
	{"empty 201", "after", ejbcasim.Fault{Count: 1, Status: 201, Body: `{}`}},
}

type faultCell struct {
	name string
	sim  *ejbcasim.Sim
	cr   *cmapi.CertificateRequest
}

// startFaultCells makes, for every fault, a simulator that will strike the
// first enrolment, a Ready issuer and an approved request.
func startFaultCells(t *testing.T, event string) []faultCell {
	t.Helper()
	var cells []faultCell
	for _, fc := range faultCells {
		sim := newSim(t, ejbcasim.Config{})
		ns, _ := readyIssuer(t, sim)
		sim.InjectFault("pkcs10enroll", fc.fault)
		cr, _ := requestFor(t, ns, "ejbca", "cell")
		cells = append(cells, faultCell{fmt.Sprintf("%s (%s issuing, %s)", fc.name, fc.when, event), sim, cr})
	}
	return cells
}

// checkFaultCells: every request ends Issued with exactly one certificate
// from EJBCA, and none is Failed on the way (Failed is final, so ending
// Issued proves it): a transient fault inside the retry window never fails
// a request.
func checkFaultCells(t *testing.T, cells []faultCell) {
	t.Helper()
	for _, c := range cells {
		// The settle time in this suite is 2x5s+10s: a cell that got no
		// answer may wait that long before it enrols again.
		waitRequest(t, c.cr, cmapi.CertificateRequestReasonIssued, "", 90*time.Second)
		if n := enrolments(c.sim, c.cr.Namespace+"/cell"); n != 1 {
			t.Errorf("%s: %d certificates from EJBCA, want 1", c.name, n)
		}
		if n := c.sim.Counters().Get("finalize"); n != 0 {
			t.Errorf("%s: finalize called %d times", c.name, n)
		}
	}
}

// TestFaultMatrixNoManagerEvent is the matrix's first column: {EJBCA fault}
// x {before, during, after issuing}, the manager running throughout.
// docs/reliability.md shows the matrix; the leader-change column is
// test/failover's.
func TestFaultMatrixNoManagerEvent(t *testing.T) {
	t.Parallel()
	checkFaultCells(t, startFaultCells(t, "no manager event"))
}

// TestFaultMatrixRestart is its second column: the manager restarts while
// every cell's enrolment is in flight or just answered. It runs alone, since
// it stops the suite's manager.
func TestFaultMatrixRestart(t *testing.T) {
	cells := startFaultCells(t, "restart")
	testkit.Eventually(t, 30*time.Second, func() string {
		for _, c := range cells {
			if c.sim.Counters().Get("pkcs10enroll") == 0 {
				return c.name + ": no enrolment reached EJBCA yet"
			}
		}
		return ""
	})
	stopManager()
	if err := startManager(); err != nil {
		t.Fatal(err)
	}
	checkFaultCells(t, cells)
}
