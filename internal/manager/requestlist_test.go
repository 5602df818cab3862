package manager

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// TestRequestListerListsWhatClientGoWould: the cache's own list of
// CertificateRequests, read page by page and decoded here, holds exactly
// what client-go's list would after the cache's transform, for requests
// of every shape (another issuer's, ours unfinished, ours finished with a
// certificate, ours failed), with and without the issuer-group selector,
// and takes one request per page.
func TestRequestListerListsWhatClientGoWould(t *testing.T) {
	const ns = "lister"
	cfg, k8s := apiServer(t, ns)
	ctx := context.Background()
	_, csrPEM := testkit.CSR(t, testkit.CommonName("lister.example.com"))
	chain := testkit.SelfSignedPEM(t, 0x5eed, "lister CA")
	const n = 23
	for i := range n {
		cr, state := mixedRequest(ns, i, csrPEM)
		if err := k8s.Create(ctx, cr); err != nil {
			t.Fatal(err)
		}
		now := metav1.NewTime(time.Now().Truncate(time.Second))
		switch state {
		case 2: // issued
			cr.Status.Certificate, cr.Status.CA = chain, chain
			cr.Status.Conditions = []cmapi.CertificateRequestCondition{
				{Type: cmapi.CertificateRequestConditionApproved, Status: cmmeta.ConditionTrue, Reason: "cert-manager.io", LastTransitionTime: &now},
				{Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionTrue, Reason: cmapi.CertificateRequestReasonIssued, Message: "issued", LastTransitionTime: &now}}
		case 3: // failed
			cr.Status.FailureTime = &now
			cr.Status.Conditions = []cmapi.CertificateRequestCondition{
				{Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionFalse, Reason: cmapi.CertificateRequestReasonFailed, Message: "refused", LastTransitionTime: &now}}
		default:
			continue
		}
		if err := k8s.Status().Update(ctx, cr); err != nil {
			t.Fatal(err)
		}
	}

	var pages atomic.Int32
	counted := rest.CopyConfig(cfg)
	counted.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			if strings.HasSuffix(r.URL.Path, "/certificaterequests") {
				pages.Add(1)
			}
			return rt.RoundTrip(r)
		})
	})
	for _, selected := range []bool{false, true} {
		t.Run(fmt.Sprintf("selectByGroup=%v", selected), func(t *testing.T) {
			var want cmapi.CertificateRequestList
			field := ""
			opts := []client.ListOption{client.InNamespace(ns)}
			if selected {
				sel := fields.OneTermEqualSelector(signing.IssuerGroupField, v1alpha1.GroupVersion.Group)
				field = sel.String()
				opts = append(opts, client.MatchingFieldsSelector{Selector: sel})
			}
			if err := k8s.List(ctx, &want, opts...); err != nil {
				t.Fatal(err)
			}
			for i := range want.Items {
				kept, err := signing.TrimCertificateRequest(want.Items[i].DeepCopy())
				if err != nil {
					t.Fatal(err)
				}
				want.Items[i] = *kept.(*cmapi.CertificateRequest)
				want.Items[i].TypeMeta = metav1.TypeMeta{}
			}

			l, err := newRequestLister(counted, field, signing.TrimCertificateRequest)
			if err != nil {
				t.Fatal(err)
			}
			l.pageSize = 7
			pages.Store(0)
			got, err := l.ListWithContext(ctx, metav1.ListOptions{ResourceVersion: "0"})
			if err != nil {
				t.Fatal(err)
			}
			list := got.(*cmapi.CertificateRequestList)
			if list.ResourceVersion == "" || list.Continue != "" {
				t.Errorf("list metadata %+v: want a resourceVersion and no continue", list.ListMeta)
			}
			if wantPages := int32((len(want.Items) + 6) / 7); pages.Load() != wantPages {
				t.Errorf("%d requests took %d pages, want %d", len(want.Items), pages.Load(), wantPages)
			}
			if len(list.Items) != len(want.Items) {
				t.Fatalf("listed %d requests, client-go %d", len(list.Items), len(want.Items))
			}
			finished := 0
			for i := range want.Items {
				if !equality.Semantic.DeepEqual(list.Items[i], want.Items[i]) {
					t.Errorf("request %s: listed\n%+v\nclient-go and the transform:\n%+v", want.Items[i].Name, list.Items[i], want.Items[i])
				}
				if signing.ShapeOf(&list.Items[i]) == signing.ShapeFinished {
					finished++
					if len(list.Items[i].Status.Certificate) > 0 {
						t.Errorf("request %s: a finished request kept its certificate", want.Items[i].Name)
					}
				}
			}
			if finished == 0 {
				t.Error("no finished request was listed in its reduced shape")
			}
		})
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
