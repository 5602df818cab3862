package signing

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"hash"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unique"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
)

// The manager's cache keeps each CertificateRequest and
// CertificateSigningRequest in the shape the controllers need of it, so that
// memory grows with the issuer's own unfinished work, not with the cluster:
//
//   - another issuer's or signer's request: a stub of its identity and its
//     issuerRef or signerName (ShapeStub), unmarked: its issuerRef or
//     signerName says it is foreign, and nothing reads a foreign request
//     beyond that;
//   - a final request of ours: its identity, finalizers, owners, the
//     annotations revocation reads and its conditions, its certificate
//     reduced to the record revocation needs, parsed once here
//     (ShapeFinished; a final request never changes back);
//   - an unfinished request of ours: whole (ShapeFull).
//
// A finished request's record rides in its cached copy's spec.request,
// which it no longer needs (finishedRecord: no annotation map per request);
// other shapes are marked under cacheAnnotationPrefix. Both are sealed
// with a key that never leaves the process (cacheSeal, sealRecord):
// anything the API server sends that looks like them is a requester's and
// is ignored, so a record cannot be forged (say, to have another
// certificate revoked), and the transforms, which client-go may run again
// on their own output, recognise what they made. Code that reads requests from the
// cache goes through the accessors here (IsFinal, CSRIsFinal, IssuedRecordOf,
// HasIssued, IsComplete), never through spec.request, status.certificate or
// status.ca of a cached object directly; what needs those reads through the
// API reader when IsComplete says no.

// CachedShape is how much of a request the cache keeps.
type CachedShape string

const (
	// ShapeFull: the object as the API server has it (managedFields aside).
	ShapeFull CachedShape = ""
	// ShapeStub: identity (name, namespace, UID, resourceVersion, creation
	// and deletion times) and spec.issuerRef or spec.signerName, nothing else.
	ShapeStub CachedShape = "stub"
	// ShapeFinished: a final request of ours: identity, finalizers,
	// owners, the revoke annotation and the conditions revocation reads;
	// spec.request holds the sealed finishedRecord instead of the CSR,
	// status.certificate and status.ca dropped.
	ShapeFinished CachedShape = "finished"
)

// cacheAnnotationPrefix marks what the transforms write on cached copies;
// it is never written to the API server.
const cacheAnnotationPrefix = "cache.ejbca-issuer.certctl.io/"

const (
	cacheShapeAnnotation = cacheAnnotationPrefix + "shape"
	cacheSealAnnotation  = cacheAnnotationPrefix + "seal"
)

// cacheKey seals what the transforms write; made at start, never shown.
var cacheKey = func() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	return k
}()

// cacheMACs reuses keyed HMACs: every predicate, index and reconcile that
// asks a cached request's shape checks its seal, and keying an HMAC costs
// more than the check.
var cacheMACs = sync.Pool{New: func() any { return hmac.New(sha256.New, cacheKey) }}

// cacheSeal authenticates the cache annotations of o's version.
func cacheSeal(o metav1.Object) string {
	a := o.GetAnnotations()
	m := cacheMACs.Get().(hash.Hash)
	defer cacheMACs.Put(m)
	m.Reset()
	var sum [sha256.Size]byte
	for _, v := range []string{string(o.GetUID()), o.GetResourceVersion(), a[cacheShapeAnnotation]} {
		io.WriteString(m, v)
		m.Write([]byte{0})
	}
	return base64.RawStdEncoding.EncodeToString(m.Sum(sum[:0])[:16])
}

// sealed: o's cache annotations were written by this process's transforms.
func sealed(o metav1.Object) bool {
	got := o.GetAnnotations()[cacheSealAnnotation]
	return got != "" && hmac.Equal([]byte(got), []byte(cacheSeal(o)))
}

// ShapeOf is the shape the cache keeps o in: ShapeStub for any request of
// another issuer or signer, wherever it was read (only its identity and
// issuerRef or signerName are ever read); otherwise ShapeFull for anything
// read from the API server (whatever annotations a requester wrote).
func ShapeOf(o metav1.Object) CachedShape {
	switch o := o.(type) {
	case *cmapi.CertificateRequest:
		if !IsOurs(o.Spec.IssuerRef) {
			return ShapeStub
		}
	case *certificatesv1.CertificateSigningRequest:
		if !IsOurSigner(o.Spec.SignerName) {
			return ShapeStub
		}
	}
	return markedShape(o)
}

// markedShape is the shape this process's transforms marked o with;
// ShapeFull when unmarked (or marked by anyone else).
func markedShape(o metav1.Object) CachedShape {
	if cr, ok := o.(*cmapi.CertificateRequest); ok {
		if _, ok := cachedRecord(cr); ok {
			return ShapeFinished
		}
		return ShapeFull
	}
	s := CachedShape(o.GetAnnotations()[cacheShapeAnnotation])
	if s == ShapeFull || !sealed(o) {
		return ShapeFull
	}
	return s
}

// IsComplete: o carries every field the API server has (it was not reduced
// by the cache).
func IsComplete(o metav1.Object) bool { return ShapeOf(o) == ShapeFull }

// IssuedRecord is what revocation needs of a request's certificate: its
// identity in EJBCA and its expiry.
type IssuedRecord struct {
	// Serial is hex, as EJBCA's REST API takes it.
	Serial string
	// IssuerDN is the issuer's DN as EJBCA's REST API takes it.
	IssuerDN string
	// RawIssuer is the issuer name's DER, to compare with another
	// certificate exactly.
	RawIssuer []byte
	NotAfter  time.Time
}

func recordOf(leaf *x509.Certificate) IssuedRecord {
	return IssuedRecord{Serial: SerialOf(leaf), IssuerDN: leaf.Issuer.String(), RawIssuer: leaf.RawIssuer, NotAfter: leaf.NotAfter}
}

// Is reports whether c is the certificate this record describes.
func (r IssuedRecord) Is(c *x509.Certificate) bool {
	return r.Serial == SerialOf(c) && string(r.RawIssuer) == string(c.RawIssuer)
}

// IssuedRecordOf is the request's certificate's record, from the cached
// record or from status.certificate; false when it carries none that parses.
func IssuedRecordOf(cr *cmapi.CertificateRequest) (IssuedRecord, bool) {
	if rec, ok := cachedRecord(cr); ok {
		rawB64, dn, ok := strings.Cut(rec.issuer, " ")
		raw, err := base64.StdEncoding.DecodeString(rawB64)
		unix, err2 := strconv.ParseInt(rec.notAfter, 10, 64)
		if !ok || rec.serial == "" || err != nil || err2 != nil {
			return IssuedRecord{}, false
		}
		return IssuedRecord{Serial: rec.serial, IssuerDN: dn, RawIssuer: raw, NotAfter: time.Unix(unix, 0).UTC()}, true
	}
	leaf := LeafOf(cr.Status.Certificate)
	if leaf == nil {
		return IssuedRecord{}, false
	}
	return recordOf(leaf), true
}

// HasIssued: the request carries a certificate (whole or as a record),
// without parsing it.
func HasIssued(cr *cmapi.CertificateRequest) bool {
	if rec, ok := cachedRecord(cr); ok {
		return rec.serial != ""
	}
	return len(cr.Status.Certificate) > 0
}

// RequestRevision is the request's cert-manager revision annotation, kept
// in the record of a finished request.
func RequestRevision(cr *cmapi.CertificateRequest) string {
	if rec, ok := cachedRecord(cr); ok {
		return rec.revision
	}
	return cr.Annotations[cmapi.CertificateRequestRevisionAnnotationKey]
}

// finishedRecord is what a final request of ours keeps of its certificate
// and of the annotations revocation reads besides the revoke annotation:
// the leaf's serial (hex) and notAfter (Unix seconds), its issuer (the
// name's DER in base64, a space, its DN), and the revision (a number, or
// empty). Empty certificate fields when the request carries no
// certificate that parses.
type finishedRecord struct {
	serial, notAfter, issuer, revision string
}

// recordPrefix starts a finished record in spec.request (a PEM CSR never
// starts with a NUL); recordSep separates its fields, the last its seal.
const (
	recordPrefix = "\x00ejbca-issuer-record\x00"
	recordSep    = "\x00"
)

// sealRecord is rec as a finished request's cached spec.request, sealed
// with the request's UID and resourceVersion.
func sealRecord(uid types.UID, resourceVersion string, rec finishedRecord) []byte {
	b := make([]byte, 0, len(recordPrefix)+len(rec.serial)+len(rec.notAfter)+len(rec.issuer)+len(rec.revision)+4*len(recordSep)+22)
	b = append(b, recordPrefix...)
	for _, f := range []string{rec.serial, rec.notAfter, rec.revision, rec.issuer} {
		b = append(b, f...)
		b = append(b, recordSep...)
	}
	return append(b, recordMAC(uid, resourceVersion, b)...)
}

// cachedRecord is the finished record a cached request carries, if this
// process's transform made it for this version of this request.
func cachedRecord(cr *cmapi.CertificateRequest) (finishedRecord, bool) {
	b := cr.Spec.Request
	if !bytes.HasPrefix(b, []byte(recordPrefix)) {
		return finishedRecord{}, false
	}
	i := bytes.LastIndex(b, []byte(recordSep))
	if !hmac.Equal(b[i+len(recordSep):], []byte(recordMAC(cr.UID, cr.ResourceVersion, b[:i+len(recordSep)]))) {
		return finishedRecord{}, false
	}
	// The issuer, last, is the only field that may hold a NUL.
	f := strings.SplitN(string(b[len(recordPrefix):i]), recordSep, 4)
	if len(f) != 4 {
		return finishedRecord{}, false
	}
	return finishedRecord{serial: f[0], notAfter: f[1], revision: f[2], issuer: f[3]}, true
}

// recordMAC authenticates a finished record's body for one version of a
// request.
func recordMAC(uid types.UID, resourceVersion string, body []byte) string {
	m := cacheMACs.Get().(hash.Hash)
	defer cacheMACs.Put(m)
	m.Reset()
	var sum [sha256.Size]byte
	io.WriteString(m, string(uid))
	m.Write([]byte{0})
	io.WriteString(m, resourceVersion)
	m.Write([]byte{0})
	m.Write(body)
	return base64.RawStdEncoding.EncodeToString(m.Sum(sum[:0])[:16])
}

// TrimCertificateRequest is the cache transform of CertificateRequests.
func TrimCertificateRequest(in any) (any, error) {
	cr, ok := in.(*cmapi.CertificateRequest)
	if !ok {
		return in, nil
	}
	if markedShape(cr) != ShapeFull {
		return cr, nil // already reduced by this transform
	}
	cr.ManagedFields = nil
	dropCacheAnnotations(&cr.ObjectMeta)
	switch {
	case !IsOurs(cr.Spec.IssuerRef):
		stub := &cmapi.CertificateRequest{TypeMeta: cr.TypeMeta, ObjectMeta: stubMeta(&cr.ObjectMeta)}
		stub.Spec.IssuerRef = cmmeta.IssuerReference{Name: intern(cr.Spec.IssuerRef.Name), Kind: intern(cr.Spec.IssuerRef.Kind), Group: intern(cr.Spec.IssuerRef.Group)}
		return stub, nil
	case IsFinal(cr):
		rec := finishedRecord{}
		if n, err := strconv.Atoi(cr.Annotations[cmapi.CertificateRequestRevisionAnnotationKey]); err == nil {
			rec.revision = strconv.Itoa(n) // a number, as revisionOf reads it
		}
		if leaf := LeafOf(cr.Status.Certificate); leaf != nil {
			issued := recordOf(leaf)
			rec.serial, rec.notAfter = issued.Serial, strconv.FormatInt(issued.NotAfter.Unix(), 10)
			rec.issuer = base64.StdEncoding.EncodeToString(issued.RawIssuer) + " " + issued.IssuerDN
		}
		ref := cr.Spec.IssuerRef
		cr.Spec = cmapi.CertificateRequestSpec{IssuerRef: cmmeta.IssuerReference{Name: intern(ref.Name), Kind: intern(ref.Kind), Group: intern(ref.Group)},
			Request: sealRecord(cr.UID, cr.ResourceVersion, rec)}
		cr.Status.Certificate, cr.Status.CA, cr.Status.FailureTime = nil, nil, nil
		cr.ObjectMeta = finishedMeta(&cr.ObjectMeta)
		cr.Status.Conditions = finishedConditions(cr.Status.Conditions)
	}
	return cr, nil
}

// TrimCertificateSigningRequest is the cache transform of Kubernetes CSRs.
// A final CSR of ours needs nothing beyond being final: the CSR
// reconciler forgets it, and revocation serves CertificateRequests only.
func TrimCertificateSigningRequest(in any) (any, error) {
	csr, ok := in.(*certificatesv1.CertificateSigningRequest)
	if !ok {
		return in, nil
	}
	if markedShape(csr) != ShapeFull {
		return csr, nil
	}
	csr.ManagedFields = nil
	dropCacheAnnotations(&csr.ObjectMeta)
	var shape CachedShape
	switch {
	case !IsOurSigner(csr.Spec.SignerName):
		shape = ShapeStub
	case CSRIsFinal(csr):
		shape = ShapeFinished
	default:
		return csr, nil
	}
	stub := &certificatesv1.CertificateSigningRequest{TypeMeta: csr.TypeMeta, ObjectMeta: stubMeta(&csr.ObjectMeta)}
	stub.Spec.SignerName = intern(csr.Spec.SignerName)
	if shape == ShapeFinished {
		setAnnotation(&stub.ObjectMeta, cacheShapeAnnotation, string(ShapeFinished))
		setAnnotation(&stub.ObjectMeta, cacheSealAnnotation, cacheSeal(stub))
	}
	return stub, nil
}

// TrimCertificate is the cache transform of cert-manager Certificates:
// those of other issuers are stubs (the revocation controller looks only at
// the Certificates that own requests of ours).
func TrimCertificate(in any) (any, error) {
	crt, ok := in.(*cmapi.Certificate)
	if !ok {
		return in, nil
	}
	if markedShape(crt) != ShapeFull {
		return crt, nil
	}
	crt.ManagedFields = nil
	dropCacheAnnotations(&crt.ObjectMeta)
	if IsOurs(crt.Spec.IssuerRef) {
		return crt, nil
	}
	stub := &cmapi.Certificate{TypeMeta: crt.TypeMeta, ObjectMeta: stubMeta(&crt.ObjectMeta)}
	stub.Spec.IssuerRef = crt.Spec.IssuerRef
	setAnnotation(&stub.ObjectMeta, cacheShapeAnnotation, string(ShapeStub))
	setAnnotation(&stub.ObjectMeta, cacheSealAnnotation, cacheSeal(stub))
	return stub, nil
}

// stubMeta is an object's identity.
func stubMeta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: m.Name, Namespace: intern(m.Namespace), UID: m.UID, ResourceVersion: m.ResourceVersion, Generation: m.Generation,
		CreationTimestamp: m.CreationTimestamp, DeletionTimestamp: m.DeletionTimestamp,
	}
}

// finishedMeta is what a final request of ours keeps of its metadata: its
// identity, finalizers and owners, and the revoke annotation, the only one
// read of it besides the revision (kept in its finishedRecord); no labels,
// and no annotation map at all without the revoke annotation. Strings
// shared by many requests are interned.
func finishedMeta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	out := stubMeta(m)
	out.DeletionGracePeriodSeconds, out.Finalizers = m.DeletionGracePeriodSeconds, m.Finalizers
	for i := range m.Finalizers {
		m.Finalizers[i] = intern(m.Finalizers[i])
	}
	for _, ref := range m.OwnerReferences {
		ref.APIVersion, ref.Kind = intern(ref.APIVersion), intern(ref.Kind)
		out.OwnerReferences = append(out.OwnerReferences, ref)
	}
	if v, ok := m.Annotations[v1alpha1.RevokeAnnotation]; ok {
		out.Annotations = map[string]string{v1alpha1.RevokeAnnotation: v}
	}
	return out
}

// intern shares one copy of a string that many cached objects hold.
func intern(s string) string { return unique.Make(s).Value() }

func dropCacheAnnotations(m *metav1.ObjectMeta) {
	for k := range m.Annotations {
		if strings.HasPrefix(k, cacheAnnotationPrefix) {
			delete(m.Annotations, k)
		}
	}
}

// finishedConditionTypes are the conditions of a final request that
// anything reads (revocation: when it was issued, its issuance record, its
// revocation); the others (Approved, Denied, other controllers') are not
// kept.
var finishedConditionTypes = []cmapi.CertificateRequestConditionType{
	cmapi.CertificateRequestConditionReady, ConditionIssuanceRecord, v1alpha1.ConditionRevoked, v1alpha1.ConditionIssuedWithRevokeAnnotation,
}

// finishedConditions is finishedConditionTypes of a final request's
// conditions, in a slice of their own, the texts that repeat from one
// request to the next shared (types, reasons, Ready's message).
func finishedConditions(conds []cmapi.CertificateRequestCondition) []cmapi.CertificateRequestCondition {
	n := 0
	for _, c := range conds {
		if slices.Contains(finishedConditionTypes, c.Type) {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	kept := make([]cmapi.CertificateRequestCondition, 0, n)
	for _, c := range conds {
		if !slices.Contains(finishedConditionTypes, c.Type) {
			continue
		}
		c.Type = cmapi.CertificateRequestConditionType(intern(string(c.Type)))
		c.Status = cmmeta.ConditionStatus(intern(string(c.Status)))
		c.Reason = intern(c.Reason)
		if c.Type == cmapi.CertificateRequestConditionReady {
			c.Message = intern(c.Message) // the others name the certificate
		}
		kept = append(kept, c)
	}
	return kept
}

func setAnnotation(m *metav1.ObjectMeta, k, v string) {
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[k] = v
}

// CertificateOwner is the request's controller reference to a Certificate.
func CertificateOwner(cr *cmapi.CertificateRequest) *metav1.OwnerReference {
	ref := metav1.GetControllerOf(cr)
	if ref == nil || ref.Kind != cmapi.CertificateKind || ref.APIVersion != cmapi.SchemeGroupVersion.String() {
		return nil
	}
	return ref
}

// LeafOf parses the first certificate of a PEM chain, and only that one
// (it runs on every final request the cache sees and in every status
// write); nil if it does not parse.
func LeafOf(pemChain []byte) *x509.Certificate {
	block, _ := pem.Decode(pemChain)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil
	}
	return leaf
}

// SerialOf is the serial as EJBCA's REST API takes it: hex.
func SerialOf(c *x509.Certificate) string { return c.SerialNumber.Text(16) }
