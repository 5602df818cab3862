package failover

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// newRequests creates and approves n CertificateRequests named
// <prefix>-<i> for issuer, as cert-manager would; created, if not nil, is
// called once they all exist, before any is approved.
func newRequests(t *testing.T, issuer, prefix string, n int, created func()) []*cmapi.CertificateRequest {
	t.Helper()
	ctx := context.Background()
	out := make([]*cmapi.CertificateRequest, n)
	for i := range out {
		name := fmt.Sprintf("%s-%d", prefix, i)
		_, csr := testkit.CSR(t, testkit.CommonName(name+".example.com"), testkit.DNSNames(name+".example.com"))
		cr := testkit.CertificateRequest(namespace, name, csr, testkit.IssuerRef(v1alpha1.IssuerKind, issuer))
		if err := suite.k8s.Create(ctx, cr); err != nil {
			t.Fatalf("creating %s: %v", name, err)
		}
		out[i] = cr
	}
	if created != nil {
		created()
	}
	// Approve them all at once, as cert-manager's approver does (its own
	// field manager).
	for _, cr := range out {
		now := metav1.Now()
		cr.Status.Conditions = append(cr.Status.Conditions, cmapi.CertificateRequestCondition{
			Type: cmapi.CertificateRequestConditionApproved, Status: cmmeta.ConditionTrue, Reason: "cert-manager.io",
			Message: "approved by the test", LastTransitionTime: &now})
		if err := suite.k8s.Status().Update(ctx, cr, client.FieldOwner("cert-manager-certificaterequests-approver")); err != nil {
			t.Fatalf("approving %s: %v", cr.Name, err)
		}
	}
	return out
}

func username(cr *cmapi.CertificateRequest) string { return cr.Namespace + "/" + cr.Name }

func readyOf(cr *cmapi.CertificateRequest) *cmapi.CertificateRequestCondition {
	return apiutil.GetCertificateRequestCondition(cr, cmapi.CertificateRequestConditionReady)
}

// waitIssued polls until every request is Ready=True (Issued), or fails
// fast when one is Failed, or the deadline passes.
func waitIssued(crs []*cmapi.CertificateRequest, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	pending := append([]*cmapi.CertificateRequest(nil), crs...)
	last := ""
	for {
		var still []*cmapi.CertificateRequest
		for _, cr := range pending {
			got := &cmapi.CertificateRequest{}
			if err := suite.k8s.Get(context.Background(), client.ObjectKeyFromObject(cr), got); err != nil {
				last = err.Error()
				still = append(still, cr)
				continue
			}
			c := readyOf(got)
			switch {
			case c != nil && c.Status == cmmeta.ConditionTrue && c.Reason == cmapi.CertificateRequestReasonIssued && len(got.Status.Certificate) > 0:
				*cr = *got
			case c != nil && c.Reason == cmapi.CertificateRequestReasonFailed:
				return fmt.Errorf("%s Failed: %s", cr.Name, c.Message)
			default:
				still = append(still, cr)
				if c != nil {
					last = fmt.Sprintf("%s: Ready %s/%s: %s", cr.Name, c.Status, c.Reason, c.Message)
				} else {
					last = cr.Name + ": no Ready condition"
				}
			}
		}
		if pending = still; len(pending) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d requests not issued after %s; last: %s", len(pending), len(crs), timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkOnce asserts the simulator issued exactly one certificate to each
// request's end entity, the one the request holds, and that nothing was
// ever finalized.
func checkOnce(sim *ejbcasim.Sim, crs []*cmapi.CertificateRequest) []string {
	byUser := map[string][]ejbcasim.IssuedCert{}
	for _, c := range sim.Issued() {
		byUser[c.Username] = append(byUser[c.Username], c)
	}
	var problems []string
	for _, cr := range crs {
		got := byUser[username(cr)]
		if len(got) != 1 {
			serials := make([]string, len(got))
			for i, c := range got {
				serials[i] = fmt.Sprintf("%X", c.Serial)
			}
			problems = append(problems, fmt.Sprintf("%s: %d certificates from EJBCA (serials %v), want 1", cr.Name, len(got), serials))
			continue
		}
		block, _ := pem.Decode(cr.Status.Certificate)
		if block == nil {
			problems = append(problems, cr.Name+": status.certificate is not PEM")
			continue
		}
		leaf, err := x509.ParseCertificate(block.Bytes)
		if err != nil || leaf.SerialNumber.Cmp(got[0].Serial) != 0 {
			problems = append(problems, fmt.Sprintf("%s: holds a certificate that is not the one EJBCA issued (%X)", cr.Name, got[0].Serial))
		}
	}
	if n := sim.Counters().Get("finalize"); n != 0 {
		problems = append(problems, fmt.Sprintf("finalize was called %d times", n))
	}
	return problems
}

// runs counts the runs of each name's test, so that -count=N makes new
// objects each time.
var runs = struct {
	sync.Mutex
	n map[string]int
}{n: map[string]int{}}

// freshName is base for a test's first run, base-<run> for the next.
func freshName(base string) string {
	runs.Lock()
	defer runs.Unlock()
	runs.n[base]++
	if n := runs.n[base]; n > 1 {
		return fmt.Sprintf("%s-%d", base, n)
	}
	return base
}

// countBy formats a count of strings, sorted.
func countBy(items []string) string {
	m := map[string]int{}
	for _, s := range items {
		m[s]++
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
