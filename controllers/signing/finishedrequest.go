package signing

import (
	"encoding/hex"
	"math"
	"slices"
	"strings"
	"time"
	"unique"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/google/uuid"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// FinishedRequest is how the cache's informer holds a final
// CertificateRequest of ours (ShapeFinished): a cluster keeps one or more
// per Certificate for as long as it exists, and a typed
// CertificateRequest costs 576 bytes before any of its fields is set, its
// conditions more. This holds the same content in about half
// (BenchmarkFinishedRequestHeld: 480-510 bytes a request against
// 1,000-1,220 typed).
//
// It is a different type on purpose: nothing that reads the cache can take
// it for a whole request. Reads through the cache's client get
// DeepCopyObject's answer, a *cmapi.CertificateRequest in ShapeFinished,
// exactly as TrimCertificateRequest leaves it; event handlers, predicates
// and index functions, which see the informer's own objects, read it
// through CachedRequest. It is read only: its setters refuse what it
// cannot hold.
type FinishedRequest struct {
	name, namespace, uid, resourceVersion string
	generation                            int64
	// created is Unix nanoseconds (the API server keeps seconds).
	created    int64
	deletion   *heldDeletion
	finalizers []string
	// owner is the one owner most requests have, their Certificate, in
	// 40 bytes instead of 144; owners any other owner references.
	owner       *heldOwner
	owners      []metav1.OwnerReference
	annotations map[string]string
	issuerRef   unique.Handle[cmmeta.IssuerReference]
	record      string
	// The Ready and issuance record conditions, when they are as this
	// issuer and cert-manager write them, are held as what differs from
	// one request to the next (ready: shared by most; issuanceSeal: the
	// record's seal, its serial and issuer being the record's), their
	// times (Unix nanoseconds, noTime: none) and their places among the
	// request's conditions; the other conditions as they are.
	ready        unique.Handle[finishedReady]
	readyAt      int64
	issuanceSeal string
	issuanceAt   int64
	// issuerDN is the record's issuer as its DN (made once, not per read).
	issuerDN                  unique.Handle[string]
	conditions                []cmapi.CertificateRequestCondition
	readyIndex, issuanceIndex uint8
}

// heldDeletion is a request's deletion, when it is being deleted.
type heldDeletion struct {
	at    *metav1.Time
	grace *int64
}

// heldOwner is a request's only owner reference when it is a Certificate's
// controller reference (as cert-manager makes every request) with a UID as
// the API server makes them.
type heldOwner struct {
	name               string
	uid                uuid.UUID
	blockOwnerDeletion *bool
}

// holdOwner is refs as a heldOwner, if it is one.
func holdOwner(refs []metav1.OwnerReference) (*heldOwner, bool) {
	if len(refs) != 1 {
		return nil, false
	}
	r := refs[0]
	if r.APIVersion != certificateAPIVersion || r.Kind != cmapi.CertificateKind || r.Controller == nil || !*r.Controller {
		return nil, false
	}
	id, err := uuid.Parse(string(r.UID))
	if err != nil || id.String() != string(r.UID) {
		return nil, false
	}
	return &heldOwner{name: r.Name, uid: id, blockOwnerDeletion: sharedBool(r.BlockOwnerDeletion)}, true
}

func (o *heldOwner) refs() []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: certificateAPIVersion, Kind: cmapi.CertificateKind, Name: o.name, UID: types.UID(o.uid.String()),
		Controller: &sharedBools[1], BlockOwnerDeletion: o.blockOwnerDeletion}}
}

var certificateAPIVersion = cmapi.SchemeGroupVersion.String()

// finishedReady is a final request's Ready condition but its time.
type finishedReady struct {
	status          cmmeta.ConditionStatus
	reason, message string
}

// noTime is a held condition's time when it has none.
const noTime = math.MinInt64

func heldTime(c cmapi.CertificateRequestCondition) int64 {
	if c.LastTransitionTime == nil {
		return noTime
	}
	return c.LastTransitionTime.UnixNano()
}

func timeOf(at int64) *metav1.Time {
	if at == noTime {
		return nil
	}
	t := metav1.NewTime(time.Unix(0, at))
	return &t
}

// compactFinished holds cr, a request TrimCertificateRequest left in
// ShapeFinished (its slices are taken, not copied).
func compactFinished(cr *cmapi.CertificateRequest) *FinishedRequest {
	f := &FinishedRequest{
		name: cr.Name, namespace: cr.Namespace, uid: string(cr.UID), resourceVersion: cr.ResourceVersion, generation: cr.Generation,
		finalizers: cr.Finalizers, annotations: cr.Annotations,
		issuerRef: unique.Make(cr.Spec.IssuerRef), record: string(cr.Spec.Request),
	}
	if !cr.CreationTimestamp.IsZero() {
		f.created = cr.CreationTimestamp.UnixNano()
	}
	if cr.DeletionTimestamp != nil || cr.DeletionGracePeriodSeconds != nil {
		f.deletion = &heldDeletion{at: cr.DeletionTimestamp, grace: cr.DeletionGracePeriodSeconds}
	}
	if o, ok := holdOwner(cr.OwnerReferences); ok {
		f.owner = o
	} else {
		f.owners = cr.OwnerReferences
	}
	// The issuance record's message names the certificate the record
	// holds: only its seal differs from what the record says.
	var rest []cmapi.CertificateRequestCondition
	noReady := unique.Handle[finishedReady]{}
	for i, c := range cr.Status.Conditions {
		switch {
		case i > 255:
		case c.Type == cmapi.CertificateRequestConditionReady && f.ready == noReady:
			f.ready = unique.Make(finishedReady{status: c.Status, reason: c.Reason, message: c.Message})
			f.readyAt, f.readyIndex = heldTime(c), uint8(i)
			continue
		case c.Type == ConditionIssuanceRecord && f.issuanceSeal == "" && c.Status == cmmeta.ConditionTrue && c.Reason == issuanceRecordReason:
			rec, ok := IssuedRecordOf(cr)
			if !ok {
				break
			}
			seal, ok := strings.CutPrefix(c.Message, issuance{Serial: rec.Serial, IssuerDN: rec.IssuerDN}.message(""))
			if raw, err := hex.DecodeString(seal); ok && err == nil && len(raw) > 0 && hex.EncodeToString(raw) == seal {
				f.issuanceSeal, f.issuanceAt, f.issuanceIndex = string(raw), heldTime(c), uint8(i)
				f.issuerDN = unique.Make(rec.IssuerDN)
				continue
			}
		}
		rest = append(rest, c)
	}
	if len(rest) > 0 {
		f.conditions = slices.Clip(rest)
	}
	return f
}

// CacheCertificateRequest is the cache's transform of CertificateRequests:
// TrimCertificateRequest's shape, a final request of ours held as a
// FinishedRequest.
func CacheCertificateRequest(in any) (any, error) {
	out, err := TrimCertificateRequest(in)
	if cr, ok := out.(*cmapi.CertificateRequest); ok && err == nil && markedShape(cr) == ShapeFinished {
		return compactFinished(cr), nil
	}
	return out, err
}

// CachedRequest is the request an object from the CertificateRequest
// informer stands for: o itself, or a FinishedRequest's view. The view
// shares the cache's slices: read it, never change it.
func CachedRequest(o any) (*cmapi.CertificateRequest, bool) {
	switch o := o.(type) {
	case *cmapi.CertificateRequest:
		return o, true
	case *FinishedRequest:
		return o.view(), true
	}
	return nil, false
}

// CachedIssuerRef is the issuer an object from the CertificateRequest
// informer names (without making a view of a FinishedRequest).
func CachedIssuerRef(o any) (cmmeta.IssuerReference, bool) {
	switch o := o.(type) {
	case *cmapi.CertificateRequest:
		return o.Spec.IssuerRef, true
	case *FinishedRequest:
		return o.IssuerRef(), true
	}
	return cmmeta.IssuerReference{}, false
}

// view is f as TrimCertificateRequest left it, sharing f's slices but
// its conditions'.
func (f *FinishedRequest) view() *cmapi.CertificateRequest {
	cr := &cmapi.CertificateRequest{
		ObjectMeta: metav1.ObjectMeta{
			Name: f.name, Namespace: f.namespace, UID: types.UID(f.uid), ResourceVersion: f.resourceVersion, Generation: f.generation,
			CreationTimestamp: f.GetCreationTimestamp(), DeletionTimestamp: f.GetDeletionTimestamp(), DeletionGracePeriodSeconds: f.GetDeletionGracePeriodSeconds(),
			Finalizers: f.finalizers, OwnerReferences: f.GetOwnerReferences(), Annotations: f.annotations,
		},
		Spec: cmapi.CertificateRequestSpec{IssuerRef: f.issuerRef.Value(), Request: []byte(f.record)},
	}
	if f.ready == (unique.Handle[finishedReady]{}) && f.issuanceSeal == "" {
		cr.Status.Conditions = f.conditions
		return cr
	}
	type placed struct {
		index int
		c     cmapi.CertificateRequestCondition
	}
	var held []placed
	if f.ready != (unique.Handle[finishedReady]{}) {
		r := f.ready.Value()
		held = append(held, placed{int(f.readyIndex), cmapi.CertificateRequestCondition{Type: cmapi.CertificateRequestConditionReady,
			Status: r.status, Reason: r.reason, Message: r.message, LastTransitionTime: timeOf(f.readyAt)}})
	}
	if f.issuanceSeal != "" {
		rec, _ := cachedRecord(cr)
		held = append(held, placed{int(f.issuanceIndex), cmapi.CertificateRequestCondition{Type: ConditionIssuanceRecord, Status: cmmeta.ConditionTrue,
			Reason: issuanceRecordReason, Message: issuance{Serial: rec.serialText(), IssuerDN: f.issuerDN.Value()}.message(hex.EncodeToString([]byte(f.issuanceSeal))),
			LastTransitionTime: timeOf(f.issuanceAt)}})
	}
	slices.SortFunc(held, func(a, b placed) int { return a.index - b.index })
	conds := make([]cmapi.CertificateRequestCondition, 0, len(f.conditions)+len(held))
	rest := f.conditions
	for _, h := range held {
		for len(rest) > 0 && len(conds) < h.index {
			conds, rest = append(conds, rest[0]), rest[1:]
		}
		conds = append(conds, h.c)
	}
	cr.Status.Conditions = append(conds, rest...)
	return cr
}

// IssuerRef is the issuer the request names.
func (f *FinishedRequest) IssuerRef() cmmeta.IssuerReference { return f.issuerRef.Value() }

// DeepCopyObject is the request as the cache's readers get it: a
// *cmapi.CertificateRequest in ShapeFinished, of its own.
func (f *FinishedRequest) DeepCopyObject() runtime.Object { return f.view().DeepCopy() }

// GetObjectKind: informers' objects carry no type meta.
func (f *FinishedRequest) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

func (f *FinishedRequest) GetNamespace() string       { return f.namespace }
func (f *FinishedRequest) GetName() string            { return f.name }
func (f *FinishedRequest) GetGenerateName() string    { return "" }
func (f *FinishedRequest) GetUID() types.UID          { return types.UID(f.uid) }
func (f *FinishedRequest) GetResourceVersion() string { return f.resourceVersion }
func (f *FinishedRequest) GetGeneration() int64       { return f.generation }
func (f *FinishedRequest) GetSelfLink() string        { return "" }
func (f *FinishedRequest) GetDeletionTimestamp() *metav1.Time {
	if f.deletion == nil {
		return nil
	}
	return f.deletion.at
}

func (f *FinishedRequest) GetDeletionGracePeriodSeconds() *int64 {
	if f.deletion == nil {
		return nil
	}
	return f.deletion.grace
}
func (f *FinishedRequest) GetLabels() map[string]string                  { return nil }
func (f *FinishedRequest) GetAnnotations() map[string]string             { return f.annotations }
func (f *FinishedRequest) GetFinalizers() []string                       { return f.finalizers }
func (f *FinishedRequest) GetManagedFields() []metav1.ManagedFieldsEntry { return nil }

// GetOwnerReferences is the request's owner references (made anew each
// time for the one held as a heldOwner).
func (f *FinishedRequest) GetOwnerReferences() []metav1.OwnerReference {
	if f.owner != nil {
		return f.owner.refs()
	}
	return f.owners
}

func (f *FinishedRequest) GetCreationTimestamp() metav1.Time {
	if f.created == 0 {
		return metav1.Time{}
	}
	return metav1.NewTime(time.Unix(0, f.created))
}

// The setters: a cached object is never changed in place (copy it with
// DeepCopyObject); the one change the cache's machinery makes, dropping
// managedFields, holds already.

func (f *FinishedRequest) SetNamespace(string)                        { f.readOnly() }
func (f *FinishedRequest) SetName(string)                             { f.readOnly() }
func (f *FinishedRequest) SetGenerateName(string)                     { f.readOnly() }
func (f *FinishedRequest) SetUID(types.UID)                           { f.readOnly() }
func (f *FinishedRequest) SetResourceVersion(string)                  { f.readOnly() }
func (f *FinishedRequest) SetGeneration(int64)                        { f.readOnly() }
func (f *FinishedRequest) SetSelfLink(string)                         { f.readOnly() }
func (f *FinishedRequest) SetCreationTimestamp(metav1.Time)           { f.readOnly() }
func (f *FinishedRequest) SetDeletionTimestamp(*metav1.Time)          { f.readOnly() }
func (f *FinishedRequest) SetDeletionGracePeriodSeconds(*int64)       { f.readOnly() }
func (f *FinishedRequest) SetLabels(map[string]string)                { f.readOnly() }
func (f *FinishedRequest) SetAnnotations(map[string]string)           { f.readOnly() }
func (f *FinishedRequest) SetFinalizers([]string)                     { f.readOnly() }
func (f *FinishedRequest) SetOwnerReferences([]metav1.OwnerReference) { f.readOnly() }
func (f *FinishedRequest) SetManagedFields(m []metav1.ManagedFieldsEntry) {
	if len(m) > 0 {
		f.readOnly()
	}
}

func (f *FinishedRequest) readOnly() {
	panic("signing.FinishedRequest is the cache's read-only copy of a final CertificateRequest: change a copy (DeepCopyObject)")
}

var _ metav1.Object = (*FinishedRequest)(nil)
