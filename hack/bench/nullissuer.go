package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	cmac "github.com/cert-manager/cert-manager/pkg/client/applyconfigurations/certmanager/v1"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/testenv"
)

// The null issuer is the ceiling the bench measures the manager against: a
// controller with the manager's workers, and client limits that do not bind, that watches every
// CertificateRequest, as the manager does, and answers each approved request
// of our issuer group with one status write (Ready=True and a fixed
// self-signed certificate). It calls nothing else and writes nothing else:
// whatever the manager issues more slowly than this is the cost of its own
// work, not of the API server. It runs as its own process (this binary with
// --null-issuer), so its CPU is measured like the manager's, and it is no
// part of the manager binary.

const nullIssuerUser = "bench-null-issuer"

// nullIssuerQPS is the null issuer's client limit (burst twice it): high
// enough never to bind, so its rate is the API server's ceiling, not a
// client's.
const nullIssuerQPS = 1000

// nullIssuerMain runs the null issuer until SIGINT/SIGTERM. Its flags
// follow the manager's names.
func nullIssuerMain(args []string) error {
	fs := flag.NewFlagSet("null-issuer", flag.ContinueOnError)
	workers := fs.Int("max-concurrent-reconciles", 16, "")
	qps := fs.Float64("kube-api-qps", 50, "")
	burst := fs.Int("kube-api-burst", 100, "")
	metricsAddr := fs.String("metrics-bind-address", "127.0.0.1:0", "")
	write := fs.String("write", "merge", "how the status is written: merge (a merge patch) or apply (server-side apply with a resourceVersion, as the manager does)")
	event := fs.Bool("event", false, "also record one events.k8s.io event per certificate, as the manager does")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctrl.SetLogger(logr.Discard())
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = float32(*qps), *burst
	certPEM, err := selfSigned()
	if err != nil {
		return err
	}
	// pprof as the manager serves it with --enable-pprof, so --profile
	// compares the two processes' CPU profiles.
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: testenv.Scheme,
		Metrics: metricsserver.Options{BindAddress: *metricsAddr, ExtraHandlers: map[string]http.Handler{
			"/debug/pprof/profile": http.HandlerFunc(pprof.Profile), "/debug/pprof/allocs": pprof.Handler("allocs")}}, HealthProbeBindAddress: "0"})
	if err != nil {
		return err
	}
	r := &nullIssuer{c: mgr.GetClient(), cert: certPEM, apply: *write == "apply"}
	if *event {
		r.events = mgr.GetEventRecorder("bench-null-issuer")
	}
	if err := ctrl.NewControllerManagedBy(mgr).Named("nullissuer").For(&cmapi.CertificateRequest{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: *workers}).Complete(r); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return mgr.Start(ctx)
}

type nullIssuer struct {
	c    client.Client
	cert []byte
	// apply writes the status by server-side apply and events records an
	// event per certificate: the manager's writes, to price them against
	// the merge patch alone (the writecost scenario).
	apply  bool
	events events.EventRecorder
	// written remembers the requests already answered: a reconcile queued
	// by an earlier event (the approver's write) can run before the cache
	// has seen the Ready write, and must not write again.
	written sync.Map
}

func (r *nullIssuer) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var cr cmapi.CertificateRequest
	if err := r.c.Get(ctx, req.NamespacedName, &cr); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if cr.Spec.IssuerRef.Group != v1alpha1.GroupVersion.Group {
		return ctrl.Result{}, nil
	}
	approved := false
	for _, c := range cr.Status.Conditions {
		switch {
		case c.Type == cmapi.CertificateRequestConditionReady && c.Status == cmmeta.ConditionTrue,
			c.Type == cmapi.CertificateRequestConditionReady && c.Reason == cmapi.CertificateRequestReasonFailed,
			c.Type == cmapi.CertificateRequestConditionDenied && c.Status == cmmeta.ConditionTrue:
			return ctrl.Result{}, nil
		case c.Type == cmapi.CertificateRequestConditionApproved && c.Status == cmmeta.ConditionTrue:
			approved = true
		}
	}
	if !approved {
		return ctrl.Result{}, nil
	}
	if _, done := r.written.Load(cr.UID); done {
		return ctrl.Result{}, nil
	}
	now := metav1.Now()
	if r.apply {
		cond := cmac.CertificateRequestCondition().WithType(cmapi.CertificateRequestConditionReady).WithStatus(cmmeta.ConditionTrue).
			WithReason(cmapi.CertificateRequestReasonIssued).WithMessage("issued by the null issuer").WithLastTransitionTime(now)
		status := cmac.CertificateRequestStatus().WithConditions(cond).WithCertificate(r.cert...).WithCA(r.cert...)
		if err := r.c.Status().Apply(ctx, cmac.CertificateRequest(cr.Name, cr.Namespace).WithResourceVersion(cr.ResourceVersion).WithStatus(status),
			client.FieldOwner("bench-null-issuer"), client.ForceOwnership); err != nil {
			return ctrl.Result{}, err
		}
	} else if err := r.mergePatch(ctx, &cr, now); err != nil {
		return ctrl.Result{}, err
	}
	r.written.Store(cr.UID, true)
	if r.events != nil {
		r.events.Eventf(&cr, nil, corev1.EventTypeNormal, cmapi.CertificateRequestReasonIssued, "Sign", "issued by the null issuer")
	}
	return ctrl.Result{}, nil
}

func (r *nullIssuer) mergePatch(ctx context.Context, cr *cmapi.CertificateRequest, now metav1.Time) error {
	base := cr.DeepCopy()
	cr.Status.Conditions = append(cr.Status.Conditions, cmapi.CertificateRequestCondition{Type: cmapi.CertificateRequestConditionReady,
		Status: cmmeta.ConditionTrue, Reason: cmapi.CertificateRequestReasonIssued, Message: "issued by the null issuer", LastTransitionTime: &now})
	cr.Status.Certificate, cr.Status.CA = r.cert, r.cert
	// One write per certificate: a merge patch of the status, no
	// resourceVersion precondition.
	return r.c.Status().Patch(ctx, cr, client.MergeFrom(base))
}

func selfSigned() ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "null issuer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), DNSNames: []string{"null.example.com"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// startNullIssuer runs this binary as the null issuer, as its own API user.
func (b *bench) startNullIssuer(ctx context.Context, logPath string, workers int, writes string) (*managerProcess, error) {
	kubeconfig, err := b.clientUser(ctx, nullIssuerUser)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	qps := max(b.opts.qps, nullIssuerQPS)
	args := []string{"--null-issuer", "--max-concurrent-reconciles=" + strconv.Itoa(workers),
		"--kube-api-qps=" + strconv.Itoa(qps), "--kube-api-burst=" + strconv.Itoa(2*qps),
		"--metrics-bind-address=" + addr}
	if strings.HasPrefix(writes, "apply") {
		args = append(args, "--write=apply")
	}
	if strings.HasSuffix(writes, "+event") {
		args = append(args, "--event")
	}
	m, err := startProcess(self, args, addr, kubeconfig, logPath)
	if err != nil {
		return nil, fmt.Errorf("the null issuer: %w", err)
	}
	return m, nil
}
