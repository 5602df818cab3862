package signing

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"hash"
	"io"
	"math/big"
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
	case *FinishedRequest:
		return ShapeFinished
	}
	return markedShape(o)
}

// markedShape is the shape this process's transforms marked o with;
// ShapeFull when unmarked (or marked by anyone else).
func markedShape(o metav1.Object) CachedShape {
	if _, ok := o.(*FinishedRequest); ok {
		return ShapeFinished
	}
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
		if rec.serial == nil {
			return IssuedRecord{}, false
		}
		var rdns pkix.RDNSequence
		if rest, err := asn1.Unmarshal(rec.rawIssuer, &rdns); err != nil || len(rest) > 0 {
			return IssuedRecord{}, false
		}
		var issuer pkix.Name
		issuer.FillFromRDNSequence(&rdns) // as crypto/x509 fills Certificate.Issuer
		return IssuedRecord{Serial: rec.serialText(), IssuerDN: issuer.String(), RawIssuer: rec.rawIssuer,
			NotAfter: time.Unix(rec.notAfter, 0).UTC()}, true
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
		return rec.serial != nil
	}
	return len(cr.Status.Certificate) > 0
}

// RequestRevision is the request's cert-manager revision annotation, kept
// in the record of a finished request.
func RequestRevision(cr *cmapi.CertificateRequest) string {
	if rec, ok := cachedRecord(cr); ok {
		if rec.revision == 0 {
			return ""
		}
		return strconv.FormatUint(rec.revision-1, 10)
	}
	return cr.Annotations[cmapi.CertificateRequestRevisionAnnotationKey]
}

// finishedRecord is what a final request of ours keeps of its certificate
// and of the annotations revocation reads besides the revoke annotation:
// the leaf's serial (its bytes, nil when the request carries no
// certificate that parses), notAfter (Unix seconds) and issuer name (DER;
// its DN is made again when read, as crypto/x509 makes it), and the
// revision plus one (0: none, or not a number ≥ 0).
type finishedRecord struct {
	serial    []byte
	notAfter  int64
	rawIssuer []byte
	revision  uint64
}

// serialText is the serial as SerialOf writes it.
func (r finishedRecord) serialText() string { return new(big.Int).SetBytes(r.serial).Text(16) }

// A finished record in spec.request is binary, the smallest it can be (a
// cache holds one per finished request of ours): recordPrefix (a PEM CSR
// never starts with a NUL), the serial's length plus one (0: no
// certificate) and bytes, notAfter (8
// bytes, big-endian), the revision (uvarint), the issuer's length (uvarint)
// and DER, then recordMACSize bytes of seal.
const (
	recordPrefix  = "\x00r"
	recordMACSize = 16
)

// sealRecord is rec as a finished request's cached spec.request, sealed
// with the request's UID and resourceVersion.
func sealRecord(uid types.UID, resourceVersion string, rec finishedRecord) []byte {
	b := make([]byte, 0, len(recordPrefix)+1+len(rec.serial)+8+2*binary.MaxVarintLen64+len(rec.rawIssuer)+recordMACSize)
	b = append(b, recordPrefix...)
	if rec.serial == nil {
		b = append(b, 0)
	} else {
		b = append(b, byte(len(rec.serial)+1))
		b = append(b, rec.serial...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(rec.notAfter))
	b = binary.AppendUvarint(b, rec.revision)
	b = binary.AppendUvarint(b, uint64(len(rec.rawIssuer)))
	b = append(b, rec.rawIssuer...)
	return recordMAC(b, uid, resourceVersion, b)
}

// cachedRecord is the finished record a cached request carries, if this
// process's transform made it for this version of this request.
func cachedRecord(cr *cmapi.CertificateRequest) (finishedRecord, bool) {
	b := cr.Spec.Request
	if len(b) < len(recordPrefix)+recordMACSize || !bytes.HasPrefix(b, []byte(recordPrefix)) {
		return finishedRecord{}, false
	}
	body := b[:len(b)-recordMACSize]
	var sum [recordMACSize]byte
	if !hmac.Equal(b[len(body):], recordMAC(sum[:0], cr.UID, cr.ResourceVersion, body)) {
		return finishedRecord{}, false
	}
	// Made by sealRecord: well formed.
	var rec finishedRecord
	p := body[len(recordPrefix):]
	if n := int(p[0]); n > 0 {
		rec.serial, p = p[1:n], p[n:]
	} else {
		p = p[1:]
	}
	rec.notAfter = int64(binary.BigEndian.Uint64(p))
	p = p[8:]
	rev, k := binary.Uvarint(p)
	rec.revision, p = rev, p[k:]
	l, k := binary.Uvarint(p)
	rec.rawIssuer = p[k : k+int(l)]
	return rec, true
}

// recordMAC appends the seal of a finished record's body for one version of
// a request to dst.
func recordMAC(dst []byte, uid types.UID, resourceVersion string, body []byte) []byte {
	m := cacheMACs.Get().(hash.Hash)
	defer cacheMACs.Put(m)
	m.Reset()
	var sum [sha256.Size]byte
	io.WriteString(m, string(uid))
	m.Write([]byte{0})
	io.WriteString(m, resourceVersion)
	m.Write([]byte{0})
	m.Write(body)
	return append(dst, m.Sum(sum[:0])[:recordMACSize]...)
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
		if n, err := strconv.ParseUint(cr.Annotations[cmapi.CertificateRequestRevisionAnnotationKey], 10, 63); err == nil {
			rec.revision = n + 1 // a number, as revisionOf reads it
		}
		// A serial is positive and at most 20 bytes (RFC 5280, 4.1.2.2;
		// crypto/x509 refuses negative ones); one that is not reads as no
		// certificate.
		if leaf := LeafOf(cr.Status.Certificate); leaf != nil && leaf.SerialNumber.Sign() >= 0 && len(leaf.SerialNumber.Bytes()) < 255 {
			rec.serial, rec.notAfter, rec.rawIssuer = leaf.SerialNumber.Bytes(), leaf.NotAfter.Unix(), leaf.RawIssuer
			if rec.serial == nil {
				rec.serial = []byte{} // serial 0
			}
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
		ref.Controller, ref.BlockOwnerDeletion = sharedBool(ref.Controller), sharedBool(ref.BlockOwnerDeletion)
		out.OwnerReferences = append(out.OwnerReferences, ref)
	}
	if v, ok := m.Annotations[v1alpha1.RevokeAnnotation]; ok {
		out.Annotations = map[string]string{v1alpha1.RevokeAnnotation: v}
	}
	return out
}

// sharedBools are what every cached owner reference's flags point to
// (cached objects are read only, or copied before they are changed).
var sharedBools = [2]bool{false, true}

func sharedBool(p *bool) *bool {
	if p == nil {
		return nil
	}
	if *p {
		return &sharedBools[1]
	}
	return &sharedBools[0]
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

// CertificateOwner is the request's controller reference to a Certificate
// (of a CertificateRequest, or of a FinishedRequest).
func CertificateOwner(cr metav1.Object) *metav1.OwnerReference {
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
