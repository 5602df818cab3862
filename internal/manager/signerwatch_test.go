package manager

import (
	"context"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
)

func csrOf(uid, signer string) *certificatesv1.CertificateSigningRequest {
	return &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: uid, UID: types.UID(uid)},
		Spec: certificatesv1.CertificateSigningRequestSpec{SignerName: signer}}
}

// TestOtherSignersLeavesOutOtherSignersCSRs: the CSR informer's list and
// watch carry only our signers' CSRs; the others are known by UID until
// deleted, and a relist (plain or by watch) forgets those it no longer
// sees.
func TestOtherSignersLeavesOutOtherSignersCSRs(t *testing.T) {
	ours := v1alpha1.ClusterIssuerSignerPrefix + "ejbca"
	const kubelet = "kubernetes.io/kube-apiserver-client-kubelet"
	fw := watch.NewFake()
	o := newOtherSigners()
	lw := o.over(&toolscache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
			return &certificatesv1.CertificateSigningRequestList{Items: []certificatesv1.CertificateSigningRequest{
				*csrOf("a", ours), *csrOf("k1", kubelet), *csrOf("k2", "example.com/other")}}, nil
		},
		WatchFuncWithContext: func(context.Context, metav1.ListOptions) (watch.Interface, error) { return fw, nil },
	}).(toolscache.ListerWatcherWithContext)

	out, err := lw.ListWithContext(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if items := out.(*certificatesv1.CertificateSigningRequestList).Items; len(items) != 1 || items[0].Name != "a" {
		t.Fatalf("listed %v, want only our signer's CSR a", items)
	}
	if !o.Has("k1") || !o.Has("k2") || o.Has("a") {
		t.Fatalf("after the list: k1 %v k2 %v a %v, want the other signers' known", o.Has("k1"), o.Has("k2"), o.Has("a"))
	}

	// A list-by-watch: its initial events replace what the list knew.
	w, err := lw.WatchWithContext(context.Background(), metav1.ListOptions{SendInitialEvents: ptr.To(true)})
	if err != nil {
		t.Fatal(err)
	}
	bookmark := &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "9",
		Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true"}}}
	go func() {
		fw.Add(csrOf("a", ours))
		fw.Add(csrOf("k1", kubelet)) // k2 was deleted while no watch ran
		fw.Add(csrOf("k3", kubelet))
		fw.Action(watch.Bookmark, bookmark)
		fw.Modify(csrOf("b", ours))
		fw.Delete(csrOf("k1", kubelet))
		fw.Add(csrOf("k4", kubelet))
		fw.Stop()
	}()
	var got []string
	for e := range w.ResultChan() {
		got = append(got, string(e.Type)+" "+e.Object.(*certificatesv1.CertificateSigningRequest).Name)
	}
	want := []string{"ADDED a", "BOOKMARK ", "MODIFIED b"}
	if len(got) != len(want) {
		t.Fatalf("the watch passed %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("the watch passed %v, want %v", got, want)
		}
	}
	for uid, other := range map[types.UID]bool{"a": false, "b": false, "k1": false, "k2": false, "k3": true, "k4": true} {
		if o.Has(uid) != other {
			t.Errorf("%s known as another signer's: %v, want %v", uid, o.Has(uid), other)
		}
	}
}
