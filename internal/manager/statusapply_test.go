package manager

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	cmac "github.com/cert-manager/cert-manager/pkg/client/applyconfigurations/certmanager/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// TestRequestStatusApplyAsControllerRuntime: the manager's client applies a
// CertificateRequest's status exactly as controller-runtime's does, only
// without decoding the answer: the same status and the same managed fields
// (our field manager, Apply, the status subresource), the same conflict
// for a write decided from a stale copy, the same not-found for a request
// gone, the same refusal to take another manager's field without force and
// the same taking of it with force.
func TestRequestStatusApplyAsControllerRuntime(t *testing.T) {
	const ns = "applies"
	cfg, theirs := apiServer(t, ns)
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	answers := &statusAnswers{next: hc.Transport}
	hc.Transport = answers
	ours, err := newClient(cfg, client.Options{Scheme: Scheme(), HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ours.(requestStatusApplies); !ok {
		t.Fatalf("the manager's client is a %T", ours)
	}
	ctx := context.Background()
	_, csrPEM := testkit.CSR(t, testkit.CommonName("applies.example.com"))
	chain := testkit.SelfSignedPEM(t, 0x5eed, "applies CA")
	create := func(name string) *cmapi.CertificateRequest {
		cr := testkit.CertificateRequest(ns, name, csrPEM, testkit.IssuerRef(v1alpha1.IssuerKind, "ejbca"))
		if err := theirs.Create(ctx, cr); err != nil {
			t.Fatal(err)
		}
		return cr
	}
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	issued := func(cr *cmapi.CertificateRequest) *cmac.CertificateRequestApplyConfiguration {
		status := cmac.CertificateRequestStatus().WithConditions(cmac.CertificateRequestCondition().
			WithType(cmapi.CertificateRequestConditionReady).WithStatus(cmmeta.ConditionTrue).
			WithReason(cmapi.CertificateRequestReasonIssued).WithMessage("issued").WithLastTransitionTime(now))
		status.Certificate, status.CA = chain, chain
		return cmac.CertificateRequest(cr.Name, cr.Namespace).WithResourceVersion(cr.ResourceVersion).WithStatus(status)
	}
	approved := func(cr *cmapi.CertificateRequest, reason string) *cmac.CertificateRequestApplyConfiguration {
		return cmac.CertificateRequest(cr.Name, cr.Namespace).WithStatus(cmac.CertificateRequestStatus().WithConditions(
			cmac.CertificateRequestCondition().WithType(cmapi.CertificateRequestConditionApproved).
				WithStatus(cmmeta.ConditionTrue).WithReason(reason).WithLastTransitionTime(now)))
	}
	owner := []client.SubResourceApplyOption{client.FieldOwner(v1alpha1.FieldOwner), client.ForceOwnership}
	// both applies ac(a) with controller-runtime's client and ac(b) with
	// ours, and returns their errors.
	both := func(a, b *cmapi.CertificateRequest, ac func(*cmapi.CertificateRequest) *cmac.CertificateRequestApplyConfiguration, opts ...client.SubResourceApplyOption) (error, error) {
		return theirs.Status().Apply(ctx, ac(a), opts...), ours.Status().Apply(ctx, ac(b), opts...)
	}
	get := func(cr *cmapi.CertificateRequest) *cmapi.CertificateRequest {
		got := &cmapi.CertificateRequest{}
		if err := theirs.Get(ctx, client.ObjectKeyFromObject(cr), got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	managed := func(cr *cmapi.CertificateRequest, manager string) []metav1.ManagedFieldsEntry {
		var out []metav1.ManagedFieldsEntry
		for _, m := range cr.ManagedFields {
			if m.Manager == manager {
				m.Time = nil
				out = append(out, m)
			}
		}
		return out
	}
	same := func(what string, a, b *cmapi.CertificateRequest) {
		t.Helper()
		if !equality.Semantic.DeepEqual(a.Status, b.Status) {
			t.Errorf("%s: status\n%+v\ncontroller-runtime's:\n%+v", what, b.Status, a.Status)
		}
		for _, m := range []string{v1alpha1.FieldOwner, "approver"} {
			if ma, mb := managed(a, m), managed(b, m); !equality.Semantic.DeepEqual(ma, mb) {
				t.Errorf("%s: fields managed by %s\n%+v\ncontroller-runtime's:\n%+v", what, m, mb, ma)
			}
		}
	}

	a, b := create("a"), create("b")
	if errA, errB := both(a, b, issued, owner...); errA != nil || errB != nil {
		t.Fatalf("applying: %v; controller-runtime's: %v", errB, errA)
	}
	gotA, gotB := get(a), get(b)
	same("issued", gotA, gotB)
	// what came back was the request's metadata, not the request
	if got := answers.last(); !strings.Contains(got, `"kind":"PartialObjectMetadata"`) || strings.Contains(got, `"status":{`) || strings.Contains(got, `"spec":{`) ||
		!strings.Contains(got, `"name":"b"`) {
		t.Errorf("the apply was answered with %q, want the request's metadata only", got)
	}
	if ms := managed(gotB, v1alpha1.FieldOwner); len(ms) != 1 || ms[0].Operation != metav1.ManagedFieldsOperationApply || ms[0].Subresource != "status" || len(gotB.Status.Certificate) == 0 {
		t.Errorf("our apply left %+v (certificate %d bytes), want the status applied by %s", ms, len(gotB.Status.Certificate), v1alpha1.FieldOwner)
	}

	// decided from the copy before the last write
	errA, errB := both(a, b, issued, owner...)
	if !apierrors.IsConflict(errA) || !apierrors.IsConflict(errB) {
		t.Errorf("a write from a stale copy: %v; controller-runtime's: %v; want conflicts", errB, errA)
	}

	// another manager's field: refused without force, taken with it
	a, b = create("c"), create("d")
	approver := []client.SubResourceApplyOption{client.FieldOwner("approver")}
	if errA, errB := both(a, b, func(cr *cmapi.CertificateRequest) *cmac.CertificateRequestApplyConfiguration {
		return approved(cr, "cert-manager.io")
	}, approver...); errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	ourApproval := func(cr *cmapi.CertificateRequest) *cmac.CertificateRequestApplyConfiguration {
		return approved(cr, "ejbca-issuer")
	}
	errA, errB = both(a, b, ourApproval, client.FieldOwner(v1alpha1.FieldOwner))
	if !apierrors.IsConflict(errA) || !apierrors.IsConflict(errB) {
		t.Errorf("taking another manager's field without force: %v; controller-runtime's: %v; want conflicts", errB, errA)
	}
	if errA, errB := both(a, b, ourApproval, owner...); errA != nil || errB != nil {
		t.Fatalf("taking another manager's field with force: %v; controller-runtime's: %v", errB, errA)
	}
	same("forced", get(a), get(b))

	// a request gone
	gone := &cmapi.CertificateRequest{ObjectMeta: metav1.ObjectMeta{Name: "gone", Namespace: ns}}
	errA, errB = both(gone, gone, issued, owner...)
	if !apierrors.IsNotFound(errA) || !apierrors.IsNotFound(errB) {
		t.Errorf("a request gone: %v; controller-runtime's: %v; want not found", errB, errA)
	}
}

// statusAnswers keeps the answer to the last status PATCH that succeeded.
type statusAnswers struct {
	next http.RoundTripper
	mu   sync.Mutex
	body []byte
}

func (a *statusAnswers) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := a.next.RoundTrip(req)
	if err != nil || req.Method != http.MethodPatch || !strings.HasSuffix(req.URL.Path, "/status") || res.StatusCode != http.StatusOK {
		return res, err
	}
	body, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.body = body
	a.mu.Unlock()
	res.Body = io.NopCloser(bytes.NewReader(body))
	return res, nil
}

func (a *statusAnswers) last() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return string(a.body)
}
