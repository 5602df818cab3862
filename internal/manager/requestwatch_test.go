package manager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	restclientwatch "k8s.io/client-go/rest/watch"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// clientGoEvents is what client-go's watch (rest.Request.Watch, as the
// cache's informers use it) makes of a watch response's body.
func clientGoEvents(body io.ReadCloser) watch.Interface {
	neg := runtime.NewClientNegotiator(serializer.NewCodecFactory(Scheme()).WithoutConversion(), cmapi.SchemeGroupVersion)
	objects, events, framer, err := neg.StreamDecoder(runtime.ContentTypeJSON, nil)
	if err != nil {
		panic(err)
	}
	return watch.NewStreamWatcher(
		restclientwatch.NewDecoder(streaming.NewDecoder(framer.NewFrameReader(body), events), objects),
		apierrors.NewClientErrorReporter(http.StatusInternalServerError, http.MethodGet, "ClientWatchDecoding"))
}

// ourEvents is what requestLister's watch makes of the same body.
func ourEvents(body io.ReadCloser) watch.Interface {
	return watch.NewStreamWatcher(newRequestEvents(body),
		apierrors.NewClientErrorReporter(http.StatusInternalServerError, http.MethodGet, "ClientWatchDecoding"))
}

// drain reads w until it closes (bounded: a watch that does not end fails).
func drain(t *testing.T, w watch.Interface) []watch.Event {
	t.Helper()
	return readEvents(t, w, nil)
}

// readEvents reads w until it closes, or, when last is given, up to the
// first event last says is the last, then stops w; a watch that closes
// before that fails. Bounded: a watch that gets to neither within a minute
// fails.
func readEvents(t *testing.T, w watch.Interface, last func(watch.Event) bool) []watch.Event {
	t.Helper()
	if last != nil {
		defer w.Stop()
	}
	var out []watch.Event
	deadline := time.After(time.Minute)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			switch {
			case !ok && last == nil:
				return out
			case !ok:
				t.Fatalf("the watch closed after %s", describe(out))
			}
			out = append(out, ev)
			if last != nil && last(ev) {
				return out
			}
		case <-deadline:
			w.Stop()
			t.Fatalf("the watch reached neither its end nor its last event after %s", describe(out))
		}
	}
}

// sameEvents: a and b hold the same events (type and object). An event
// either watch made of what it could not decode is told by its reason
// only: the two decoders word their errors differently.
func sameEvents(t *testing.T, ours, theirs []watch.Event) {
	t.Helper()
	if len(ours) != len(theirs) {
		t.Errorf("%d events, client-go %d:\nours %s\nclient-go %s", len(ours), len(theirs), describe(ours), describe(theirs))
		return
	}
	for i := range ours {
		o, c := ours[i], theirs[i]
		if decodingError(o) && decodingError(c) {
			continue
		}
		if o.Type != c.Type || !equality.Semantic.DeepEqual(o.Object, c.Object) {
			t.Errorf("event %d: %s %#v\nclient-go: %s %#v", i, o.Type, o.Object, c.Type, c.Object)
		}
	}
}

func decodingError(ev watch.Event) bool {
	s, ok := ev.Object.(*metav1.Status)
	if ev.Type != watch.Error || !ok || s.Details == nil {
		return false
	}
	for _, c := range s.Details.Causes {
		if c.Type == "ClientWatchDecoding" {
			return true
		}
	}
	return false
}

func describe(evs []watch.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "%s %T; ", ev.Type, ev.Object)
	}
	return b.String()
}

const (
	watchedRequest = `{"kind":"CertificateRequest","apiVersion":"cert-manager.io/v1","metadata":{"name":"r","namespace":"ns","uid":"u-1","resourceVersion":"41","generation":1,"creationTimestamp":"2026-12-07T10:00:00Z","labels":{"a":"b"},"annotations":{"cert-manager.io/certificate-revision":"3"},"managedFields":[{"manager":"m","operation":"Update","apiVersion":"cert-manager.io/v1","time":"2026-12-07T10:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{".":{}}}}]},"spec":{"request":"LS0tLS1CRUdJTg==","issuerRef":{"name":"ejbca","kind":"Issuer","group":"ejbca-issuer.certctl.io"},"duration":"2h0m0s","usages":["digital signature","key encipherment","server auth"],"username":"u","groups":["system:authenticated"],"extra":{"k":["v"]}},"status":{"conditions":[{"type":"Approved","status":"True","reason":"cert-manager.io","message":"approved","lastTransitionTime":"2026-12-07T10:00:01Z"},{"type":"Ready","status":"True","reason":"Issued","lastTransitionTime":"2026-12-07T10:00:02Z","observedGeneration":1}],"certificate":"Y2VydA==","ca":"Y2E="}}`
	watchBookmark  = `{"kind":"CertificateRequest","apiVersion":"cert-manager.io/v1","metadata":{"resourceVersion":"52","creationTimestamp":null,"annotations":{"k8s.io/initial-events-end":"true"}},"spec":{"request":null,"issuerRef":{"name":""}},"status":{}}`
	watchGone      = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (40)","reason":"Expired","code":410}`
)

// TestRequestEventsDecodeAsClientGo: for the same watch response, hostile
// or broken ones included, requestLister's decoding yields the events
// client-go's watch would, and ends where it would (quietly on a stream
// cut short, with an ERROR event on what neither can decode).
func TestRequestEventsDecodeAsClientGo(t *testing.T) {
	ev := func(typ, obj string) string { return `{"type":"` + typ + `","object":` + obj + "}\n" }
	for name, stream := range map[string]string{
		"every type": ev("ADDED", watchedRequest) + ev("MODIFIED", watchedRequest) + ev("BOOKMARK", watchBookmark) +
			ev("DELETED", watchedRequest) + ev("ERROR", watchGone),
		"no events":             ``,
		"object before type":    `{"object":` + watchedRequest + `,"type":"MODIFIED"}` + ev("ADDED", watchedRequest),
		"unknown keys":          `{"type":"ADDED","extra":{"a":[1,2,{"b":null}]},"object":` + strings.Replace(watchedRequest, `"spec":{`, `"spec":{"future":{"x":1},`, 1) + "}",
		"keys in another case":  `{"type":"ADDED","Type":"DELETED","object":` + watchedRequest[:len(watchedRequest)-1] + `,"Status":{"certificate":"eA=="}},"OBJECT":{}}`,
		"a key given twice":     `{"type":"ADDED","type":"MODIFIED","object":` + watchBookmark + `,"object":` + watchedRequest + "}",
		"no separators":         ev("ADDED", watchedRequest)[:len(ev("ADDED", watchedRequest))-1] + ev("DELETED", watchedRequest),
		"invalid type":          ev("ADDED", watchedRequest) + ev("SYNC", watchedRequest) + ev("ADDED", watchedRequest),
		"no type":               `{"object":` + watchedRequest + `}`,
		"no object":             `{"type":"ADDED"}`,
		"null object":           `{"type":"ADDED","object":null}`,
		"object without kind":   ev("ADDED", `{"metadata":{"name":"r"}}`),
		"object of another api": ev("ADDED", strings.Replace(watchedRequest, "cert-manager.io/v1", "cert-manager.io/v2", 1)),
		"status of another api": ev("ERROR", strings.Replace(watchGone, `"apiVersion":"v1"`, `"apiVersion":"meta.k8s.io/v1"`, 1)),
		"a field of wrong type": ev("ADDED", watchedRequest) + ev("MODIFIED", strings.Replace(watchedRequest, `"duration":"2h0m0s"`, `"duration":7`, 1)),
		"cut within an object":  ev("ADDED", watchedRequest) + ev("MODIFIED", watchedRequest)[:300],
		"cut between keys":      ev("ADDED", watchedRequest) + `{"type":"ADDED",`,
		"cut after a brace":     ev("ADDED", watchedRequest) + `{`,
		"not json":              ev("ADDED", watchedRequest) + `<html>bad gateway</html>`,
		"an array":              `[` + ev("ADDED", watchedRequest) + `]`,
		"a string":              `"ADDED"`,
	} {
		t.Run(name, func(t *testing.T) {
			ours := drain(t, ourEvents(io.NopCloser(strings.NewReader(stream))))
			theirs := drain(t, clientGoEvents(io.NopCloser(strings.NewReader(stream))))
			sameEvents(t, ours, theirs)
		})
	}
}

// TestRequestWatchYieldsWhatClientGoWould: against a real API server, for
// one sequence of creates, updates, status updates and deletes of requests
// of every shape (another issuer's, ours unfinished, issued with a
// certificate, failed), with and without the issuer-group selector,
// requestLister's watch yields exactly the events client-go's yields; so
// it does for a watch from a resource version the API server no longer
// has (410, which makes the reflector list again) and for the initial
// events of a list-by-watch ending in a bookmark.
func TestRequestWatchYieldsWhatClientGoWould(t *testing.T) {
	const ns = "watcher"
	cfg, k8s := apiServer(t, ns)
	ctx := context.Background()
	// client-go's watch as the cache makes it (controller-runtime's REST
	// client for a structured object).
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := apiutil.RESTClientForGVK(cmapi.SchemeGroupVersion.WithKind(cmapi.CertificateRequestKind), false, false, cfg, serializer.NewCodecFactory(Scheme()), hc)
	if err != nil {
		t.Fatal(err)
	}
	byGroup := fields.OneTermEqualSelector(signing.IssuerGroupField, v1alpha1.GroupVersion.Group).String()
	type pair struct{ ours, theirs watch.Interface }
	open := func(t *testing.T, field string, opts metav1.ListOptions) pair {
		t.Helper()
		l, err := newRequestLister(cfg, field, signing.TrimCertificateRequest)
		if err != nil {
			t.Fatal(err)
		}
		ours, err := l.WatchWithContext(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		theirsOpts := opts
		theirsOpts.Watch, theirsOpts.FieldSelector = true, field
		theirs, err := rc.Get().Resource("certificaterequests").VersionedParams(&theirsOpts, metav1.ParameterCodec).Watch(ctx)
		if err != nil {
			ours.Stop()
			t.Fatal(err)
		}
		return pair{ours, theirs}
	}
	t.Run("changes", func(t *testing.T) {
		var from cmapi.CertificateRequestList
		if err := k8s.List(ctx, &from, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		bookmarks := metav1.ListOptions{ResourceVersion: from.ResourceVersion, AllowWatchBookmarks: true, TimeoutSeconds: ptr.To[int64](300)}
		all, ofOurs := open(t, "", bookmarks), open(t, byGroup, bookmarks)

		_, csrPEM := testkit.CSR(t, testkit.CommonName("watcher.example.com"))
		chain := testkit.SelfSignedPEM(t, 0x5eed, "watcher CA")
		ours := testkit.IssuerRef(v1alpha1.IssuerKind, "ejbca")
		for i := range 12 {
			cr, state := mixedRequest(ns, i, csrPEM)
			if err := k8s.Create(ctx, cr); err != nil {
				t.Fatal(err)
			}
			cr.Labels = map[string]string{"step": "relabelled"}
			if err := k8s.Update(ctx, cr); err != nil {
				t.Fatal(err)
			}
			now := metav1.NewTime(time.Now().Truncate(time.Second))
			cr.Status.Conditions = []cmapi.CertificateRequestCondition{
				{Type: cmapi.CertificateRequestConditionApproved, Status: cmmeta.ConditionTrue, Reason: "cert-manager.io", LastTransitionTime: &now}}
			if err := k8s.Status().Update(ctx, cr); err != nil {
				t.Fatal(err)
			}
			switch state {
			case 2, 0: // issued
				cr.Status.Certificate, cr.Status.CA = chain, chain
				cr.Status.Conditions = append(cr.Status.Conditions, cmapi.CertificateRequestCondition{
					Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionTrue, Reason: cmapi.CertificateRequestReasonIssued, Message: "issued", LastTransitionTime: &now})
			case 3: // failed
				cr.Status.FailureTime = &now
				cr.Status.Conditions = append(cr.Status.Conditions, cmapi.CertificateRequestCondition{
					Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionFalse, Reason: cmapi.CertificateRequestReasonFailed, Message: "refused", LastTransitionTime: &now})
			default:
				continue
			}
			if err := k8s.Status().Update(ctx, cr); err != nil {
				t.Fatal(err)
			}
			if i%3 == 0 {
				if err := k8s.Delete(ctx, cr); err != nil {
					t.Fatal(err)
				}
			}
		}
		// The last change is to a request of ours, which both watches see.
		last := testkit.CertificateRequest(ns, "last", csrPEM, ours)
		if err := k8s.Create(ctx, last); err != nil {
			t.Fatal(err)
		}
		isLast := func(ev watch.Event) bool {
			cr, ok := ev.Object.(*cmapi.CertificateRequest)
			return ev.Type == watch.Added && ok && cr.Name == "last"
		}
		for _, w := range []struct {
			name      string
			pair      pair
			foreign   bool
			minEvents int
		}{{"all", all, true, 12*3 + 9 + 3 + 1}, {"selectByGroup", ofOurs, false, 9*3 + 6 + 2 + 1}} {
			t.Run(w.name, func(t *testing.T) {
				got, want := readEvents(t, w.pair.ours, isLast), readEvents(t, w.pair.theirs, isLast)
				sameEvents(t, got, want)
				seen := map[watch.EventType]int{}
				foreign, withCertificate := 0, 0
				for _, ev := range got {
					seen[ev.Type]++
					if cr, ok := ev.Object.(*cmapi.CertificateRequest); ok {
						if cr.Spec.IssuerRef.Group != v1alpha1.GroupVersion.Group {
							foreign++
						}
						if len(cr.Status.Certificate) > 0 {
							withCertificate++
						}
					}
				}
				if len(got) < w.minEvents || seen[watch.Added] == 0 || seen[watch.Modified] == 0 || seen[watch.Deleted] == 0 || withCertificate == 0 {
					t.Errorf("the watch saw %d events (%v, %d with a certificate), want at least %d of every change", len(got), seen, withCertificate, w.minEvents)
				}
				if (foreign > 0) != w.foreign {
					t.Errorf("the watch saw %d events of other issuers' requests", foreign)
				}
			})
		}
	})

	t.Run("gone", func(t *testing.T) {
		// Resource version 1 is long gone from the API server's watch
		// cache of CertificateRequests.
		w := open(t, "", metav1.ListOptions{ResourceVersion: "1", AllowWatchBookmarks: true})
		got, want := drain(t, w.ours), drain(t, w.theirs)
		sameEvents(t, got, want)
		if len(got) == 0 || got[0].Type != watch.Error {
			t.Fatalf("a watch from a resource version long gone gave %s, want an ERROR", describe(got))
		}
		if err := apierrors.FromObject(got[0].Object); !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
			t.Errorf("the ERROR event says %v, want 410 (the reflector lists again)", err)
		}
	})

	t.Run("initial events", func(t *testing.T) {
		opts := metav1.ListOptions{AllowWatchBookmarks: true, SendInitialEvents: ptr.To(true), ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan}
		w := open(t, byGroup, opts)
		isEnd := func(ev watch.Event) bool { return ev.Type == watch.Bookmark }
		got, want := readEvents(t, w.ours, isEnd), readEvents(t, w.theirs, isEnd)
		sameEvents(t, got, want)
		end := got[len(got)-1].Object.(*cmapi.CertificateRequest)
		if end.ResourceVersion == "" || end.Annotations[metav1.InitialEventsAnnotationKey] != "true" || end.Name != "" {
			t.Errorf("the bookmark holds %+v, want only a resource version and the end of the initial events", end.ObjectMeta)
		}
		if len(got) < 2 {
			t.Errorf("the initial events were %s, want the requests of ours first", describe(got))
		}
	})

	t.Run("stops", func(t *testing.T) {
		var opened, closed atomic.Int32
		counted := rest.CopyConfig(cfg)
		counted.Wrap(func(rt http.RoundTripper) http.RoundTripper {
			return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
				resp, err := rt.RoundTrip(r)
				if err == nil && r.URL.Query().Get("watch") == "true" {
					opened.Add(1)
					resp.Body = &closeCounted{ReadCloser: resp.Body, closed: &closed}
				}
				return resp, err
			})
		})
		l, err := newRequestLister(counted, "", signing.TrimCertificateRequest)
		if err != nil {
			t.Fatal(err)
		}
		var from cmapi.CertificateRequestList
		if err := k8s.List(ctx, &from, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		stopped, err := l.WatchWithContext(ctx, metav1.ListOptions{ResourceVersion: from.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		stopped.Stop()
		// The read Stop broke off may still be reported, as client-go's
		// StreamWatcher does; nothing else is.
		for _, ev := range drain(t, stopped) {
			if ev.Type != watch.Error {
				t.Errorf("a stopped watch gave a %s event", ev.Type)
			}
		}
		cctx, cancel := context.WithCancel(ctx)
		cancelled, err := l.WatchWithContext(cctx, metav1.ListOptions{ResourceVersion: from.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		for _, ev := range drain(t, cancelled) {
			if ev.Type != watch.Error {
				t.Errorf("a cancelled watch gave a %s event", ev.Type)
			}
		}
		cancelled.Stop() // as the reflector does, once more
		if opened.Load() != 2 || closed.Load() != 2 {
			t.Errorf("%d watch responses opened, %d closed: want 2 and 2", opened.Load(), closed.Load())
		}
	})
}

// closeCounted counts its Close calls.
type closeCounted struct {
	io.ReadCloser
	closed *atomic.Int32
	once   atomic.Bool
}

func (c *closeCounted) Close() error {
	if c.once.CompareAndSwap(false, true) {
		c.closed.Add(1)
	}
	return c.ReadCloser.Close()
}

// TestRequestWatchRetriesAConnectionAsClientGo: a watch whose connection
// breaks before the API server answers is tried again as client-go tries
// it (ten more times, a second apart), then handed over closed so that the
// reflector starts over; a refusal from the API server is its error at
// once, and a cancelled context ends the waiting.
func TestRequestWatchRetriesAConnectionAsClientGo(t *testing.T) {
	var hits atomic.Int32
	var refuse atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if refuse.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403,"message":"certificaterequests is forbidden"}`)
			return
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close() // the connection breaks before an answer
		}
	}))
	defer srv.Close()
	l, err := newRequestLister(&rest.Config{Host: srv.URL}, "", signing.TrimCertificateRequest)
	if err != nil {
		t.Fatal(err)
	}
	fake := clocktesting.NewFakeClock(time.Now())
	l.clock = fake
	// waiting: the watch waits on the fake clock (false: it returned).
	waiting := func(done <-chan struct{}) bool {
		deadline := time.Now().Add(time.Minute)
		for !fake.HasWaiters() {
			select {
			case <-done:
				return false
			default:
			}
			if time.Now().After(deadline) {
				t.Fatal("the watch neither waited nor returned")
			}
			time.Sleep(time.Millisecond)
		}
		return true
	}
	waited := func(done <-chan struct{}) bool {
		if !waiting(done) {
			return false
		}
		fake.Step(watchConnectRetryWait)
		return true
	}

	type result struct {
		w   watch.Interface
		err error
	}
	start := func(ctx context.Context) (chan struct{}, *result) {
		done, res := make(chan struct{}), &result{}
		go func() {
			defer close(done)
			res.w, res.err = l.WatchWithContext(ctx, metav1.ListOptions{ResourceVersion: "7"})
		}()
		return done, res
	}

	done, res := start(context.Background())
	waits := 0
	for waited(done) {
		waits++
	}
	if res.err != nil || waits != watchConnectRetries || hits.Load() < watchConnectRetries+1 {
		t.Fatalf("after %d waits and %d attempts: %v, want %d waits, %d attempts and no error", waits, hits.Load(), res.err, watchConnectRetries, watchConnectRetries+1)
	}
	if _, open := <-res.w.ResultChan(); open {
		t.Error("the watch given up on is not closed")
	}

	ctx, cancel := context.WithCancel(context.Background())
	done, res = start(ctx)
	if !waited(done) || !waiting(done) {
		t.Fatal("a broken connection was not tried again")
	}
	cancel()
	ended(t, done)
	if !errors.Is(res.err, context.Canceled) {
		t.Errorf("a watch cancelled while waiting gave %v", res.err)
	}

	refuse.Store(true)
	hits.Store(0)
	done, res = start(context.Background())
	ended(t, done)
	if !apierrors.IsForbidden(res.err) || hits.Load() != 1 {
		t.Errorf("a refused watch gave %v after %d attempts, want Forbidden after 1", res.err, hits.Load())
	}
}

// ended waits for done (bounded: what never ends fails).
func ended(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("still running after a minute")
	}
}
