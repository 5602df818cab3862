package issuers

import (
	"context"
	"sync"
	"time"

	"k8s.io/utils/clock"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/issuerclients"
)

// Reachability watches over the EJBCAs that issuers could not reach. Rather
// than each Unreachable issuer retrying its authenticated health check, one
// unauthenticated status call per EJBCA URL is made, spaced so that the issuers
// sharing that URL together never cause more than one call per issuer per
// minute (and never more than one every 15s). When EJBCA answers again, every
// issuer waiting on it is checked at once, so recovery follows EJBCA's return
// within seconds instead of a backoff period.
type Reachability struct {
	Client  client.Client
	Clients *issuerclients.Cache
	Clock   clock.WithTicker
	// Wakes is where it asks for an immediate health check of an issuer.
	Wakes *IssuerWakes
	// MinSpacing is the least time between two probes of a URL; zero means
	// minProbeSpacing. Setup makes it shorter for a short EJBCA timeout
	// (ProbeSpacingFor), so that requests waiting for a suspected issuer's
	// re-check wait about as long as one call could take.
	MinSpacing time.Duration

	mu   sync.Mutex
	urls map[string]*unreachableURL
	// probed is when each URL was last probed, kept for minProbeSpacing
	// after its issuers are forgotten, so that a suspicion right after a
	// probe does not probe again at once.
	probed map[string]time.Time
}

type unreachableURL struct {
	issuers   map[issuerKey]bool
	lastProbe time.Time
	// soon: probe as soon as minProbeSpacing has passed since the last
	// probe, whatever the number of issuers (a suspicion: requests wait).
	soon bool
}

type issuerKey struct {
	kind string
	key  types.NamespacedName
}

// Minimum spacing of probes of one URL.
const minProbeSpacing = 15 * time.Second

// Unreachable records that an issuer could not reach url.
func (r *Reachability) Unreachable(kind string, key types.NamespacedName, url string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.watchLocked(kind, key, url, now)
}

// watchLocked moves an issuer's watch to url, whose entry, when new,
// counts its last probe from lastProbe.
func (r *Reachability) watchLocked(kind string, key types.NamespacedName, url string, lastProbe time.Time) *unreachableURL {
	r.forgetLocked(kind, key)
	if r.urls == nil {
		r.urls = map[string]*unreachableURL{}
	}
	u := r.urls[url]
	if u == nil {
		u = &unreachableURL{issuers: map[issuerKey]bool{}, lastProbe: lastProbe}
		r.urls[url] = u
	}
	u.issuers[issuerKey{kind, key}] = true
	return u
}

// Suspected records that a request through an issuer got no answer from
// url while the issuer is still Ready. Its requests wait for its re-check,
// so the URL is probed at the next tick, unless it was probed within
// minProbeSpacing: a single lost connection costs its requests seconds, an
// outage one probe now and then the usual spacing.
func (r *Reachability) Suspected(kind string, key types.NamespacedName, url string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.watchLocked(kind, key, url, r.probed[url]).soon = true
}

// Forget drops an issuer that reached EJBCA, failed otherwise, or is gone.
func (r *Reachability) Forget(kind string, key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgetLocked(kind, key)
}

func (r *Reachability) forgetLocked(kind string, key types.NamespacedName) {
	for url, u := range r.urls {
		delete(u.issuers, issuerKey{kind, key})
		if len(u.issuers) == 0 {
			delete(r.urls, url)
		}
	}
}

// spacing is the time between probes of a URL shared by n issuers.
func spacing(n int) time.Duration {
	return max(minProbeSpacing, signing.MinHealthCheckSpacing/time.Duration(max(n, 1)))
}

// ProbeSpacingFor is the least spacing of probes for an EJBCA timeout: twice
// the timeout (a probe waits up to one; probing more often than an answer
// can take is pointless), at least 2 s, at most minProbeSpacing (also for
// no timeout set).
func ProbeSpacingFor(timeout time.Duration) time.Duration {
	if timeout <= 0 {
		return minProbeSpacing
	}
	return min(minProbeSpacing, max(2*timeout, 2*time.Second))
}

func (r *Reachability) minSpacing() time.Duration {
	if r.MinSpacing > 0 {
		return r.MinSpacing
	}
	return minProbeSpacing
}

// Start probes due URLs every few seconds until ctx ends (a manager Runnable).
func (r *Reachability) Start(ctx context.Context) error {
	t := r.Clock.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
			r.probeDue(ctx)
		}
	}
}

func (r *Reachability) probeDue(ctx context.Context) {
	now := r.Clock.Now()
	type due struct {
		url     string
		issuers []issuerKey
	}
	var work []due
	r.mu.Lock()
	for url, at := range r.probed {
		if now.Sub(at) >= r.minSpacing() {
			delete(r.probed, url)
		}
	}
	for url, u := range r.urls {
		wait := spacing(len(u.issuers))
		if u.soon {
			wait = r.minSpacing()
		}
		if now.Sub(u.lastProbe) < wait {
			continue
		}
		u.lastProbe, u.soon = now, false
		if r.probed == nil {
			r.probed = map[string]time.Time{}
		}
		r.probed[url] = now
		d := due{url: url}
		for k := range u.issuers {
			d.issuers = append(d.issuers, k)
		}
		work = append(work, d)
	}
	r.mu.Unlock()
	for _, d := range work {
		if r.probe(ctx, d.issuers) {
			logf.FromContext(ctx).Info("EJBCA answers again; re-checking the issuers that could not reach it", "url", d.url, "issuers", len(d.issuers))
			for _, k := range d.issuers {
				r.Wakes.Recheck(k.kind, k.key)
			}
		}
	}
}

// probe asks EJBCA's status endpoint through the first issuer whose client
// can be built (the call needs the issuer's trust roots, not its credentials).
func (r *Reachability) probe(ctx context.Context, issuers []issuerKey) bool {
	for _, k := range issuers {
		iss, ok := v1alpha1.NewIssuer(k.kind)
		if !ok {
			continue
		}
		if err := r.Client.Get(ctx, k.key, iss); err != nil {
			if apierrors.IsNotFound(err) {
				r.Forget(k.kind, k.key)
			}
			continue
		}
		cl, err := r.Clients.Client(ctx, iss)
		if err != nil {
			continue
		}
		_, err = cl.Status(ctx)
		// Any HTTP answer, even a refusal, means EJBCA is reachable again.
		return err == nil || ejbca.HasAnswer(err)
	}
	return false
}
