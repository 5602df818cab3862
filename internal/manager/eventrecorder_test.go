package manager

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/certctl-io/ejbca-issuer/controllers"
)

// TestEventsGoAsProtobuf: the manager's events (one for every certificate)
// are sent to the API server as protobuf, not JSON, and arrive whole: the
// object, reason, action, note and reporter recorded.
func TestEventsGoAsProtobuf(t *testing.T) {
	const ns = "events"
	cfg, k8s := apiServer(t, ns)
	var mu sync.Mutex
	var sent []string
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/apis/events.k8s.io/") {
				mu.Lock()
				sent = append(sent, r.Header.Get("Content-Type")+" accepting "+r.Header.Get("Accept"))
				mu.Unlock()
			}
			return rt.RoundTrip(r)
		})
	})
	b, err := holderOnlyBroadcaster(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	regarding := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "regarding", Namespace: ns}}
	if err := k8s.Create(ctx, regarding); err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown()
	rec := b.NewRecorder(Scheme(), controllers.EventReporter)
	rec.Eventf(regarding, nil, corev1.EventTypeNormal, "Issued", "Sign", "certificate %s issued", "1A")

	var got eventsv1.Event
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list eventsv1.EventList
		if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		if len(list.Items) > 0 {
			got = list.Items[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the event never arrived")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got.Regarding.Name != "regarding" || got.Regarding.Kind != "ConfigMap" || got.Reason != "Issued" || got.Action != "Sign" ||
		got.Note != "certificate 1A issued" || got.Type != corev1.EventTypeNormal || got.ReportingController != controllers.EventReporter {
		t.Fatalf("the event arrived as %+v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 1 || !strings.HasPrefix(sent[0], runtime.ContentTypeProtobuf+" accepting "+runtime.ContentTypeProtobuf) {
		t.Fatalf("event writes went as %q, want one as %s", sent, runtime.ContentTypeProtobuf)
	}
}
