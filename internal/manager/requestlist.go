package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/clock"
	sigsjson "sigs.k8s.io/json"
)

// requestListPage is how many CertificateRequests one page of the cache's
// list holds: about 3.5 MB of JSON for requests cert-manager made.
const requestListPage = 500

// requestLister fills the cache's CertificateRequest informer with what the
// cache keeps of each request (signing.TrimCertificateRequest) and never
// more than one whole request at a time.
//
// Every finished request of ours is in the cluster as JSON (CRDs have no
// protobuf) and client-go would decode each several times over: its
// streaming list (WatchListClient) frames each object, reads its kind,
// then decodes it, and its plain list holds every page of whole objects
// until the last one arrives (hundreds of MiB at 30,000 requests). Here
// the list is read page by page (a consistent read, which the API server
// serves from its watch cache) and each request is decoded once, straight
// from the response, then reduced at once. Its watches too decode each
// event once (requestwatch.go); the informer reduces what they carry.
//
// It replaces controller-runtime's ListWatch for this informer whole: the
// cache's field selector is given here, as the reflector passes none.
type requestLister struct {
	client rest.Interface
	// watcher is client on the same connections, never held back by the
	// client's rate limit: client-go does not limit watches.
	watcher rest.Interface
	// fieldSelector is the cache's own (see cacheOptions).
	fieldSelector string
	trim          toolscache.TransformFunc
	pageSize      int64
	// clock times the waits between attempts to open a watch.
	clock clock.Clock
}

// requestRESTConfig is cfg for a REST client of CertificateRequests that
// speaks JSON (CRDs have no protobuf), decoded by the caller.
func requestRESTConfig(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &cmapi.SchemeGroupVersion
	c.APIPath = "/apis"
	c.ContentType = runtime.ContentTypeJSON
	c.AcceptContentTypes = runtime.ContentTypeJSON
	c.NegotiatedSerializer = serializer.NewCodecFactory(Scheme()).WithoutConversion()
	return c
}

// newRequestLister reads and watches CertificateRequests with its own REST
// client (JSON, decoded here).
func newRequestLister(cfg *rest.Config, fieldSelector string, trim toolscache.TransformFunc) (*requestLister, error) {
	c := requestRESTConfig(cfg)
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, err
	}
	unlimited := rest.CopyConfig(c)
	unlimited.RateLimiter = flowcontrol.NewFakeAlwaysRateLimiter()
	wc, err := rest.RESTClientForConfigAndClient(unlimited, rc.Client)
	if err != nil {
		return nil, err
	}
	return &requestLister{client: rc, watcher: wc, fieldSelector: fieldSelector, trim: trim, pageSize: requestListPage, clock: clock.RealClock{}}, nil
}

// IsWatchListSemanticsUnSupported turns client-go's streaming list off for
// this informer: the list is ListWithContext's.
func (l *requestLister) IsWatchListSemanticsUnSupported() bool { return true }

func (l *requestLister) List(opts metav1.ListOptions) (runtime.Object, error) {
	return l.ListWithContext(context.Background(), opts)
}

func (l *requestLister) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return l.WatchWithContext(context.Background(), opts)
}

// ListWithContext lists every request as the cache keeps it. The reflector
// asks for a list at least as fresh as opts.ResourceVersion: a consistent
// read always is. Its page size and continuation are this lister's: the
// list it returns is whole.
func (l *requestLister) ListWithContext(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	out := &cmapi.CertificateRequestList{}
	page := metav1.ListOptions{Limit: l.pageSize, FieldSelector: l.fieldSelector, LabelSelector: opts.LabelSelector}
	if opts.FieldSelector != "" {
		return nil, fmt.Errorf("listing CertificateRequests: unexpected field selector %q from the informer", opts.FieldSelector)
	}
	for {
		meta, err := l.listPage(ctx, page, out)
		if err != nil {
			return nil, fmt.Errorf("listing CertificateRequests: %w", err)
		}
		if out.ResourceVersion == "" {
			out.ResourceVersion = meta.ResourceVersion
		}
		if meta.Continue == "" {
			return out, nil
		}
		page.Continue = meta.Continue
	}
}

// listPage reads one page, appending each request to out as the cache keeps
// it, and returns the page's list metadata.
func (l *requestLister) listPage(ctx context.Context, opts metav1.ListOptions, out *cmapi.CertificateRequestList) (metav1.ListMeta, error) {
	var meta metav1.ListMeta
	body, err := l.client.Get().Resource("certificaterequests").VersionedParams(&opts, metav1.ParameterCodec).
		Timeout(time.Minute).Stream(ctx)
	if err != nil {
		return meta, err
	}
	defer func() { _ = body.Close() }()
	// Case-sensitive, as client-go's own decoder: a key that only differs
	// in case from a field is not that field.
	dec := sigsjson.NewDecoderCaseSensitivePreserveInts(body)
	if err := expectDelim(dec, '{'); err != nil {
		return meta, err
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return meta, err
		}
		switch key {
		case "items":
			if err := l.items(dec, out); err != nil {
				return meta, err
			}
		case "metadata":
			if err := dec.Decode(&meta); err != nil {
				return meta, err
			}
		case "kind":
			var kind string
			if err := dec.Decode(&kind); err != nil {
				return meta, err
			}
			if kind != "CertificateRequestList" {
				return meta, fmt.Errorf("the API server answered with a %q", kind)
			}
		default:
			var skipped json.RawMessage
			if err := dec.Decode(&skipped); err != nil {
				return meta, err
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return meta, err
	}
	return meta, nil
}

// items decodes a page's requests one by one, each reduced before the
// next is read.
func (l *requestLister) items(dec sigsjson.Decoder, out *cmapi.CertificateRequestList) error {
	if err := expectDelim(dec, '['); err != nil {
		return err
	}
	for dec.More() {
		cr := &cmapi.CertificateRequest{}
		if err := dec.Decode(cr); err != nil {
			return err
		}
		if gvk := cr.GroupVersionKind(); gvk != cmapi.SchemeGroupVersion.WithKind(cmapi.CertificateRequestKind) {
			return fmt.Errorf("the API server listed a %s among CertificateRequests", gvk)
		}
		cr.TypeMeta = metav1.TypeMeta{} // as client-go's decoder leaves it
		kept, err := l.trim(cr)
		if err != nil {
			return err
		}
		out.Items = append(out.Items, *kept.(*cmapi.CertificateRequest))
	}
	return expectDelim(dec, ']')
}

// expectDelim reads the delimiter want (the decoder's delimiter type is its
// own: it is told apart from a string token by having a String method).
func expectDelim(dec sigsjson.Decoder, want rune) error {
	tok, err := dec.Token()
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	if err != nil {
		return err
	}
	if d, ok := tok.(fmt.Stringer); !ok || d.String() != string(want) {
		return fmt.Errorf("unexpected %v in a CertificateRequest list, want %c", tok, want)
	}
	return nil
}
