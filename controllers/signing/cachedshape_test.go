package signing

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
)

func testChain(t testing.TB) (leaf *x509.Certificate, chain []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Test CA", Organization: []string{"Test"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(0x1234abcd), Subject: pkix.Name{CommonName: "leaf"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return leaf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestTrimCertificateRequest: what the cache keeps of each kind of
// CertificateRequest, and what the accessors read back from it.
func TestTrimCertificateRequest(t *testing.T) {
	leaf, chain := testChain(t)
	ours := cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: v1alpha1.IssuerKind, Name: "ejbca"}
	foreign := cmmeta.IssuerReference{Group: "cert-manager.io", Kind: "ClusterIssuer", Name: "ca"}
	ready := cmapi.CertificateRequestCondition{Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionTrue, Reason: cmapi.CertificateRequestReasonIssued}
	pending := cmapi.CertificateRequestCondition{Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionFalse, Reason: cmapi.CertificateRequestReasonPending}
	denied := cmapi.CertificateRequestCondition{Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionFalse, Reason: cmapi.CertificateRequestReasonDenied}
	revoked := cmapi.CertificateRequestCondition{Type: v1alpha1.ConditionRevoked, Status: cmmeta.ConditionTrue, Reason: "superseded"}
	isController := true
	request := func(ref cmmeta.IssuerReference, conds ...cmapi.CertificateRequestCondition) *cmapi.CertificateRequest {
		return &cmapi.CertificateRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "r", UID: "uid", ResourceVersion: "42",
				Labels: map[string]string{"big": strings.Repeat("l", 60)},
				Annotations: map[string]string{
					v1alpha1.RevokeAnnotation: "keyCompromise", cmapi.CertificateRequestRevisionAnnotationKey: "3",
					// A requester's forgery of the cache's own record.
					cacheShapeAnnotation: string(ShapeFinished), cacheSealAnnotation: "AAAAAAAAAAAAAAAAAAAAAA",
				},
				Finalizers:      []string{v1alpha1.RevocationFinalizer},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "cert-manager.io/v1", Kind: "Certificate", Name: "c", UID: "cu", Controller: &isController}},
				ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "m"}},
			},
			Spec:   cmapi.CertificateRequestSpec{IssuerRef: ref, Request: []byte(strings.Repeat("r", 2000)), Usages: []cmapi.KeyUsage{cmapi.UsageServerAuth}},
			Status: cmapi.CertificateRequestStatus{Conditions: conds, Certificate: chain, CA: chain},
		}
	}
	trim := func(cr *cmapi.CertificateRequest) *cmapi.CertificateRequest {
		out, err := TrimCertificateRequest(cr)
		if err != nil {
			t.Fatal(err)
		}
		once := out.(*cmapi.CertificateRequest)
		// client-go may run a transform again on its own output.
		again, err := TrimCertificateRequest(once.DeepCopy())
		if err != nil {
			t.Fatal(err)
		}
		if !equality.Semantic.DeepEqual(again, once) {
			t.Fatalf("the transform is not idempotent:\n%+v\n%+v", once, again)
		}
		return once
	}

	t.Run("a forged record on an object from the API server is not believed", func(t *testing.T) {
		cr := request(ours, pending)
		if ShapeOf(cr) != ShapeFull || IsFinal(cr) {
			t.Errorf("forged annotations make a request read as %q", ShapeOf(cr))
		}
		// A record in spec.request as this process writes them, with a
		// seal made without its key.
		forged := sealRecord(cr.UID, cr.ResourceVersion, finishedRecord{serial: []byte{0xff}, notAfter: 1999999999, rawIssuer: []byte{0x30, 0}, revision: 4})
		for i := len(forged) - recordMACSize; i < len(forged); i++ {
			forged[i] = 'A'
		}
		cr.Spec.Request = forged
		cr.Status.Certificate = nil
		if ShapeOf(cr) != ShapeFull || IsFinal(cr) || HasIssued(cr) {
			t.Errorf("a forged record makes a request read as %q", ShapeOf(cr))
		}
		if _, ok := IssuedRecordOf(cr); ok {
			t.Error("a forged serial reads as the request's certificate")
		}
		// A record this process made, on another version of the request.
		made := trim(request(ours, ready))
		replayed := request(ours, pending)
		replayed.Spec.Request, replayed.ResourceVersion = made.Spec.Request, "43"
		if ShapeOf(replayed) != ShapeFull || IsFinal(replayed) {
			t.Error("a record made for one version of a request is believed on another")
		}
	})

	t.Run("another issuer's, final or not: a stub of its identity and issuerRef", func(t *testing.T) {
		for _, conds := range [][]cmapi.CertificateRequestCondition{nil, {ready}} {
			got := trim(request(foreign, conds...))
			if ShapeOf(got) != ShapeStub || IsComplete(got) {
				t.Errorf("shape %q, want stub", ShapeOf(got))
			}
			if got.UID != "uid" || got.Name != "r" || got.Namespace != "ns" || got.ResourceVersion != "42" || got.Spec.IssuerRef != foreign {
				t.Errorf("identity lost: %+v", got.ObjectMeta)
			}
			if len(got.Spec.Request) > 0 || len(got.Status.Certificate) > 0 || len(got.Status.CA) > 0 || len(got.Status.Conditions) > 0 ||
				len(got.Labels) > 0 || len(got.Annotations) > 0 || len(got.ManagedFields) > 0 || len(got.OwnerReferences) > 0 || len(got.Finalizers) > 0 {
				t.Errorf("a foreign request keeps more than its identity: %+v", got)
			}
			if _, ok := IssuedRecordOf(got); ok || HasIssued(got) {
				t.Error("a stub reads as issued")
			}
		}
	})
	t.Run("ours, unfinished: whole, the forged record dropped", func(t *testing.T) {
		got := trim(request(ours, pending))
		if !IsComplete(got) || len(got.Spec.Request) != 2000 || len(got.Status.Certificate) == 0 {
			t.Errorf("an unfinished request of ours is not kept whole: shape %q", ShapeOf(got))
		}
		if _, forged := got.Annotations[cacheShapeAnnotation]; forged || len(got.ManagedFields) > 0 {
			t.Error("the requester's cache annotations or managedFields were kept")
		}
		if IsFinal(got) {
			t.Error("a forged shape annotation made a pending request final")
		}
	})
	t.Run("ours, issued: metadata, conditions and the parsed record", func(t *testing.T) {
		approved := cmapi.CertificateRequestCondition{Type: cmapi.CertificateRequestConditionApproved, Status: cmmeta.ConditionTrue, Reason: "cert-manager.io"}
		got := trim(request(ours, approved, ready, revoked))
		if len(got.Status.Conditions) != 2 || got.Status.Conditions[0].Type != ready.Type || got.Status.Conditions[1].Type != revoked.Type {
			t.Errorf("conditions kept: %+v; want Ready and Revoked (what revocation reads), not Approved", got.Status.Conditions)
		}
		if ShapeOf(got) != ShapeFinished || IsComplete(got) || !IsFinal(got) {
			t.Fatalf("shape %q, want finished", ShapeOf(got))
		}
		if len(got.Spec.Request) > 200 || bytes.Contains(got.Spec.Request, []byte("rrrr")) || len(got.Status.Certificate) > 0 || len(got.Status.CA) > 0 || len(got.Spec.Usages) > 0 {
			t.Errorf("the request (%d bytes), certificate or CA is still cached", len(got.Spec.Request))
		}
		if got.Spec.IssuerRef != ours || len(got.Finalizers) != 1 || got.Annotations[v1alpha1.RevokeAnnotation] != "keyCompromise" ||
			RequestRevision(got) != "3" || CertificateOwner(got) == nil || ConditionOf(got, v1alpha1.ConditionRevoked) == nil {
			t.Errorf("what revocation reads is lost: %+v", got)
		}
		rec, ok := IssuedRecordOf(got)
		if !ok || !HasIssued(got) {
			t.Fatal("no issued record")
		}
		if rec.Serial != "1234abcd" || rec.IssuerDN != leaf.Issuer.String() || !rec.NotAfter.Equal(leaf.NotAfter) || !rec.Is(leaf) {
			t.Errorf("record %+v does not describe the leaf (issuer %s)", rec, leaf.Issuer)
		}
		// Memory: no annotation but the revoke one (the record rides in
		// spec.request), no labels; without the revoke annotation, no
		// annotation map at all.
		if len(got.Annotations) != 1 || len(got.Labels) > 0 {
			t.Errorf("a finished request keeps annotations %v, labels %v; want only the revoke annotation", got.Annotations, got.Labels)
		}
		plain := request(ours, ready)
		delete(plain.Annotations, v1alpha1.RevokeAnnotation)
		if other := trim(plain); other.Annotations != nil || RequestRevision(other) != "3" {
			t.Errorf("a finished request without the revoke annotation keeps annotations %v (revision %q)", other.Annotations, RequestRevision(other))
		}
		whole, _ := IssuedRecordOf(request(ours, ready)) // forged annotations ignored
		if whole.Serial != rec.Serial || whole.IssuerDN != rec.IssuerDN || !whole.Is(leaf) {
			t.Errorf("the record read from a whole request %+v differs from the cached one %+v", whole, rec)
		}
	})
	t.Run("ours, denied without a certificate: finished, no record", func(t *testing.T) {
		cr := request(ours, denied)
		cr.Status.Certificate = nil
		got := trim(cr)
		if ShapeOf(got) != ShapeFinished || !IsFinal(got) {
			t.Fatalf("shape %q, want finished", ShapeOf(got))
		}
		if _, ok := IssuedRecordOf(got); ok || HasIssued(got) {
			t.Error("a request with no certificate has a record")
		}
	})
}

// TestTrimCertificateSigningRequest: foreign CSRs are stubs whatever their
// size; final ones of ours are finished stubs; unfinished ones of ours are
// whole.
func TestTrimCertificateSigningRequest(t *testing.T) {
	ours := v1alpha1.IssuerSignerName(v1alpha1.ClusterIssuerKind, "", "ejbca")
	csr := func(signer string, certificate []byte, conds ...certificatesv1.CertificateSigningRequestCondition) *certificatesv1.CertificateSigningRequest {
		return &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: "c", UID: "u", Annotations: map[string]string{"big": strings.Repeat("a", 100000)}},
			Spec: certificatesv1.CertificateSigningRequestSpec{SignerName: signer, Request: []byte(strings.Repeat("r", 1<<20)),
				Extra: map[string]certificatesv1.ExtraValue{"x": {strings.Repeat("e", 1000)}}},
			Status: certificatesv1.CertificateSigningRequestStatus{Certificate: certificate, Conditions: conds},
		}
	}
	trim := func(in *certificatesv1.CertificateSigningRequest) *certificatesv1.CertificateSigningRequest {
		out, err := TrimCertificateSigningRequest(in)
		if err != nil {
			t.Fatal(err)
		}
		again, err := TrimCertificateSigningRequest(out.(*certificatesv1.CertificateSigningRequest).DeepCopy())
		if err != nil {
			t.Fatal(err)
		}
		if !equality.Semantic.DeepEqual(again, out) {
			t.Fatal("the transform is not idempotent")
		}
		return out.(*certificatesv1.CertificateSigningRequest)
	}
	approved := certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue}
	denied := certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateDenied, Status: corev1.ConditionTrue}
	small := func(got *certificatesv1.CertificateSigningRequest) bool {
		return len(got.Spec.Request) == 0 && len(got.Status.Certificate) == 0 && len(got.Spec.Extra) == 0 && len(got.Annotations) <= 2 && got.Annotations["big"] == ""
	}
	if got := trim(csr("kubernetes.io/kubelet-serving", nil, approved)); ShapeOf(got) != ShapeStub || !small(got) || got.Spec.SignerName != "kubernetes.io/kubelet-serving" || got.UID != "u" {
		t.Errorf("a foreign CSR is cached as %q with %d request bytes", ShapeOf(got), len(got.Spec.Request))
	}
	for _, final := range []*certificatesv1.CertificateSigningRequest{csr(ours, []byte("cert"), approved), csr(ours, nil, denied)} {
		got := trim(final)
		if ShapeOf(got) != ShapeFinished || !small(got) || !CSRIsFinal(got) {
			t.Errorf("a final CSR of ours is cached as %q (final: %v)", ShapeOf(got), CSRIsFinal(got))
		}
	}
	if got := trim(csr(ours, nil, approved)); !IsComplete(got) || len(got.Spec.Request) != 1<<20 || CSRIsFinal(got) {
		t.Errorf("an unfinished CSR of ours is cached as %q", ShapeOf(got))
	}
}

// TestFinishedRecordKeepsTheIssuedCertificate: a finished request's record
// reads back the serial, issuer DN and expiry crypto/x509 reads from its
// certificate, for issuer names as EJBCA CAs have them (multi-valued RDNs,
// attributes crypto/x509 does not name, non-ASCII) and serials of every
// length EJBCA gives (up to 20 bytes, and serial 0).
func TestFinishedRecordKeepsTheIssuedCertificate(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	uid := pkix.AttributeTypeAndValue{Type: []int{0, 9, 2342, 19200300, 100, 1, 1}, Value: "ca-7"}
	names := []pkix.Name{
		{CommonName: "ManagementCA", Organization: []string{"EJBCA Container Quickstart"}},
		{CommonName: "Issuing CA G2", OrganizationalUnit: []string{"PKI", "Ops"}, Country: []string{"SE"}, SerialNumber: "42", ExtraNames: []pkix.AttributeTypeAndValue{uid}},
		{ExtraNames: []pkix.AttributeTypeAndValue{{Type: []int{2, 5, 4, 3}, Value: "Zoë's CA, \"quoted\" + plus"}}},
	}
	serials := []*big.Int{big.NewInt(0), big.NewInt(1), new(big.Int).SetBytes(bytes.Repeat([]byte{0x7f}, 20))}
	for i, name := range names {
		ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: name, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true}
		for _, serial := range serials {
			tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "leaf"}, NotBefore: time.Now().Add(-time.Hour),
				NotAfter: time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, key)
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			cr := &cmapi.CertificateRequest{
				ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "r", UID: "u", ResourceVersion: "9"},
				Spec:       cmapi.CertificateRequestSpec{IssuerRef: cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: v1alpha1.IssuerKind, Name: "e"}},
				Status: cmapi.CertificateRequestStatus{Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
					Conditions: []cmapi.CertificateRequestCondition{{Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionTrue, Reason: cmapi.CertificateRequestReasonIssued}}},
			}
			out, err := TrimCertificateRequest(cr)
			if err != nil {
				t.Fatal(err)
			}
			got := out.(*cmapi.CertificateRequest)
			if ShapeOf(got) != ShapeFinished || !HasIssued(got) {
				t.Fatalf("issuer %d serial %s: shape %q", i, serial, ShapeOf(got))
			}
			rec, ok := IssuedRecordOf(got)
			if want := recordOf(leaf); !ok || rec.Serial != want.Serial || rec.IssuerDN != want.IssuerDN || !rec.NotAfter.Equal(want.NotAfter) || !rec.Is(leaf) {
				t.Errorf("issuer %d serial %s: record %+v, want %+v", i, serial, rec, want)
			}
		}
	}
}
