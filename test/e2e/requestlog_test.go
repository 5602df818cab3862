package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// requestLog remembers every CertificateRequest the API server showed, also
// those cert-manager has deleted since (revisionHistoryLimit), with the
// serial of the certificate each was given. With it a test tells one request
// enrolled twice (ours to prevent) from two requests enrolled once each
// (cert-manager's choice, for example a reissuance it started on a stale
// cache).
type requestLog struct {
	mu   sync.Mutex
	seen map[types.UID]seenRequest
}

type seenRequest struct {
	namespace, certificate, name, revision, serial string
}

var requests = &requestLog{seen: map[types.UID]seenRequest{}}

// start watches CertificateRequests in all namespaces until ctx ends.
func (l *requestLog) start(ctx context.Context) error {
	c, err := cache.New(stack.RESTConfig, cache.Options{Scheme: stack.Client.Scheme()})
	if err != nil {
		return err
	}
	inf, err := c.GetInformer(ctx, &cmapi.CertificateRequest{})
	if err != nil {
		return err
	}
	record := func(obj any) {
		if cr, ok := obj.(*cmapi.CertificateRequest); ok {
			l.record(cr)
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    record,
		UpdateFunc: func(_, obj any) { record(obj) },
	}); err != nil {
		return err
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return fmt.Errorf("the CertificateRequest informer did not sync")
	}
	return nil
}

func (l *requestLog) record(cr *cmapi.CertificateRequest) {
	r := seenRequest{
		namespace:   cr.Namespace,
		certificate: cr.Annotations[cmapi.CertificateNameKey],
		name:        cr.Name,
		revision:    cr.Annotations[cmapi.CertificateRequestRevisionAnnotationKey],
	}
	if len(cr.Status.Certificate) > 0 {
		if leaf, err := pki.DecodeX509CertificateBytes(cr.Status.Certificate); err == nil {
			r.serial = fmt.Sprintf("%X", leaf.SerialNumber)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.seen[cr.UID]; ok && r.serial == "" {
		r.serial = old.serial
	}
	l.seen[cr.UID] = r
}

// holder names the request that was given serial, or "".
func (l *requestLog) holder(ns, serial string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.seen {
		if r.namespace == ns && r.serial == serial {
			return fmt.Sprintf("%s (revision %s)", r.name, r.revision)
		}
	}
	return ""
}

// enrolledOncePerRequest checks that every certificate EJBCA issued to the
// Certificate's end entity was handed to a CertificateRequest of that
// Certificate: a certificate that no request received is a second enrolment
// for one request, or an enrolment for nothing. It returns the number of
// certificates EJBCA issued to the end entity (each went to a request).
func enrolledOncePerRequest(t *testing.T, ns, name string) int {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var orphans, held []string
		n := 0
		for _, c := range stack.Sim.Issued() {
			if c.Username != ns+"/"+name {
				continue
			}
			n++
			serial := fmt.Sprintf("%X", c.Serial)
			if h := requests.holder(ns, serial); h != "" {
				held = append(held, serial+" to "+h)
			} else {
				orphans = append(orphans, serial)
			}
		}
		if len(orphans) == 0 {
			if n > 1 {
				t.Logf("%s/%s: cert-manager made %d requests, each issued once: %s", ns, name, n, strings.Join(held, ", "))
			}
			return n
		}
		// The informer may not have shown the last status write yet.
		if time.Now().After(deadline) {
			t.Errorf("%s/%s: EJBCA issued %s, which no CertificateRequest received (issued: %s); %s",
				ns, name, strings.Join(orphans, ", "), strings.Join(held, ", "), describeEnrolments(t, ns, name))
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
}
