package signing

import (
	"crypto/sha256"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unique"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
)

// finishedForCache is a final request of ours as the API server sends it
// (times in whole seconds, decoded as local times).
func finishedForCache(t testing.TB, chain []byte, i int, conds ...cmapi.CertificateRequestCondition) *cmapi.CertificateRequest {
	t.Helper()
	// Every string and time the request's own, as when decoded.
	conds = slices.Clone(conds)
	for j := range conds {
		c := &conds[j]
		c.Type, c.Reason, c.Message = cmapi.CertificateRequestConditionType(strings.Clone(string(c.Type))), strings.Clone(c.Reason), strings.Clone(c.Message)
		if c.LastTransitionTime != nil {
			c.LastTransitionTime = c.LastTransitionTime.DeepCopy()
		}
	}
	at := metav1.NewTime(time.Unix(1796000000+int64(i), 0))
	return &cmapi.CertificateRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("svc-%d-1", i), UID: types.UID(fmt.Sprintf("00000000-0000-4000-8000-%012d", i)),
			ResourceVersion: fmt.Sprint(1000 + i), Generation: 1, CreationTimestamp: at,
			Annotations: map[string]string{cmapi.CertificateRequestRevisionAnnotationKey: "1", cmapi.CertificateNameKey: fmt.Sprintf("svc-%d", i)},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "cert-manager.io/v1", Kind: "Certificate", Name: fmt.Sprintf("svc-%d", i),
				UID: types.UID(fmt.Sprintf("10000000-0000-4000-8000-%012d", i)), Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}},
		},
		Spec: cmapi.CertificateRequestSpec{IssuerRef: cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: v1alpha1.IssuerKind, Name: "ejbca"},
			Request: []byte("-----BEGIN CERTIFICATE REQUEST-----"), Usages: []cmapi.KeyUsage{cmapi.UsageServerAuth}},
		Status: cmapi.CertificateRequestStatus{Conditions: conds, Certificate: chain, CA: chain},
	}
}

// TestFinishedRequestReadsAsTheTrimmedRequest: whatever a final request
// carries, the cache's FinishedRequest reads back (as a copy through the
// cache's client, and as the view event handlers get) exactly as
// TrimCertificateRequest's typed shape, and every accessor says the same of
// both.
func TestFinishedRequestReadsAsTheTrimmedRequest(t *testing.T) {
	_, chain := testChain(t)
	at := metav1.NewTime(time.Unix(1796000000, 0))
	approved := cmapi.CertificateRequestCondition{Type: cmapi.CertificateRequestConditionApproved, Status: cmmeta.ConditionTrue, Reason: "cert-manager.io", LastTransitionTime: &at}
	ready := cmapi.CertificateRequestCondition{Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionTrue, Reason: cmapi.CertificateRequestReasonIssued,
		Message: "Certificate fetched from issuer successfully", LastTransitionTime: &at}
	readyNoTime := ready
	readyNoTime.LastTransitionTime = nil
	failed := cmapi.CertificateRequestCondition{Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionFalse, Reason: cmapi.CertificateRequestReasonFailed,
		Message: "EJBCA refused: profile", LastTransitionTime: &at}
	record := cmapi.CertificateRequestCondition{Type: ConditionIssuanceRecord, Status: cmmeta.ConditionTrue, Reason: issuanceRecordReason,
		Message: "serial=1234abcd issuerDN=\"CN=Test CA,O=Test\" seal=" + strings.Repeat("0f", 32), LastTransitionTime: &at}
	// A record naming another certificate than status.certificate (its
	// status was rewritten): kept as it is.
	otherRecord := record
	otherRecord.Message = "serial=99 issuerDN=\"CN=Other\" seal=" + strings.Repeat("0f", 32)
	revoked := cmapi.CertificateRequestCondition{Type: v1alpha1.ConditionRevoked, Status: cmmeta.ConditionTrue, Reason: "superseded", LastTransitionTime: &at}

	cases := map[string]*cmapi.CertificateRequest{
		"issued, as cert-manager leaves it":       finishedForCache(t, chain, 1, approved, ready),
		"issued here, with its issuance record":   finishedForCache(t, chain, 2, approved, ready, record),
		"Ready after the record":                  finishedForCache(t, chain, 3, record, ready, revoked),
		"Ready without a time":                    finishedForCache(t, chain, 4, readyNoTime),
		"failed, no certificate":                  finishedForCache(t, nil, 5, approved, failed),
		"revoked, annotated, deleting, finalized": finishedForCache(t, chain, 6, approved, ready, record, revoked),
		"a record of another certificate":         finishedForCache(t, chain, 9, ready, otherRecord),
		"a record and no certificate":             finishedForCache(t, nil, 10, failed, record),
		"owned otherwise":                         finishedForCache(t, chain, 11, ready),
		"no owner":                                finishedForCache(t, chain, 12, ready),
	}
	owned := cases["owned otherwise"]
	owned.OwnerReferences = append(owned.OwnerReferences, metav1.OwnerReference{APIVersion: "example.com/v1", Kind: "Thing", Name: "t", UID: "NOT-A-UUID"})
	cases["no owner"].OwnerReferences = nil
	// Which conditions are held reduced (the rest are kept as they are).
	reduced := map[string][2]bool{
		"issued, as cert-manager leaves it":       {true, false},
		"issued here, with its issuance record":   {true, true},
		"Ready after the record":                  {true, true},
		"Ready without a time":                    {true, false},
		"failed, no certificate":                  {true, false},
		"revoked, annotated, deleting, finalized": {true, true},
		"a record of another certificate":         {true, false},
		"a record and no certificate":             {true, false},
		"owned otherwise":                         {true, false},
		"no owner":                                {true, false},
	}
	deleting := cases["revoked, annotated, deleting, finalized"]
	deleting.Annotations[v1alpha1.RevokeAnnotation] = "keyCompromise"
	deleting.DeletionTimestamp, deleting.DeletionGracePeriodSeconds = &at, ptr.To[int64](0)
	deleting.Finalizers = []string{v1alpha1.RevocationFinalizer}

	for name, cr := range cases {
		t.Run(name, func(t *testing.T) {
			trimmed, err := TrimCertificateRequest(cr.DeepCopy())
			if err != nil {
				t.Fatal(err)
			}
			want := trimmed.(*cmapi.CertificateRequest)
			if ShapeOf(want) != ShapeFinished {
				t.Fatalf("the typed shape is %q", ShapeOf(want))
			}
			held, err := CacheCertificateRequest(cr.DeepCopy())
			if err != nil {
				t.Fatal(err)
			}
			f, ok := held.(*FinishedRequest)
			if !ok {
				t.Fatalf("the cache holds a %T", held)
			}
			if got := [2]bool{f.ready != (unique.Handle[finishedReady]{}), f.issuanceSeal != ""}; got != reduced[name] {
				t.Errorf("Ready and the issuance record held reduced: %v, want %v", got, reduced[name])
			}
			if wantHeld := name != "owned otherwise" && name != "no owner"; (f.owner != nil) != wantHeld {
				t.Errorf("the owner held reduced: %v, want %v", f.owner != nil, wantHeld)
			}
			again, err := CacheCertificateRequest(f)
			if err != nil || again != any(f) {
				t.Fatalf("the transform run again on its own output gives %v, %v", again, err)
			}
			got, ok := f.DeepCopyObject().(*cmapi.CertificateRequest)
			if !ok {
				t.Fatalf("a copy is a %T", f.DeepCopyObject())
			}
			if !equality.Semantic.DeepEqual(got, want) {
				t.Errorf("a copy differs from the typed shape:\n got %+v\nwant %+v", got, want)
			}
			view, ok := CachedRequest(f)
			if !ok || !equality.Semantic.DeepEqual(view, want) {
				t.Errorf("the view differs from the typed shape:\n got %+v\nwant %+v", view, want)
			}
			if ref, ok := CachedIssuerRef(f); !ok || ref != want.Spec.IssuerRef {
				t.Errorf("CachedIssuerRef = %v, %v", ref, ok)
			}
			for _, o := range []*cmapi.CertificateRequest{got, view} {
				if ShapeOf(o) != ShapeFinished || !IsFinal(o) || IsComplete(o) || HasIssued(o) != HasIssued(want) || RequestRevision(o) != RequestRevision(want) {
					t.Errorf("the accessors read %+v otherwise than the typed shape", o)
				}
				gotRec, gotOK := IssuedRecordOf(o)
				wantRec, wantOK := IssuedRecordOf(want)
				if gotOK != wantOK || !reflect.DeepEqual(gotRec, wantRec) {
					t.Errorf("IssuedRecordOf = %+v, %v; want %+v, %v", gotRec, gotOK, wantRec, wantOK)
				}
			}
			created := f.GetCreationTimestamp()
			if ShapeOf(f) != ShapeFinished || f.GetName() != want.Name || f.GetUID() != want.UID || f.GetResourceVersion() != want.ResourceVersion ||
				!created.Equal(&want.CreationTimestamp) || !equality.Semantic.DeepEqual(f.GetOwnerReferences(), want.OwnerReferences) ||
				!equality.Semantic.DeepEqual(f.GetAnnotations(), want.Annotations) || !equality.Semantic.DeepEqual(f.GetFinalizers(), want.Finalizers) {
				t.Errorf("its metadata reads otherwise than the typed shape's")
			}
			// A copy is the caller's own.
			got.Status.Conditions[0].Reason = "changed"
			if len(got.OwnerReferences) > 0 {
				got.OwnerReferences[0].Name = "changed"
			}
			if again, _ := CachedRequest(f); again.Status.Conditions[0].Reason == "changed" || len(again.OwnerReferences) > 0 && again.OwnerReferences[0].Name == "changed" {
				t.Error("changing a copy changed the cache")
			}
		})
	}

	t.Run("unfinished and foreign requests are not held as FinishedRequests", func(t *testing.T) {
		pending := finishedForCache(t, nil, 7, approved)
		foreign := finishedForCache(t, chain, 8, approved, ready)
		foreign.Spec.IssuerRef = cmmeta.IssuerReference{Group: "cert-manager.io", Kind: "ClusterIssuer", Name: "ca"}
		for _, cr := range []*cmapi.CertificateRequest{pending, foreign} {
			held, err := CacheCertificateRequest(cr)
			if _, ok := held.(*cmapi.CertificateRequest); !ok || err != nil {
				t.Errorf("%s is held as a %T (%v)", cr.Name, held, err)
			}
		}
	})

	t.Run("it cannot be changed in place", func(t *testing.T) {
		held, _ := CacheCertificateRequest(cases["issued, as cert-manager leaves it"].DeepCopy())
		f := held.(*FinishedRequest)
		f.SetManagedFields(nil) // what the cache's default transform does: holds already
		defer func() {
			if recover() == nil {
				t.Error("SetAnnotations changed the cache's copy")
			}
		}()
		f.SetAnnotations(map[string]string{v1alpha1.RevokeAnnotation: "keyCompromise"})
	})
}

// BenchmarkFinishedRequestHeld reports the heap a cached final request of
// ours takes, as the informer holds it (the store and its indexes aside):
// the typed shape TrimCertificateRequest makes against the FinishedRequest
// the cache holds.
func BenchmarkFinishedRequestHeld(b *testing.B) {
	leaf, chain := testChain(b)
	at := metav1.NewTime(time.Unix(1796000000, 0))
	conds := []cmapi.CertificateRequestCondition{
		{Type: cmapi.CertificateRequestConditionApproved, Status: cmmeta.ConditionTrue, Reason: "cert-manager.io", Message: "Certificate request has been approved by cert-manager.io", LastTransitionTime: &at},
		{Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionTrue, Reason: cmapi.CertificateRequestReasonIssued, Message: "Certificate fetched from issuer successfully", LastTransitionTime: &at},
	}
	// As this issuer leaves a request it signed (IssuanceRecordCondition).
	issuedHere := append(slices.Clip(conds), cmapi.CertificateRequestCondition{Type: ConditionIssuanceRecord, Status: cmmeta.ConditionTrue,
		Reason: issuanceRecordReason, LastTransitionTime: &at,
		Message: issuance{Serial: SerialOf(leaf), IssuerDN: leaf.Issuer.String()}.message(strings.Repeat("5a", sha256.Size))})
	const n = 10000
	for _, tc := range []struct {
		name  string
		cache func(any) (any, error)
		conds []cmapi.CertificateRequestCondition
	}{
		{"typed", TrimCertificateRequest, conds},
		{"finished", CacheCertificateRequest, conds},
		{"typed, issued here", TrimCertificateRequest, issuedHere},
		{"finished, issued here", CacheCertificateRequest, issuedHere},
	} {
		b.Run(tc.name, func(b *testing.B) {
			held := make([]any, n)
			var perRequest float64
			for b.Loop() {
				clear(held)
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				for i := range held {
					// Each request's strings its own, as decoded.
					out, err := tc.cache(finishedForCache(b, chain, i, tc.conds...))
					if err != nil {
						b.Fatal(err)
					}
					held[i] = out
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perRequest = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
			}
			runtime.KeepAlive(held)
			b.ReportMetric(perRequest, "heap-B/request")
		})
	}
}
