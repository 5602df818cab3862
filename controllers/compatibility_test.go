package controllers_test

// The scenarios that talk to EJBCA, run against every simulator preset (an
// EJBCA edition and version, see internal/ejbcasim's doc and
// docs/compatibility.md) where the preset supports them. Every scenario
// counts EJBCA's calls with the simulator's counters: exactly one
// certificate per request whatever was lost or restarted, and finalize
// (which enrols on an approved request) never called.
//
// Each scenario has a simulator of its own, because faults and counters
// are per simulator; scenarios that only issue share one. The scenarios
// mostly wait for the manager or EJBCA, so they run at the same time
// (concurrently, under one -parallel slot); those that restart the suite's
// manager run alone, one restart for all presets.

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// ejbcaProcessing is how long EJBCA takes over a slow call in the timeout
// scenario: longer than the suite manager's EJBCA timeout (5s), so the call
// times out and EJBCA still issues afterwards.
const ejbcaProcessing = 8 * time.Second

// shortMaxWait is approval.maxWait where a scenario waits for it to pass.
const shortMaxWait = 5 * time.Second

// concurrently runs f for each name as a subtest, all at once, and waits for
// them. The subtests do not call t.Parallel: they mostly wait for the
// manager or the simulator, and -parallel (GOMAXPROCS by default) would
// otherwise run only two at a time.
func concurrently(t *testing.T, names []string, f func(t *testing.T, name string)) {
	t.Helper()
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(name, func(t *testing.T) { f(t, name) })
		}()
	}
	wg.Wait()
}

// presetSim starts a simulator of the test's own that behaves as preset.
func presetSim(t *testing.T, preset string) *ejbcasim.Sim {
	t.Helper()
	sim := newSim(t, ejbcasim.Config{Preset: preset})
	if sim.Preset() != preset {
		t.Fatalf("the simulator runs preset %q, want %q", sim.Preset(), preset)
	}
	return sim
}

// givesApprovalID reports whether the preset's 202 for a pending addition
// carries the approval request id.
func givesApprovalID(sim *ejbcasim.Sim) bool { return !sim.Behaviour().PendingWithoutID }

// callSummary lists the calls the simulator counted, by endpoint and status.
func callSummary(c ejbcasim.Counters) string {
	var parts []string
	for ep, byStatus := range c.Calls {
		var st []string
		for status, n := range byStatus {
			st = append(st, fmt.Sprintf("%d×%d", status, n))
		}
		sort.Strings(st)
		parts = append(parts, ep+" "+strings.Join(st, ","))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// exactlyOnce checks that EJBCA issued one certificate to each end entity
// and none to anyone else, and that finalize was never called; it logs the
// calls and returns the counters.
func exactlyOnce(t *testing.T, sim *ejbcasim.Sim, endEntities ...string) ejbcasim.Counters {
	t.Helper()
	c := sim.Counters()
	for _, ee := range endEntities {
		if n := enrolments(sim, ee); n != 1 {
			t.Errorf("EJBCA issued %d certificates to end entity %s, want 1", n, ee)
		}
	}
	if c.Enrollments != len(endEntities) {
		t.Errorf("EJBCA issued %d certificates in all for %d requests", c.Enrollments, len(endEntities))
	}
	if n := c.Get("finalize"); n != 0 {
		t.Errorf("finalize called %d times; it enrols on an approved request and must never be used", n)
	}
	t.Logf("%s: %d certificate(s); EJBCA calls: %s; tokens issued: %d", sim.Preset(), c.Enrollments, callSummary(c), c.TokensIssued)
	return c
}

// noCertificate checks that EJBCA issued nothing and finalize was never
// called, and logs the calls.
func noCertificate(t *testing.T, sim *ejbcasim.Sim) ejbcasim.Counters {
	t.Helper()
	c := sim.Counters()
	if c.Enrollments != 0 || c.Get("finalize") != 0 {
		t.Errorf("EJBCA issued %d certificates and finalize was called %d times; want none", c.Enrollments, c.Get("finalize"))
	}
	t.Logf("%s: no certificate; EJBCA calls: %s", sim.Preset(), callSummary(c))
	return c
}

// waitForApprovalWithoutID waits until the request waits for EJBCA approval
// of its end entity without an approval request id (EJBCA gave none, or the
// request resumed after a lost 202).
func waitForApprovalWithoutID(t *testing.T, cr *cmapi.CertificateRequest) {
	t.Helper()
	want := fmt.Sprintf("waiting for EJBCA approval of the end entity %q since ", cr.Namespace+"/"+cr.Name)
	// After a lost answer the request waits for EJBCA's status probe (one
	// every few seconds) and the issuer's re-check: under make test's load
	// (-race, alongside the failover suite) that took over 30 s once.
	c := waitRequest(t, cr, cmapi.CertificateRequestReasonPending, want, 90*time.Second)
	if !strings.HasSuffix(c.Message, " (EJBCA gave no approval request id)") {
		t.Errorf("the message %q does not say that EJBCA gave no approval request id", c.Message)
	}
	if id := cr.Annotations[v1alpha1.AnnotationApprovalRequestID]; id != "0" {
		t.Errorf("approval request id annotation %q, want 0", id)
	}
}

// onlyPendingApproval is the one approval request waiting in the simulator,
// as an administrator sees it in the RA web.
func onlyPendingApproval(t *testing.T, sim *ejbcasim.Sim) int {
	t.Helper()
	ids := sim.PendingApprovals()
	if len(ids) != 1 {
		t.Fatalf("%d approval requests waiting in EJBCA, want 1: %v", len(ids), ids)
	}
	return ids[0]
}

// awaitApproval waits until the request waits for approval, in the form the
// preset allows, and returns EJBCA's approval request id: the request's own
// where EJBCA gave one, else the one an administrator finds in EJBCA.
func awaitApproval(t *testing.T, sim *ejbcasim.Sim, cr *cmapi.CertificateRequest) int {
	t.Helper()
	if givesApprovalID(sim) {
		return waitForApproval(t, cr)
	}
	waitForApprovalWithoutID(t, cr)
	return onlyPendingApproval(t, sim)
}

// withDuration sets the request's spec.duration.
func withDuration(d time.Duration) crOption {
	return func(cr *cmapi.CertificateRequest) { cr.Spec.Duration = &metav1.Duration{Duration: d} }
}

// leafOf decodes the request's issued leaf.
func leafOf(t *testing.T, cr *cmapi.CertificateRequest) *x509.Certificate {
	t.Helper()
	leaf, err := pki.DecodeX509CertificateBytes(cr.Status.Certificate)
	if err != nil {
		t.Fatalf("status.certificate: %v", err)
	}
	return leaf
}

// failedAfter is how long after the approval was requested the request
// failed.
func failedAfter(t *testing.T, cr *cmapi.CertificateRequest) time.Duration {
	t.Helper()
	since, err := time.Parse(time.RFC3339, cr.Annotations[v1alpha1.AnnotationApprovalRequestedAt])
	if err != nil || cr.Status.FailureTime == nil {
		t.Fatalf("approval-requested-at %q (%v), failureTime %v", cr.Annotations[v1alpha1.AnnotationApprovalRequestedAt], err, cr.Status.FailureTime)
	}
	return cr.Status.FailureTime.Sub(since)
}

// notApprovedMessage is the Failed message of a request whose approval
// was not seen within maxWait.
func notApprovedMessage(sim *ejbcasim.Sim, cr *cmapi.CertificateRequest, id int, maxWait time.Duration) string {
	if givesApprovalID(sim) {
		return fmt.Sprintf("EJBCA approval request %d was not approved within the issuer's approval.maxWait (%s)", id, maxWait)
	}
	return fmt.Sprintf("EJBCA's addition of end entity %q (EJBCA gave no approval request id) was not approved within the issuer's approval.maxWait (%s)",
		cr.Namespace+"/"+cr.Name, maxWait)
}

func TestCompatibility(t *testing.T) {
	t.Parallel()
	concurrently(t, ejbcasim.PresetNames(), func(t *testing.T, preset string) {
		scenarios := map[string]func(*testing.T, string){
			"mtls-and-oauth2":            compatIssuance,
			"reset-after-issue":          compatResetAfterIssue,
			"timeout-while-ejbca-issues": compatTimeoutWhileEJBCAIssues,
		}
		b, err := ejbcasim.PresetBehaviour(preset)
		if err != nil {
			t.Fatal(err)
		}
		if b.Approvals {
			scenarios["approval-approved"] = compatApprovalApproved
			scenarios["approval-rejected"] = func(t *testing.T, preset string) { compatApprovalRefused(t, preset, "rejected") }
			scenarios["approval-expired"] = func(t *testing.T, preset string) { compatApprovalRefused(t, preset, "expired") }
			scenarios["approval-past-maxwait"] = compatApprovalPastMaxWait
			scenarios["lost-202"] = compatLost202
		} else {
			// No approval profile can exist: what the issuer cannot fix
			// fails with EJBCA's message instead.
			scenarios["refused-by-the-profile"] = compatRefusedByTheProfile
			scenarios["always-flow-without-end-entity-api"] = compatAlwaysFlowWithoutEndEntityAPI
		}
		var names []string
		for n := range scenarios {
			names = append(names, n)
		}
		sort.Strings(names)
		concurrently(t, names, func(t *testing.T, name string) { scenarios[name](t, preset) })
	})
}

// compatIssuance issues over mTLS and over OAuth2 in one call each, and
// checks what becomes of useRequestedDuration (end_time, 9.3.3+).
func compatIssuance(t *testing.T, preset string) {
	sim := presetSim(t, preset)
	ns, _ := readyIssuer(t, sim, func(s *v1alpha1.IssuerSpec) { s.UseRequestedDuration = true })
	oauth := newIssuer(t, ns, "oauth", oauthSpec(sim))
	waitIssuer(t, oauth, v1alpha1.ReasonChecked)

	const requested = 48 * time.Hour
	mtls, mtlsKey := requestFor(t, ns, "ejbca", "mtls", withDuration(requested))
	bearer, bearerKey := requestFor(t, ns, "oauth", "oauth2")
	for cr, key := range map[*cmapi.CertificateRequest]crypto.Signer{mtls: mtlsKey, bearer: bearerKey} {
		waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "Certificate issued by EJBCA (serial ", 30*time.Second)
		if ok, _ := pki.PublicKeyMatchesCertificate(key.Public(), leafOf(t, cr)); !ok {
			t.Errorf("%s: the certificate is not for the CSR's key", cr.Name)
		}
	}

	leaf := leafOf(t, mtls)
	wantEnd := mtls.CreationTimestamp.Add(requested)
	honoured := leaf.NotAfter.After(wantEnd.Add(-5*time.Minute)) && leaf.NotAfter.Before(wantEnd.Add(5*time.Minute))
	switch {
	case sim.Behaviour().EndTime && !honoured:
		t.Errorf("useRequestedDuration: notAfter %s, want about %s (this EJBCA honours end_time)", leaf.NotAfter, wantEnd)
	case !sim.Behaviour().EndTime && honoured:
		t.Errorf("useRequestedDuration: notAfter %s follows the request, but this EJBCA ignores end_time", leaf.NotAfter)
	}
	t.Logf("%s: useRequestedDuration of %s gave a certificate valid for %s (end_time honoured: %v)",
		preset, requested, leaf.NotAfter.Sub(leaf.NotBefore).Round(time.Minute), honoured)

	c := exactlyOnce(t, sim, ns+"/mtls", ns+"/oauth2")
	if n := c.Get("pkcs10enroll"); n != 2 {
		t.Errorf("%d pkcs10enroll calls for two certificates, want one each", n)
	}
	if c.TokensIssued != 1 {
		t.Errorf("%d OAuth2 tokens fetched for one issuer check and one enrolment, want 1", c.TokensIssued)
	}
	if n := c.Get("search") + c.Get("search-v2"); n != 0 {
		t.Errorf("%d searches when every answer arrived", n)
	}
}

// compatResetAfterIssue: EJBCA issues and the connection is reset before
// its answer; the certificate is recovered by search, not enrolled again.
func compatResetAfterIssue(t *testing.T, preset string) {
	sim := presetSim(t, preset)
	ns, _ := readyIssuer(t, sim)
	sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, ResetAfterIssuing: true})
	cr, key := requestFor(t, ns, "ejbca", "reset")
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	if ok, _ := pki.PublicKeyMatchesCertificate(key.Public(), leafOf(t, cr)); !ok {
		t.Error("the recovered certificate is for another key")
	}
	c := exactlyOnce(t, sim, ns+"/reset")
	if n := c.Get("pkcs10enroll"); n != 1 {
		t.Errorf("%d pkcs10enroll calls, want the one whose answer was lost", n)
	}
	if n := c.Get("search") + c.Get("search-v2"); n < 1 {
		t.Error("the lost certificate was not looked for by search")
	}
}

// compatTimeoutWhileEJBCAIssues: EJBCA takes longer than the manager's EJBCA
// timeout, and issues after the manager gave up on the call. The recovery
// must find that certificate, not enrol a second one: a search that runs
// before EJBCA finished proves nothing (issue 17).
func compatTimeoutWhileEJBCAIssues(t *testing.T, preset string) {
	sim := presetSim(t, preset)
	ns, _ := readyIssuer(t, sim)
	sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, Processing: ejbcaProcessing})
	start := time.Now()
	cr, key := requestFor(t, ns, "ejbca", "slow")
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 60*time.Second)
	t.Logf("%s: issued %s after the request, EJBCA taking %s over the call", preset, time.Since(start).Round(100*time.Millisecond), ejbcaProcessing)
	if ok, _ := pki.PublicKeyMatchesCertificate(key.Public(), leafOf(t, cr)); !ok {
		t.Error("the certificate is for another key")
	}
	c := exactlyOnce(t, sim, ns+"/slow")
	if n := c.Get("pkcs10enroll"); n != 1 {
		t.Errorf("%d pkcs10enroll calls, want the one that timed out (EJBCA issued for it)", n)
	}
}

// compatApprovalApproved: the addition waits for an administrator, who
// approves; the request is issued with one enrolment for its end entity.
func compatApprovalApproved(t *testing.T, preset string) {
	sim := presetSim(t, preset)
	ns := approvalIssuer(t, sim)
	cr, key := requestFor(t, ns, "ejbca", "approved")
	id := awaitApproval(t, sim, cr)
	if err := sim.Approve(id); err != nil {
		t.Fatal(err)
	}
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	if ok, _ := pki.PublicKeyMatchesCertificate(key.Public(), leafOf(t, cr)); !ok {
		t.Error("the certificate is not for the CSR's key")
	}
	c := exactlyOnce(t, sim, ns+"/"+cr.Name)
	if c.Get("endentity") != 1 || c.Calls["certificaterequest"][201] != 1 {
		t.Errorf("endentity=%d certificaterequest 201=%d; want the end entity added once and one enrolment for it",
			c.Get("endentity"), c.Calls["certificaterequest"][201])
	}
	if n := c.Get("search") + c.Get("search-v2"); n != 0 {
		t.Errorf("%d searches, though no answer was lost: the one-call enrolment was refused (approval required), so nothing can have been issued", n)
	}
	if sim.Behaviour().ApprovalAPI && givesApprovalID(sim) {
		if c.Get("approval-status") < 1 {
			t.Error("the approval API was never asked, though EJBCA has it and gave an id")
		}
	} else if n := c.Get("approval-status"); n != 0 {
		t.Errorf("%d approval status calls without an id or an approval API", n)
	}
}

// compatApprovalRefused: an administrator rejects the addition, or it
// expires. Where EJBCA gave an id and has the approval API, the request
// fails at once with the state; otherwise the end entity is simply never
// added, which the issuer can tell from "not yet approved" only at maxWait.
func compatApprovalRefused(t *testing.T, preset, how string) {
	sim := presetSim(t, preset)
	seesState := sim.Behaviour().ApprovalAPI && givesApprovalID(sim)
	maxWait := shortMaxWait
	ns := approvalIssuer(t, sim, func(a *v1alpha1.ApprovalSpec) {
		if !seesState {
			a.MaxWait = &metav1.Duration{Duration: maxWait}
		}
	})
	cr, _ := requestFor(t, ns, "ejbca", how)
	id := awaitApproval(t, sim, cr)
	end, state := sim.Reject, "REJECTED"
	if how == "expired" {
		end, state = sim.Expire, "EXPIRED"
	}
	if err := end(id); err != nil {
		t.Fatal(err)
	}
	if seesState {
		waitRequest(t, cr, cmapi.CertificateRequestReasonFailed, fmt.Sprintf("EJBCA approval request %d ended %s: not issued", id, state), 30*time.Second)
	} else {
		c := waitRequest(t, cr, cmapi.CertificateRequestReasonFailed, notApprovedMessage(sim, cr, id, maxWait), 30*time.Second)
		if took := failedAfter(t, cr); took < maxWait {
			t.Errorf("failed %s after the approval was requested, before maxWait (%s): %s", took, maxWait, c.Message)
		}
	}
	if cr.Status.FailureTime == nil {
		t.Error("no failureTime")
	}
	if _, added := sim.EndEntity(ns + "/" + cr.Name); added {
		t.Errorf("the end entity %s/%s exists after its addition was %s", ns, cr.Name, how)
	}
	noCertificate(t, sim)
}

// compatApprovalPastMaxWait: nobody decides; the request fails at maxWait.
func compatApprovalPastMaxWait(t *testing.T, preset string) {
	sim := presetSim(t, preset)
	const maxWait = 4 * time.Second
	ns := approvalIssuer(t, sim, func(a *v1alpha1.ApprovalSpec) { a.MaxWait = &metav1.Duration{Duration: maxWait} })
	cr, _ := requestFor(t, ns, "ejbca", "impatient")
	id := awaitApproval(t, sim, cr)
	c := waitRequest(t, cr, cmapi.CertificateRequestReasonFailed, notApprovedMessage(sim, cr, id, maxWait), 30*time.Second)
	if took := failedAfter(t, cr); took < maxWait {
		t.Errorf("failed %s after the approval was requested, before maxWait: %s", took, c.Message)
	}
	if st, _ := sim.ApprovalStatus(id); st != "PENDING" {
		t.Errorf("EJBCA's approval request is %s; the issuer giving up leaves it to EJBCA", st)
	}
	noCertificate(t, sim)
}

// compatLost202: the addition is carried out but its 202 is lost. The
// retried addition is answered "approval request already exists": the
// request waits for that approval (without an id, which that answer does
// not carry), leaves no orphan, and is issued once approved.
func compatLost202(t *testing.T, preset string) {
	sim := presetSim(t, preset)
	ns := approvalIssuer(t, sim)
	sim.InjectFault("endentity", ejbcasim.Fault{Count: 1, ResetAfterIssuing: true})
	cr, _ := requestFor(t, ns, "ejbca", "lost")
	waitForApprovalWithoutID(t, cr)
	id := onlyPendingApproval(t, sim) // no orphan: the retried addition made no second request
	if err := sim.Approve(id); err != nil {
		t.Fatal(err)
	}
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	ee := ns + "/" + cr.Name
	c := exactlyOnce(t, sim, ee)
	if c.Calls["endentity"][0] != 1 || c.Calls["endentity"][400] != 1 || c.Get("endentity") != 2 {
		t.Errorf("endentity calls %v; want the lost one and the retry answered 400 \"already exists\"", c.Calls["endentity"])
	}
	if st, _ := sim.ApprovalStatus(id); st != "EXECUTED" {
		t.Errorf("the approval request is %s, want EXECUTED", st)
	}
	// The one-call enrolment was refused (approval required): nothing it
	// did needs recovering, so the lost 202 costs no search and no wait.
	if n := c.Get("search") + c.Get("search-v2"); n != 0 {
		t.Errorf("%d searches after a lost 202; the refused one-call enrolment issued nothing", n)
	}
	if ids := sim.PendingApprovals(); len(ids) != 0 {
		t.Errorf("approval requests left waiting in EJBCA: %v", ids)
	}
	if e, ok := sim.EndEntity(ee); !ok || e.Status != "GENERATED" {
		t.Errorf("end entity %s: %+v (exists: %v), want one, GENERATED", ee, e, ok)
	}
	if _, ok := sim.EndEntity(ns + "/lost"); ok {
		t.Errorf("an end entity %s/lost exists besides the request's own", ns)
	}
}

// rsaCSR is a CSR for an RSA key of bits.
func rsaCSR(t *testing.T, bits int, cn string) []byte {
	t.Helper()
	_, csr := testkit.CSR(t, testkit.RSA(bits), testkit.CommonName(cn), testkit.DNSNames(cn))
	return csr
}

// compatRefusedByTheProfile: EJBCA refuses the enrolment for a reason the
// issuer cannot fix (the certificate profile refuses the key): the request
// fails with EJBCA's message after one call, without retry or search.
func compatRefusedByTheProfile(t *testing.T, preset string) {
	sim := presetSim(t, preset)
	ns, _ := readyIssuer(t, sim)
	cr := newRequest(t, ns, "ejbca", "weak-key", rsaCSR(t, 1024, "weak-key.example.com"))
	approve(t, cr)
	waitRequest(t, cr, cmapi.CertificateRequestReasonFailed, "Illegal key length, not authorized by certificate profile: 1024.", 30*time.Second)
	if cr.Status.FailureTime == nil {
		t.Error("no failureTime")
	}
	c := noCertificate(t, sim)
	if c.Calls["pkcs10enroll"][400] != 1 || c.Get("pkcs10enroll") != 1 {
		t.Errorf("pkcs10enroll calls %v; want one, refused", c.Calls["pkcs10enroll"])
	}
	if n := c.Get("search") + c.Get("search-v2"); n != 0 {
		t.Errorf("%d searches after a refusal", n)
	}
}

// compatAlwaysFlowWithoutEndEntityAPI: an issuer configured for the
// approval flow on an EJBCA without /v1/endentity (Community) fails its
// requests with what EJBCA answered, instead of waiting for nothing.
func compatAlwaysFlowWithoutEndEntityAPI(t *testing.T, preset string) {
	sim := presetSim(t, preset)
	ns := approvalIssuer(t, sim, func(a *v1alpha1.ApprovalSpec) { a.Flow = v1alpha1.ApprovalFlowAlways })
	cr, _ := requestFor(t, ns, "ejbca", "always")
	c := waitRequest(t, cr, cmapi.CertificateRequestReasonFailed, "/v1/endentity answered 404", 30*time.Second)
	t.Logf("%s: approval.flow Always: %s", preset, c.Message)
	counters := noCertificate(t, sim)
	if counters.Get("pkcs10enroll") != 0 || counters.Calls["endentity"][404] != 1 {
		t.Errorf("pkcs10enroll=%d endentity=%v; want no one-call enrolment and one 404 for the end entity API",
			counters.Get("pkcs10enroll"), counters.Calls["endentity"])
	}
}

// restartCase is one preset's request through a manager restart.
type restartCase struct {
	preset string
	sim    *ejbcasim.Sim
	ns     string
	cr     *cmapi.CertificateRequest
}

// restartManager stops the suite's manager, runs between, and starts a new
// one.
func restartManager(t *testing.T, between func()) {
	t.Helper()
	stopManager()
	defer func() {
		if err := startManager(); err != nil {
			t.Fatal(err)
		}
	}()
	between()
}

// inFlight waits until the request's enrolment call has reached EJBCA
// (which then works on it for longer).
func inFlight(t *testing.T, rc *restartCase) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, func() string {
		if len(rc.sim.Arrivals("pkcs10enroll")) == 0 {
			return rc.preset + ": no enrolment has reached EJBCA yet"
		}
		return ""
	})
}

// TestCompatibilityRestartDuringEnrolment stops the manager while its
// one-call enrolment is in flight (EJBCA still working on it), so the
// answer and the status write are lost, and starts a new one, on every
// preset at once. Either EJBCA has issued by the time the new manager looks
// or it is still issuing: both must end with the one certificate. It runs
// alone (not parallel) because it stops the suite's manager.
func TestCompatibilityRestartDuringEnrolment(t *testing.T) {
	const processing = 6 * time.Second
	for _, when := range []string{"after-ejbca-issued", "while-ejbca-issues"} {
		t.Run(when, func(t *testing.T) {
			var cases []*restartCase
			for _, preset := range ejbcasim.PresetNames() {
				sim := presetSim(t, preset)
				ns, _ := readyIssuer(t, sim)
				sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, Processing: processing})
				cases = append(cases, &restartCase{preset: preset, sim: sim, ns: ns})
			}
			for _, rc := range cases {
				rc.cr, _ = requestFor(t, rc.ns, "ejbca", "restart")
			}
			for _, rc := range cases {
				inFlight(t, rc)
			}
			restartManager(t, func() {
				for _, rc := range cases {
					if when == "while-ejbca-issues" {
						if n := enrolments(rc.sim, rc.ns+"/restart"); n != 0 {
							t.Errorf("%s: EJBCA already issued before the restart; the scenario needs a longer processing time", rc.preset)
						}
						continue
					}
					testkit.Eventually(t, 30*time.Second, func() string {
						if n := enrolments(rc.sim, rc.ns+"/restart"); n == 0 {
							return rc.preset + ": EJBCA has not issued yet"
						}
						return ""
					})
				}
			})
			for _, rc := range cases {
				t.Run(rc.preset, func(t *testing.T) {
					waitRequest(t, rc.cr, cmapi.CertificateRequestReasonIssued, "", 60*time.Second)
					c := exactlyOnce(t, rc.sim, rc.ns+"/restart")
					if n := c.Get("pkcs10enroll"); n != 1 {
						t.Errorf("%d pkcs10enroll calls; want only the one the stopped manager made", n)
					}
					if n := c.Get("search") + c.Get("search-v2"); n < 1 {
						t.Error("the new manager did not look for the certificate by search")
					}
				})
			}
		})
	}
}

// TestCompatibilityRestartMidApproval stops the manager while requests wait
// for approval, approves them meanwhile, and starts a new manager, which
// resumes from the requests' records, on every preset with approvals at
// once. In the second request of each preset, the answer of the enrolment
// for the approved end entity is lost as well. It runs alone because it
// stops the suite's manager.
func TestCompatibilityRestartMidApproval(t *testing.T) {
	type approvalCase struct {
		restartCase
		id   int
		lost bool
	}
	var cases []*approvalCase
	for _, preset := range ejbcasim.PresetNames() {
		if b, _ := ejbcasim.PresetBehaviour(preset); !b.Approvals {
			continue
		}
		for _, lost := range []bool{false, true} {
			sim := presetSim(t, preset)
			ns := approvalIssuer(t, sim)
			cr, _ := requestFor(t, ns, "ejbca", "resumed")
			cases = append(cases, &approvalCase{restartCase: restartCase{preset: preset, sim: sim, ns: ns, cr: cr}, lost: lost})
		}
	}
	for _, ac := range cases {
		ac.id = awaitApproval(t, ac.sim, ac.cr)
	}
	restartManager(t, func() {
		for _, ac := range cases {
			if err := ac.sim.Approve(ac.id); err != nil {
				t.Fatal(err)
			}
			if ac.lost {
				ac.sim.InjectFault("certificaterequest", ejbcasim.Fault{Count: 1, ResetAfterIssuing: true})
			}
		}
	})
	for _, preset := range ejbcasim.PresetNames() {
		if b, _ := ejbcasim.PresetBehaviour(preset); !b.Approvals {
			continue
		}
		t.Run(preset, func(t *testing.T) {
			for _, ac := range cases {
				if ac.preset != preset {
					continue
				}
				variant := "approved"
				if ac.lost {
					variant = "approved-enrolment-answer-lost"
				}
				t.Run(variant, func(t *testing.T) {
					waitRequest(t, ac.cr, cmapi.CertificateRequestReasonIssued, "", 60*time.Second)
					c := exactlyOnce(t, ac.sim, ac.ns+"/"+ac.cr.Name)
					if n := c.Get("endentity"); n != 1 {
						t.Errorf("%d end entity additions; the new manager must resume, not add again", n)
					}
					issuing := c.Calls["certificaterequest"]
					switch {
					case !ac.lost && issuing[201] != 1:
						t.Errorf("certificaterequest calls %v; want one 201", issuing)
					case ac.lost && (issuing[0] != 1 || issuing[201] != 0):
						t.Errorf("certificaterequest calls %v; want the lost one and no second issue", issuing)
					case ac.lost && c.Get("search")+c.Get("search-v2") < 1:
						t.Error("the lost certificate was not looked for by search")
					}
				})
			}
		})
	}
}
