package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/devstack"
)

type bench struct {
	opts  options
	stack *devstack.Stack
	bin   string
	work  string
	root  string
	seq   atomic.Int64
}

// runConfig is one measured run.
type runConfig struct {
	Auth string `json:"auth"`
	// Shape is how the requests look (shapes.go): plain or cert-manager.
	Shape     string        `json:"shape"`
	Workers   int           `json:"workers"`
	Latency   time.Duration `json:"latency_ns"`
	Count     int           `json:"count"`
	Namespace string        `json:"-"`
	// NullWrites are the null issuer's writes (Auth "null"): "" for one
	// merge patch, or nullWrites' others (the writecost scenario).
	NullWrites string `json:"null_writes,omitempty"`
}

// runResult is everything measured in one run.
type runResult struct {
	runConfig
	LatencyMs        float64            `json:"latency_ms"`
	Issued           int                `json:"issued"`
	Failed           int                `json:"failed"`
	Seconds          float64            `json:"seconds"`
	CertsPerSecond   float64            `json:"certs_per_second"`
	IdealPerSecond   float64            `json:"ideal_per_second"`
	P50Ms            float64            `json:"p50_ms"`
	P95Ms            float64            `json:"p95_ms"`
	P99Ms            float64            `json:"p99_ms"`
	CallsPerCert     map[string]float64 `json:"ejbca_calls_per_cert"`
	TLSHandshakes    int                `json:"tls_handshakes"`
	TokensIssued     int                `json:"tokens_issued"`
	CPUMsPerCert     float64            `json:"manager_cpu_ms_per_cert"`
	PeakRSSMiB       float64            `json:"manager_peak_rss_mib"`
	PeakHeapMiB      float64            `json:"manager_peak_heap_mib"`
	KubeWritesPerSec float64            `json:"manager_kube_requests_per_second"`
	KubeLatencyMs    float64            `json:"manager_kube_request_mean_ms"`
	CPUCores         float64            `json:"manager_cpu_cores"`
	// API is the measured process's own API traffic as the API server
	// counted it (see apiserver.go).
	API apiUsage `json:"api"`
	// CeilingPerSecond is the null issuer's rate in the same bench run
	// (same workers, load and client limits; one status write per
	// certificate, no EJBCA); FractionOfCeiling is CertsPerSecond over it.
	CeilingPerSecond  float64 `json:"ceiling_certs_per_second,omitempty"`
	FractionOfCeiling float64 `json:"fraction_of_ceiling,omitempty"`
	// Time is where a request's time went (timing.go).
	Time timeUsage `json:"time_per_request"`
	// Events are the process's events in the run's namespace.
	Events eventUsage `json:"events"`
	// Machine is the whole machine's CPU over the run (machinecpu.go).
	Machine machineUsage `json:"machine"`
}

// managerUser is the API server user the manager runs as in issue runs, so
// that the API server's counts of its requests can be told apart.
const managerUser = "ejbca-issuer-manager"

func (b *bench) namespace(prefix string) (string, error) {
	ns := fmt.Sprintf("%s-%d", prefix, b.seq.Add(1))
	return ns, b.stack.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
}

// issuer creates an EJBCAIssuer "ejbca" in ns with the simulator's
// credentials for auth (mtls or oauth2). nodes, when given, are the
// issuer's EJBCA nodes (url, then urls) instead of the simulator's own URL.
func (b *bench) issuer(ctx context.Context, ns, name, auth string, nodes ...string) (*v1alpha1.EJBCAIssuer, error) {
	sim := b.stack.Sim
	c := b.stack.Client
	objs := []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-client"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: sim.ClientCertPEM(), corev1.TLSPrivateKeyKey: sim.ClientKeyPEM()}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-oauth"},
			Data: map[string][]byte{"client_id": []byte(sim.OAuthClientID()), "client_secret": []byte(sim.OAuthClientSecret())}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-ca"}, Data: map[string]string{"ca.crt": string(sim.CABundlePEM())}},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return nil, err
		}
	}
	spec := v1alpha1.IssuerSpec{
		URL: sim.URL(), CAName: "IssuingCA", CertificateProfileName: "SERVER", EndEntityProfileName: "EMPTY",
		Auth:     v1alpha1.AuthSpec{Mode: v1alpha1.AuthModeMTLS, MTLS: &v1alpha1.MTLSAuth{SecretName: name + "-client"}},
		CABundle: &v1alpha1.CABundle{ConfigMapRef: &v1alpha1.ConfigMapKeySelector{Name: name + "-ca", Key: "ca.crt"}},
	}
	if len(nodes) > 0 {
		spec.URL = nodes[0]
		for _, u := range nodes[1:] {
			spec.URLs = append(spec.URLs, v1alpha1.NodeURL(u))
		}
	}
	if auth == "oauth2" {
		spec.Auth = v1alpha1.AuthSpec{Mode: v1alpha1.AuthModeOAuth2, OAuth2: &v1alpha1.OAuth2Auth{
			TokenURL: sim.TokenURL(), ClientSecretRef: &v1alpha1.ClientSecretRef{Name: name + "-oauth"}}}
	}
	iss := &v1alpha1.EJBCAIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
	return iss, c.Create(ctx, iss)
}

// readyWatcher records when each request of a namespace first turns Ready
// (or Failed), from an informer started before the requests exist.
type readyWatcher struct {
	mu     sync.Mutex
	ready  map[string]time.Time
	failed map[string]bool
	cancel context.CancelFunc
	done   chan struct{}
}

func (b *bench) watchRequests(ctx context.Context, ns string) (*readyWatcher, error) {
	c, err := cache.New(b.stack.RESTConfig, cache.Options{Scheme: b.stack.Client.Scheme(),
		DefaultNamespaces: map[string]cache.Config{ns: {}}})
	if err != nil {
		return nil, err
	}
	inf, err := c.GetInformer(ctx, &cmapi.CertificateRequest{})
	if err != nil {
		return nil, err
	}
	rw := &readyWatcher{ready: map[string]time.Time{}, failed: map[string]bool{}, done: make(chan struct{})}
	record := func(obj any) {
		cr, ok := obj.(*cmapi.CertificateRequest)
		if !ok {
			return
		}
		for _, c := range cr.Status.Conditions {
			if c.Type != cmapi.CertificateRequestConditionReady {
				continue
			}
			rw.mu.Lock()
			if _, seen := rw.ready[cr.Name]; !seen && c.Status == cmmeta.ConditionTrue {
				rw.ready[cr.Name] = time.Now()
			}
			if c.Reason == cmapi.CertificateRequestReasonFailed {
				rw.failed[cr.Name] = true
			}
			rw.mu.Unlock()
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    record,
		UpdateFunc: func(_, n any) { record(n) },
	}); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	rw.cancel = cancel
	go func() { defer close(rw.done); _ = c.Start(runCtx) }()
	if !c.WaitForCacheSync(ctx) {
		cancel()
		return nil, fmt.Errorf("the benchmark's informer did not sync")
	}
	return rw, nil
}

func (rw *readyWatcher) counts() (ready, failed int) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return len(rw.ready), len(rw.failed)
}

func (rw *readyWatcher) stop() {
	rw.cancel()
	<-rw.done
}

// createRequests creates and approves (as cert-manager's approver would) one
// CertificateRequest of a shape (shapes.go) per CSR, 32 at a time, and
// returns when each was created.
func (b *bench) createRequests(ctx context.Context, ns, issuerKind, issuerName, shape string, csrs [][]byte) (map[string]time.Time, error) {
	c := b.stack.Client
	created := make(map[string]time.Time, len(csrs))
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i, csr := range csrs {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, csr []byte) {
			defer wg.Done()
			defer func() { <-sem }()
			name := "req-" + strconv.Itoa(i)
			cr := &cmapi.CertificateRequest{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
				Spec: cmapi.CertificateRequestSpec{Request: csr,
					IssuerRef: cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: issuerKind, Name: issuerName}},
			}
			shapeRequest(cr, shape, name)
			err := c.Create(ctx, cr)
			t := time.Now()
			if err == nil {
				err = approve(ctx, c, cr)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			created[name] = t
		}(i, csr)
	}
	wg.Wait()
	return created, firstErr
}

// issueRun measures one run of the issue scenario: a fresh manager process,
// one issuer, K approved requests. With Auth "null" the null issuer
// (nullissuer.go) answers the requests instead, and no EJBCA is called.
func (b *bench) issueRun(ctx context.Context, rc runConfig) (*runResult, error) {
	sim := b.stack.Sim
	sim.SetLatency(rc.Latency)
	defer sim.SetLatency(0)
	ns, err := b.namespace("issue")
	if err != nil {
		return nil, err
	}
	rc.Namespace = ns
	if rc.Shape == "" {
		rc.Shape = shapePlain
	}
	requests, err := csrs(rc.Count, rc.Shape)
	if err != nil {
		return nil, err
	}
	var mgr *managerProcess
	user := managerUser
	if rc.Auth == "null" {
		user = nullIssuerUser
		if mgr, err = b.startNullIssuer(ctx, filepath.Join(b.work, ns+".log"), rc.Workers, rc.NullWrites); err != nil {
			return nil, err
		}
		defer mgr.stop()
	} else {
		iss, err := b.issuer(ctx, ns, "ejbca", rc.Auth)
		if err != nil {
			return nil, err
		}
		kubeconfig, err := b.clientUser(ctx, managerUser)
		if err != nil {
			return nil, err
		}
		if mgr, err = startManager(b.bin, kubeconfig, filepath.Join(b.work, ns+".log"), rc.Workers, b.managerFlags()...); err != nil {
			return nil, err
		}
		defer mgr.stop()
		if err := b.stack.WaitIssuerReady(ctx, iss, 60*time.Second); err != nil {
			return nil, err
		}
	}
	rw, err := b.watchRequests(ctx, ns)
	if err != nil {
		return nil, err
	}
	defer rw.stop()

	before := sim.Counters()
	cpuBefore, _ := mgr.cpu()
	machineBefore, _ := readMachineCPU()
	metricsBefore, _ := mgr.metrics()
	apiBefore, err := b.apiMetrics(ctx)
	if err != nil {
		return nil, err
	}
	mgr.resetPeakHeap()
	profileDone := b.profile(mgr, rc)
	defer profileDone()
	start := time.Now()
	created, err := b.createRequests(ctx, ns, v1alpha1.IssuerKind, "ejbca", rc.Shape, requests)
	if err != nil {
		return nil, err
	}
	timeout := 5*time.Minute + time.Duration(rc.Count)*rc.Latency
	deadline := time.Now().Add(timeout)
	for {
		ready, failed := rw.counts()
		if ready+failed >= rc.Count {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d requests Ready after %s", ready, rc.Count, timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	after := sim.Counters()
	cpuAfter, _ := mgr.cpu()
	machineAfter, _ := readMachineCPU()
	metricsAfter, _ := mgr.metrics()
	_, peakRSS, _ := mgr.rss()
	// Events are sent after the status write, from a queue: give the last
	// ones a moment before counting the process's API writes.
	time.Sleep(2 * time.Second)
	apiAfter, err := b.apiMetrics(ctx)
	if err != nil {
		return nil, err
	}

	rw.mu.Lock()
	var last time.Time
	var lat []time.Duration
	for name, t := range rw.ready {
		lat = append(lat, t.Sub(created[name]))
		if t.After(last) {
			last = t
		}
	}
	issued, failed := len(rw.ready), len(rw.failed)
	rw.mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	elapsed := last.Sub(start).Seconds()

	res := &runResult{runConfig: rc, LatencyMs: float64(rc.Latency.Milliseconds()), Issued: issued, Failed: failed, Seconds: elapsed,
		CallsPerCert: map[string]float64{}, TLSHandshakes: after.TLSHandshakes - before.TLSHandshakes,
		TokensIssued: after.TokensIssued - before.TokensIssued, PeakRSSMiB: peakRSS / (1 << 20),
		PeakHeapMiB: mgr.peakHeapBytes() / (1 << 20)}
	if elapsed > 0 {
		res.CertsPerSecond = float64(issued) / elapsed
		kube := sumMetric(metricsAfter, "rest_client_requests_total") - sumMetric(metricsBefore, "rest_client_requests_total")
		res.KubeWritesPerSec = kube / elapsed
		res.CPUCores = (cpuAfter - cpuBefore).Seconds() / elapsed
		sum := sumMetric(metricsAfter, "ejbca_issuer_kubernetes_request_duration_seconds_sum") - sumMetric(metricsBefore, "ejbca_issuer_kubernetes_request_duration_seconds_sum")
		count := sumMetric(metricsAfter, "ejbca_issuer_kubernetes_request_duration_seconds_count") - sumMetric(metricsBefore, "ejbca_issuer_kubernetes_request_duration_seconds_count")
		if count > 0 {
			res.KubeLatencyMs = 1000 * sum / count
		}
	}
	if rc.Latency > 0 {
		res.IdealPerSecond = float64(rc.Workers) / rc.Latency.Seconds()
	}
	res.P50Ms, res.P95Ms, res.P99Ms = percentile(lat, 50), percentile(lat, 95), percentile(lat, 99)
	for ep, byStatus := range after.Calls {
		n := 0
		for status, c := range byStatus {
			n += c - before.Calls[ep][status]
		}
		if n > 0 && issued > 0 {
			res.CallsPerCert[ep] = float64(n) / float64(issued)
		}
	}
	if issued > 0 {
		res.CPUMsPerCert = float64((cpuAfter - cpuBefore).Milliseconds()) / float64(issued)
	}
	res.API = usage(apiBefore, apiAfter, user, issued)
	res.Time = timeSpent(metricsBefore, metricsAfter, issued)
	res.Machine = machineSpent(machineBefore, machineAfter, elapsed, issued, runtime.NumCPU())
	if res.Events, err = b.countEvents(ctx, ns, issued); err != nil {
		return nil, err
	}
	return res, b.cleanup(ctx, ns)
}

// managerFlags are the manager's client limits: its defaults unless
// --kube-api-qps is given.
func (b *bench) managerFlags() []string {
	if b.opts.qps <= 0 {
		return nil
	}
	return []string{"--kube-api-qps=" + strconv.Itoa(b.opts.qps), "--kube-api-burst=" + strconv.Itoa(2*b.opts.qps)}
}

func percentile(sorted []time.Duration, p int) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	if i > 0 {
		i--
	}
	return float64(sorted[min(i, len(sorted)-1)].Microseconds()) / 1000
}

// approve sets Approved as cert-manager's approver does. The approver also
// runs in the stack; whichever is first approves, and the other changes
// nothing: the patch carries the resourceVersion cr was read at, and when
// the approver wrote first it fails with a conflict and the request, read
// again, is left as the approver left it. (A merge patch without it would
// approve a second time, with another message: one more change, which made
// about one request in twenty conflict with the manager's status write and
// cost it a second reconcile and write, as no real cluster would.)
func approve(ctx context.Context, c client.Client, cr *cmapi.CertificateRequest) error {
	for attempt := 0; ; attempt++ {
		if apiutil.CertificateRequestIsApproved(cr) {
			return nil
		}
		base := cr.DeepCopy()
		now := metav1.Now()
		cr.Status.Conditions = append(cr.Status.Conditions, cmapi.CertificateRequestCondition{Type: cmapi.CertificateRequestConditionApproved,
			Status: cmmeta.ConditionTrue, Reason: "cert-manager.io", Message: "approved by the benchmark", LastTransitionTime: &now})
		err := c.Status().Patch(ctx, cr, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
		if !apierrors.IsConflict(err) {
			return err
		}
		if attempt == 10 {
			return fmt.Errorf("approving %s: still conflicting after %d attempts: %w", cr.Name, attempt+1, err)
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
			return err
		}
	}
}

// profile captures the manager's CPU profile for the first 10s of a run
// when --profile is set; the returned func waits for it.
func (b *bench) profile(m *managerProcess, rc runConfig) func() {
	if b.opts.profile == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		data, err := httpGet(strings.TrimSuffix(m.metricsURL, "/metrics") + "/debug/pprof/profile?seconds=10")
		if err != nil {
			progress("profile: %v", err)
			return
		}
		name := fmt.Sprintf("%s-%s-%s-w%d-%s.pprof", rc.Namespace, rc.Auth, rc.Shape, rc.Workers, rc.Latency)
		if err := os.MkdirAll(b.opts.profile, 0o755); err != nil {
			progress("profile: %v", err)
			return
		}
		if err := os.WriteFile(filepath.Join(b.opts.profile, "cpu-"+name), data, 0o644); err != nil {
			progress("profile: %v", err)
			return
		}
		progress("profile: %s", filepath.Join(b.opts.profile, "cpu-"+name))
		// Every allocation since the process started (go tool pprof
		// -sample_index=alloc_space): what keeps the GC busy.
		if data, err := httpGet(strings.TrimSuffix(m.metricsURL, "/metrics") + "/debug/pprof/allocs"); err == nil {
			_ = os.WriteFile(filepath.Join(b.opts.profile, "allocs-"+name), data, 0o644)
		}
	}()
	return func() { <-done }
}

// cleanup deletes a run's requests and issuers, so the next run's manager
// neither lists nor health-checks them.
func (b *bench) cleanup(ctx context.Context, ns string) error {
	if err := b.stack.Client.DeleteAllOf(ctx, &cmapi.CertificateRequest{}, client.InNamespace(ns)); err != nil {
		return err
	}
	return b.stack.Client.DeleteAllOf(ctx, &v1alpha1.EJBCAIssuer{}, client.InNamespace(ns))
}
