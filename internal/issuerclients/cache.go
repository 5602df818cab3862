// Package issuerclients keeps one EJBCA client per issuer, so connections and
// OAuth2 tokens are reused across requests, and rebuilds it only when the
// issuer's spec or a Secret or ConfigMap it references changes.
package issuerclients

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/credentials"
	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
)

// Cache hands out EJBCA clients per issuer. It is safe for concurrent use;
// concurrent callers for the same issuer wait for one build.
type Cache struct {
	metadata                 client.Reader
	objects                  client.Reader
	clusterResourceNamespace string
	now                      func() time.Time
	tune                     func(v1alpha1.Issuer, *ejbca.Options)

	mu      sync.Mutex
	entries map[types.UID]*entry
}

type entry struct {
	mu          sync.Mutex
	fingerprint string
	client      *ejbca.Client
	err         error
}

// New returns a cache. metadata answers PartialObjectMetadata reads of
// Secrets and ConfigMaps (the manager's metadata-only cache: no Secret data is
// held in memory); objects reads the data itself when a client is (re)built,
// uncached. tune, if not nil, adjusts every client's options (timeouts, pool
// size, metrics).
func New(metadata, objects client.Reader, clusterResourceNamespace string, now func() time.Time, tune func(v1alpha1.Issuer, *ejbca.Options)) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{metadata: metadata, objects: objects, clusterResourceNamespace: clusterResourceNamespace,
		now: now, tune: tune, entries: map[types.UID]*entry{}}
}

// SecretNamespace is the only namespace an issuer reads Secrets and
// ConfigMaps from: its own, or the cluster resource namespace for a cluster issuer.
func (c *Cache) SecretNamespace(iss v1alpha1.Issuer) string {
	return SecretNamespace(iss, c.clusterResourceNamespace)
}

// SecretNamespace is Cache.SecretNamespace for callers without a cache.
func SecretNamespace(iss v1alpha1.Issuer, clusterResourceNamespace string) string {
	if iss.GetNamespace() == "" {
		return clusterResourceNamespace
	}
	return iss.GetNamespace()
}

// Client returns the issuer's client, building it when the spec or a
// referenced object changed since the last build. A build error (missing or
// invalid Secret) is returned as-is: *credentials.NotFoundError,
// *credentials.InvalidError, or another error for a bad spec.
func (c *Cache) Client(ctx context.Context, iss v1alpha1.Issuer) (*ejbca.Client, error) {
	fp, err := c.Fingerprint(ctx, iss)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	e, ok := c.entries[iss.GetUID()]
	if !ok {
		e = &entry{}
		c.entries[iss.GetUID()] = e
	}
	c.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fingerprint == fp && (e.client != nil || e.err != nil) {
		return e.client, e.err
	}
	if e.client != nil {
		e.client.Close()
	}
	e.client, e.err = c.build(ctx, iss)
	e.fingerprint = fp
	if e.err != nil && !isConfigError(e.err) {
		// API errors are not cached: the next call tries again.
		e.fingerprint = ""
	}
	return e.client, e.err
}

// Forget drops an issuer's client (the issuer was deleted).
func (c *Cache) Forget(uid types.UID) {
	c.mu.Lock()
	e := c.entries[uid]
	delete(c.entries, uid)
	c.mu.Unlock()
	if e != nil {
		e.mu.Lock()
		if e.client != nil {
			e.client.Close()
		}
		e.mu.Unlock()
	}
}

// Invalidate makes the next Client call rebuild, e.g. after EJBCA refused
// the credentials and the Secret may have been replaced in the meantime.
func (c *Cache) Invalidate(uid types.UID) {
	c.mu.Lock()
	e := c.entries[uid]
	c.mu.Unlock()
	if e != nil {
		e.mu.Lock()
		e.fingerprint = ""
		e.mu.Unlock()
	}
}

func (c *Cache) build(ctx context.Context, iss v1alpha1.Issuer) (*ejbca.Client, error) {
	opts, err := credentials.Load(ctx, c.objects, c.SecretNamespace(iss), iss.GetSpec(), c.now())
	if err != nil {
		return nil, err
	}
	if c.tune != nil {
		c.tune(iss, &opts)
	}
	return ejbca.New(opts)
}

// Fingerprint identifies the inputs of an issuer's client: its spec
// generation and the version of each referenced object (from the metadata
// cache). The health check uses it to tell a changed issuer from one whose
// check is simply not due.
func (c *Cache) Fingerprint(ctx context.Context, iss v1alpha1.Issuer) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%d", iss.GetUID(), iss.GetGeneration())
	ns := c.SecretNamespace(iss)
	for _, ref := range credentials.References(iss.GetSpec()) {
		m := ref.Kind.Metadata()
		rv := "absent"
		if err := c.metadata.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, m); err == nil {
			rv = string(m.GetUID()) + "@" + m.GetResourceVersion()
		} else if !apierrors.IsNotFound(err) {
			return "", err
		}
		fmt.Fprintf(&b, "|%s/%s=%s", ref.Kind, ref.Name, rv)
	}
	return b.String(), nil
}

// isConfigError reports errors that stay until the spec or a referenced
// object changes, so they may be cached under the fingerprint; API server
// errors may pass and are not cached.
func isConfigError(err error) bool {
	var status apierrors.APIStatus
	return !errors.As(err, &status)
}
