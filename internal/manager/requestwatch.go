package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/klog/v2"
	sigsjson "sigs.k8s.io/json"
)

// A CertificateRequest changes about three times on its way to a
// certificate (created, approved, issued), and each change reaches the
// cache's informer as a watch event. client-go decodes each event several
// times over: its JSON framer scans it, the event is decoded into a
// metav1.WatchEvent holding the object as raw bytes (after a first pass
// that reads its kind), then the object is decoded (again after a pass
// that reads its kind). For requests cert-manager made (a CSR, then a
// certificate and its CA) that was the manager's largest cost outside its
// own reconcile. Here each event is decoded once, straight from the
// response, and handed on exactly as client-go's watch would hand it.

// watchConnectRetries and watchConnectRetryWait are client-go's own for a
// watch whose connection broke before its answer (rest.Request.Watch: ten
// retries, each after the one second of its artificial Retry-After): a
// watch that cannot be opened makes the reflector list everything again.
const (
	watchConnectRetries   = 10
	watchConnectRetryWait = time.Second
)

// WatchWithContext watches CertificateRequests from where the informer's
// reflector asks (resourceVersion, resourceVersionMatch, bookmarks,
// timeoutSeconds, sendInitialEvents and a label selector all go to the API
// server as given), with the cache's own field selector, as a watch=true
// GET whose events are decoded here (requestEvents). Watches are not held
// back by the client's rate limit, as client-go's are not.
func (l *requestLister) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	if opts.FieldSelector != "" {
		return nil, fmt.Errorf("watching CertificateRequests: unexpected field selector %q from the informer", opts.FieldSelector)
	}
	if opts.Limit != 0 || opts.Continue != "" {
		return nil, fmt.Errorf("watching CertificateRequests: a watch is not paged (limit %d, continue %q)", opts.Limit, opts.Continue)
	}
	opts.Watch = true
	opts.FieldSelector = l.fieldSelector
	for attempt := 0; ; attempt++ {
		body, err := l.watcher.Get().Resource("certificaterequests").VersionedParams(&opts, metav1.ParameterCodec).Stream(ctx)
		if err == nil {
			return watch.NewStreamWatcherWithLogger(klog.FromContext(ctx), newRequestEvents(body),
				// client-go's own report of an event it cannot decode
				apierrors.NewClientErrorReporter(http.StatusInternalServerError, http.MethodGet, "ClientWatchDecoding")), nil
		}
		if !utilnet.IsProbableEOF(err) && !utilnet.IsTimeout(err) {
			return nil, err
		}
		if attempt == watchConnectRetries {
			// as client-go: the reflector finds the watch closed and
			// starts over
			return watch.NewEmptyWatch(), nil
		}
		t := l.clock.NewTimer(watchConnectRetryWait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("watching CertificateRequests: %w (after %w)", ctx.Err(), err)
		case <-t.C():
		}
	}
}

// requestEvents reads the events of one CertificateRequest watch response
// (a stream of {"type":…,"object":…} JSON objects) for a
// watch.StreamWatcher, which gives them to the reflector and turns a
// decoding error into an ERROR event as client-go's watch does.
type requestEvents struct {
	body io.ReadCloser
	dec  sigsjson.Decoder
}

func newRequestEvents(body io.ReadCloser) *requestEvents {
	// Case-sensitive, as client-go's own decoder: a key that only differs
	// in case from a field is not that field.
	return &requestEvents{body: body, dec: sigsjson.NewDecoderCaseSensitivePreserveInts(body)}
}

// Close ends a Decode under way: the response's body is closed.
func (e *requestEvents) Close() { _ = e.body.Close() }

// Decode returns the next event: io.EOF when the API server ended the
// watch between events, an error when the stream broke or held what
// client-go would not decode either. Either ends the watch (StreamWatcher),
// so nothing is read past an error.
func (e *requestEvents) Decode() (watch.EventType, runtime.Object, error) {
	tok, err := e.dec.Token()
	if err != nil {
		return "", nil, err // io.EOF: the watch ended between events
	}
	if d, ok := tok.(fmt.Stringer); !ok || d.String() != "{" {
		return "", nil, fmt.Errorf("unable to decode to metav1.WatchEvent: unexpected %v", tok)
	}
	typ, obj, err := e.event()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // the watch ended within an event
	}
	return typ, obj, err
}

// event reads the rest of an event whose opening brace was read.
func (e *requestEvents) event() (watch.EventType, runtime.Object, error) {
	var (
		typ   watch.EventType
		typed bool
		obj   runtime.Object
		early json.RawMessage // an object that came before its type
	)
	for e.dec.More() {
		key, err := e.dec.Token()
		if err != nil {
			return "", nil, err
		}
		switch key {
		case "type":
			var s string
			if err := e.dec.Decode(&s); err != nil {
				return "", nil, err
			}
			typ, typed = watch.EventType(s), true
			if err := validEventType(typ); err != nil {
				return "", nil, err
			}
		case "object":
			obj, early = nil, nil
			if !typed {
				if err := e.dec.Decode(&early); err != nil {
					return "", nil, err
				}
				continue
			}
			if obj, err = decodeEventObject(typ, e.dec.Decode); err != nil {
				return "", nil, err
			}
		default:
			var skipped json.RawMessage
			if err := e.dec.Decode(&skipped); err != nil {
				return "", nil, err
			}
		}
	}
	if err := expectDelim(e.dec, '}'); err != nil {
		return "", nil, err
	}
	if err := validEventType(typ); err != nil {
		return "", nil, err
	}
	if early != nil {
		var err error
		if obj, err = decodeEventObject(typ, func(v any) error { return sigsjson.UnmarshalCaseSensitivePreserveInts(early, v) }); err != nil {
			return "", nil, err
		}
	}
	if obj == nil {
		return "", nil, fmt.Errorf("unable to decode watch event: a %s event without an object", typ)
	}
	return typ, obj, nil
}

func validEventType(typ watch.EventType) error {
	switch typ {
	case watch.Added, watch.Modified, watch.Deleted, watch.Error, watch.Bookmark:
		return nil
	}
	return fmt.Errorf("got invalid watch event type: %v", typ)
}

// decodeEventObject decodes an event's object with decode: a Status for an
// ERROR event, a CertificateRequest otherwise (a BOOKMARK's holds only its
// resourceVersion and annotations). Its type fields are cleared, as
// client-go's decoder clears them.
//
// Two deliberate differences, for what the API server never sends: client-go
// decodes an object as the kind it names, and its reflector drops an event
// holding another kind than the informer's, where here such an event ends
// the watch as an error; and client-go reads the kind case-insensitively
// ("Kind" counts), where here, as for every other field, only "kind" does.
func decodeEventObject(typ watch.EventType, decode func(any) error) (runtime.Object, error) {
	if typ == watch.Error {
		s := &metav1.Status{}
		if err := decode(s); err != nil {
			return nil, objectError(err)
		}
		// Status is one of the scheme's unversioned kinds: client-go reads
		// it whatever its apiVersion says.
		if s.Kind != "Status" {
			return nil, fmt.Errorf("unable to decode watch event: an ERROR event holding a %q (%s)", s.Kind, s.APIVersion)
		}
		s.TypeMeta = metav1.TypeMeta{}
		return s, nil
	}
	cr := &cmapi.CertificateRequest{}
	if err := decode(cr); err != nil {
		return nil, objectError(err)
	}
	if gvk := cr.GroupVersionKind(); gvk != cmapi.SchemeGroupVersion.WithKind(cmapi.CertificateRequestKind) {
		return nil, fmt.Errorf("unable to decode watch event: a %s event holding a %q (%s)", typ, cr.Kind, cr.APIVersion)
	}
	cr.TypeMeta = metav1.TypeMeta{}
	return cr, nil
}

// objectError is err from decoding an event's object as client-go would
// report it: an end of the stream as it is (the watch ends quietly), any
// other error as an event it could not decode.
func objectError(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return err
	}
	return fmt.Errorf("unable to decode watch event: %w", err)
}
