package signing

import (
	"context"
	"fmt"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
)

// IssuerGroupField is the CertificateRequest field cert-manager's CRD
// declares selectable from v1.21 (selectableFields; Kubernetes 1.31+).
const IssuerGroupField = "spec.issuerRef.group"

// issuerKindField is selectable alongside it.
const issuerKindField = "spec.issuerRef.kind"

// inventoryPage is how many objects' metadata one inventory LIST returns.
const inventoryPage = 500

// IssuerGroupSelectable asks the API server once whether it selects
// CertificateRequests by IssuerGroupField (cert-manager's CRD before v1.21,
// or an API server without CRD field selectors, refuses the selector); an
// error says why not.
func IssuerGroupSelectable(cfg *rest.Config) (bool, error) {
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = mc.Resource(cmapi.SchemeGroupVersion.WithResource("certificaterequests")).List(ctx, metav1.ListOptions{
		Limit: 1, FieldSelector: fields.OneTermEqualSelector(IssuerGroupField, v1alpha1.GroupVersion.Group).String()})
	if err != nil {
		return false, err
	}
	return true, nil
}

// InventoryReaders are where an inventory reads.
type InventoryReaders struct {
	// API lists the requests that exist (the API server, not a cache, so
	// that none created before the call is missing). Only metadata is
	// listed: a page costs what the requests' metadata does.
	API client.Reader
	// Cache tells a listed request's issuer or signer (the manager's cache
	// keeps every request, foreign ones as stubs); a request it does not
	// hold yet is read from API. Nil: API.
	Cache client.Reader
	// SelectByIssuerGroup: the API server selects CertificateRequests by
	// IssuerGroupField, so only ours are listed at all.
	SelectByIssuerGroup bool
	// OtherSignersCSR: Cache left out this CSR as another signer's, so
	// one it does not hold is not read from API (nil: Cache holds every
	// CSR, as a stub if it is another signer's).
	OtherSignersCSR func(types.UID) bool
	// FromCache: Cache's lists were taken after this process began (it
	// runs without leader election, so it began when it started, and its
	// informers listed after that): Cache holds every request that existed
	// when it began, and the inventory reads Cache alone, with no list of
	// its own.
	FromCache bool
}

// cachedInventory is the inventory read from r.Cache alone (FromCache):
// the unfinished requests in it that keep reports ours.
func cachedInventory[T client.Object](r InventoryReaders, newList func() client.ObjectList, keep func(T) bool, opts ...client.ListOption) Inventory {
	return func(ctx context.Context) ([]Existing, error) {
		// Read only: the cache's own copies; a list of its own per call,
		// so that none outlives the inventory.
		list := newList()
		if err := r.Cache.List(ctx, list, append(opts, client.UnsafeDisableDeepCopy)...); err != nil {
			return nil, err
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return nil, err
		}
		var found []Existing
		for _, item := range items {
			if o, ok := item.(T); ok && keep(o) {
				found = append(found, Existing{UID: o.GetUID(), Namespace: o.GetNamespace(), Name: o.GetName()})
			}
		}
		return found, nil
	}
}

// UnfinishedRequestIndex indexes the cache's unfinished CertificateRequests
// of ours (IndexUnfinishedRequests), the ones the inventory reads from it.
const UnfinishedRequestIndex = "ejbca-issuer.certctl.io/unfinished"

const unfinishedRequestKey = "ours"

// IndexUnfinishedRequests adds UnfinishedRequestIndex to the cache; the
// inventory needs it when it reads the cache alone (FromCache).
func IndexUnfinishedRequests(ctx context.Context, indexer client.FieldIndexer) error {
	return indexer.IndexField(ctx, &cmapi.CertificateRequest{}, UnfinishedRequestIndex, func(o client.Object) []string {
		if cr, ok := o.(*cmapi.CertificateRequest); ok && IsOurs(cr.Spec.IssuerRef) && !IsFinal(cr) {
			return []string{unfinishedRequestKey}
		}
		return nil
	})
}

func (r InventoryReaders) cache() client.Reader {
	if r.Cache == nil {
		return r.API
	}
	return r.Cache
}

// CertificateRequestInventory lists the CertificateRequests for our
// issuers but those the cache (the reconciler's) shows final: final states
// never revert and that cache only moves forward, so the reconciler never
// sends anything for them, and as it does not reconcile a request final
// when first seen, nothing would forget them. One the cache still shows
// unfinished, or does not hold, is kept (final or not on the API server:
// it must be searched before it is signed from that cache); the reconciler
// forgets it as it sees it final (Attempts.Done).
// Those for other issuers are left out (spec.issuerRef is immutable): they
// would never be reconciled, and so never forgotten.
func CertificateRequestInventory(r InventoryReaders) Inventory {
	gvk := cmapi.SchemeGroupVersion.WithKind("CertificateRequestList")
	if r.FromCache && r.Cache != nil {
		// The index holds no final request: those are FinishedRequests,
		// which a typed list cannot hold without copying every one.
		return cachedInventory(r, func() client.ObjectList { return &cmapi.CertificateRequestList{} }, func(cr *cmapi.CertificateRequest) bool {
			return IsOurs(cr.Spec.IssuerRef) && !IsFinal(cr)
		}, client.MatchingFields{UnfinishedRequestIndex: unfinishedRequestKey})
	}
	if r.SelectByIssuerGroup {
		return func(ctx context.Context) ([]Existing, error) {
			var found []Existing
			for _, kind := range []string{v1alpha1.IssuerKind, v1alpha1.ClusterIssuerKind} {
				sel := fields.AndSelectors(fields.OneTermEqualSelector(IssuerGroupField, v1alpha1.GroupVersion.Group),
					fields.OneTermEqualSelector(issuerKindField, kind))
				err := listMetadata(ctx, r.API, gvk, []client.ListOption{client.MatchingFieldsSelector{Selector: sel}}, func(m *metav1.PartialObjectMetadata) error {
					cr := &cmapi.CertificateRequest{}
					if final, err := finalInCache(ctx, r, m, cr, IsFinal); err != nil || final {
						return err
					}
					found = append(found, Existing{UID: m.UID, Namespace: m.Namespace, Name: m.Name})
					return nil
				})
				if err != nil {
					return nil, err
				}
			}
			return found, nil
		}
	}
	return func(ctx context.Context) ([]Existing, error) {
		var found []Existing
		err := listMetadata(ctx, r.API, gvk, nil, func(m *metav1.PartialObjectMetadata) error {
			cr := &cmapi.CertificateRequest{}
			cached, err := readListed(ctx, r, m, cr)
			if err != nil || cr.UID != m.UID {
				return err // gone meanwhile: nothing to inherit
			}
			if IsOurs(cr.Spec.IssuerRef) && !(cached && IsFinal(cr)) {
				found = append(found, Existing{UID: m.UID, Namespace: m.Namespace, Name: m.Name})
			}
			return nil
		})
		return found, err
	}
}

// CertificateSigningRequestInventory is CertificateRequestInventory for
// unfinished Kubernetes CSRs of our signers (a signer name cannot be
// selected by prefix: every CSR's metadata is listed, its signer read from
// the cache, or known as another's by OtherSignersCSR).
func CertificateSigningRequestInventory(r InventoryReaders) Inventory {
	gvk := certificatesv1.SchemeGroupVersion.WithKind("CertificateSigningRequestList")
	if r.FromCache && r.Cache != nil {
		return cachedInventory(r, func() client.ObjectList { return &certificatesv1.CertificateSigningRequestList{} }, func(csr *certificatesv1.CertificateSigningRequest) bool {
			return IsOurSigner(csr.Spec.SignerName) && !CSRIsFinal(csr)
		})
	}
	return func(ctx context.Context) ([]Existing, error) {
		var found []Existing
		err := listMetadata(ctx, r.API, gvk, nil, func(m *metav1.PartialObjectMetadata) error {
			csr := &certificatesv1.CertificateSigningRequest{}
			if r.Cache != nil && r.OtherSignersCSR != nil && r.OtherSignersCSR(m.UID) {
				return nil
			}
			cached, err := readListed(ctx, r, m, csr)
			if err != nil || csr.UID != m.UID {
				return err
			}
			if IsOurSigner(csr.Spec.SignerName) && !(cached && CSRIsFinal(csr)) {
				found = append(found, Existing{UID: m.UID, Name: m.Name})
			}
			return nil
		})
		return found, err
	}
}

// readListed reads a listed object from the cache, or from the API server
// when the cache does not hold that object (created since it synced); an
// object deleted meanwhile is left with an empty UID. cached: it was read
// from the cache (Cache set and holding it).
func readListed(ctx context.Context, r InventoryReaders, m *metav1.PartialObjectMetadata, into client.Object) (cached bool, err error) {
	key := client.ObjectKeyFromObject(m)
	err = r.cache().Get(ctx, key, into)
	if err == nil && into.GetUID() == m.UID {
		return r.Cache != nil, nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return false, err
	}
	if err := r.API.Get(ctx, key, into); err != nil {
		if apierrors.IsNotFound(err) {
			into.SetUID("")
			return false, nil
		}
		return false, fmt.Errorf("reading %s: %w", key, err)
	}
	return false, nil
}

// finalInCache: r.Cache holds the listed object, and final says it is.
func finalInCache[T client.Object](ctx context.Context, r InventoryReaders, m *metav1.PartialObjectMetadata, into T, final func(T) bool) (bool, error) {
	if r.Cache == nil {
		return false, nil
	}
	if err := r.Cache.Get(ctx, client.ObjectKeyFromObject(m), into); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	return into.GetUID() == m.UID && final(into), nil
}

// listMetadata lists the metadata of every object of a kind (gvk names its
// list kind) in pages, then hands each item's identity (name, namespace,
// UID) to take. Every page is read before take is called: take reads the
// cache, which waits until it has synced, and a start lists while the
// cache fills rather than after; only one page is held, and of the others
// only identities.
func listMetadata(ctx context.Context, reader client.Reader, gvk schema.GroupVersionKind, opts []client.ListOption,
	take func(*metav1.PartialObjectMetadata) error) error {
	var listed []metav1.PartialObjectMetadata
	cont := ""
	for {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(gvk)
		page := append([]client.ListOption{client.Limit(inventoryPage)}, opts...)
		if cont != "" {
			page = append(page, client.Continue(cont))
		}
		if err := reader.List(ctx, list, page...); err != nil {
			return err
		}
		for i := range list.Items {
			m := &list.Items[i]
			listed = append(listed, metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID}})
		}
		if cont = list.GetContinue(); cont == "" {
			break
		}
	}
	for i := range listed {
		if err := take(&listed[i]); err != nil {
			return err
		}
	}
	return nil
}
