package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
)

// scaleResult is one point of the scale scenario: a fresh manager in a
// cluster holding Finished CertificateRequests (half ours, half another
// issuer's, all final) and ForeignCSRs Kubernetes CSRs of another signer.
type scaleResult struct {
	// Variant names the manager's settings for this run (scaleVariant).
	Variant     string `json:"variant"`
	Finished    int    `json:"finished_requests"`
	Ours        int    `json:"finished_requests_ours"`
	ForeignCSRs int    `json:"foreign_csrs"`
	// RequestBytes is the mean size of a finished request as JSON.
	RequestBytes int `json:"request_json_bytes"`
	// CacheSyncSeconds: process start to the cache synced (readyz past
	// its first stage); ReadySeconds: to /readyz OK (the inventory taken).
	CacheSyncSeconds float64 `json:"cache_sync_seconds"`
	ReadySeconds     float64 `json:"ready_seconds"`
	// FirstSignatureSeconds: process start to Ready=True of a request
	// created the moment /readyz said ready.
	FirstSignatureSeconds float64 `json:"first_signature_seconds"`
	SettledRSSMiB         float64 `json:"settled_rss_mib"`
	PeakRSSMiB            float64 `json:"peak_rss_mib"`
	LiveHeapMiB           float64 `json:"live_heap_mib"`
	StartupCPUSeconds     float64 `json:"startup_cpu_seconds"`
	// NewPerSecond: certificates per second for afterStartBatch new
	// requests created once settled, the median of afterStartRounds
	// batches (compare with the empty cluster's: VsEmpty).
	NewPerSecond float64   `json:"new_requests_per_second"`
	NewRounds    []float64 `json:"new_requests_per_second_rounds"`
	// VsEmpty is NewPerSecond over the same variant's with no finished
	// requests in the same run (0 when the run measured no empty cluster).
	VsEmpty float64 `json:"new_requests_vs_empty,omitempty"`
	// NewCPUMillis: the manager's CPU per new request over a batch, the
	// median of the batches; CPUVsEmpty is it over the same variant's
	// with no finished requests. CPU is far less sensitive than throughput
	// to what else runs on the machine: it shows whether the finished
	// requests make each new one cost the manager more.
	NewCPUMillis       float64   `json:"new_request_cpu_ms"`
	NewCPUMillisRounds []float64 `json:"new_request_cpu_ms_rounds"`
	CPUVsEmpty         float64   `json:"new_request_cpu_vs_empty,omitempty"`
	FillSeconds        float64   `json:"fill_seconds,omitempty"`
	// Load is the machine's 1-minute load average as the manager started
	// (the machine is shared: figures from busy windows are not comparable).
	Load float64 `json:"load_average"`
}

// afterStartBatch is how many new requests each scale run signs once the
// manager has settled, to compare throughput with an empty cluster's.
const afterStartBatch = 200

// afterStartRounds is how many such batches each run signs, one after the
// other, after one batch that is not counted (a fresh process's first
// batch pays its warm-up: connections and TLS sessions to EJBCA and the
// API server): one batch of 200 takes 1-3 s, short enough that a
// neighbour's burst on a shared machine moves it by half; the median of
// five is steadier.
const afterStartRounds = 5

// scaleVariant is a way to run the manager in the scale scenario: extra
// environment (KEY=VALUE) and flags, so that settings (streaming lists,
// GOMEMLIMIT) can be compared against the same cluster in the same window;
// Bin, when set, is another manager binary (an older build, to compare a
// change against the code before it in the same window).
type scaleVariant struct {
	Name  string
	Env   []string
	Flags []string
	Bin   string
}

// parseScaleVariants reads "name=TOKEN TOKEN;name2=..." where a token
// starting with "--" is a manager flag, bin=PATH the manager binary to run,
// and any other KEY=VALUE for its environment; a bare name runs the
// defaults.
func parseScaleVariants(spec string) []scaleVariant {
	var out []scaleVariant
	for _, part := range strings.Split(spec, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, rest, _ := strings.Cut(part, "=")
		v := scaleVariant{Name: name}
		for _, tok := range strings.Fields(rest) {
			if strings.HasPrefix(tok, "--") {
				v.Flags = append(v.Flags, tok)
			} else if path, ok := strings.CutPrefix(tok, "bin="); ok {
				v.Bin = path
			} else {
				v.Env = append(v.Env, tok)
			}
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		out = []scaleVariant{{Name: "default"}}
	}
	return out
}

// scenarioScale measures start-up and memory against the number of finished
// requests in the cluster (issue 21's targets: 30,000 finished requests
// and 10,000 foreign CSRs, peak RSS ≤ 128 MiB, settled ≤ 96 MiB, first
// signature ≤ 5 s). The cluster grows from one point to the next.
func (b *bench) scenarioScale(ctx context.Context, rep *report) error {
	sizes := []int{0, 2000, 10000, 30000}
	if b.opts.quick {
		sizes = []int{0, 600}
	}
	if len(b.opts.scaleSizes) > 0 {
		sizes = b.opts.scaleSizes
	}
	ns, err := b.namespace("scale")
	if err != nil {
		return err
	}
	iss, err := b.issuer(ctx, ns, "ejbca", "mtls")
	if err != nil {
		return err
	}
	fill, err := newFinishedFiller(b.stack.RESTConfig, b.stack.Client.Scheme(), ns, iss.Name)
	if err != nil {
		return err
	}
	batch, err := csrs(afterStartBatch, shapePlain)
	if err != nil {
		return err
	}
	var results []*scaleResult
	for _, n := range sizes {
		progress("scale: filling the cluster to %d finished requests and %d foreign CSRs", n, n/3)
		filling := time.Now()
		if err := fill.to(ctx, n); err != nil {
			return err
		}
		fillSeconds := time.Since(filling).Seconds()
		progress("scale: filled in %.0fs", fillSeconds)
		if n > 0 {
			// cert-manager's controllers in the stack work off the new
			// requests for a while after the last create: let the API
			// server settle before a manager is measured. (The first
			// signatures of 74-93 s seen before, ready after 0.4-13 s,
			// were not the API server's: /readyz said Ready before the
			// inventory was taken, so the first request was inherited
			// and waited the settle time; controllers.Readiness.)
			time.Sleep(20 * time.Second)
		}
		for _, v := range b.opts.scaleVariants {
			progress("scale: a fresh manager (%s) with %d finished requests in the cluster", v.Name, n)
			r, err := b.scaleRun(ctx, ns, iss, n, v, batch)
			if err != nil {
				return err
			}
			r.RequestBytes, r.FillSeconds = fill.meanBytes(), fillSeconds
			results = append(results, r)
			rep.Results["scale"] = append(rep.Results["scale"], r)
			progress("scale: %s", r.row())
		}
	}
	fmt.Printf("\n### scale: a fresh manager against finished requests in the cluster (half ours), and N/3 foreign CSRs\n\n")
	empty := map[string]*scaleResult{}
	for _, r := range results {
		if r.Finished == 0 {
			empty[r.Variant] = r
		}
	}
	for _, r := range results {
		if e := empty[r.Variant]; e != nil && e.NewPerSecond > 0 && e.NewCPUMillis > 0 {
			r.VsEmpty, r.CPUVsEmpty = r.NewPerSecond/e.NewPerSecond, r.NewCPUMillis/e.NewCPUMillis
		}
	}
	fmt.Println("| variant | finished requests | foreign CSRs | request JSON bytes | cache synced s | ready s | first signature s | settled RSS MiB | peak RSS MiB | live heap MiB | start-up CPU s | new requests/s (median of 5) | vs empty | manager CPU ms per new request (median of 5) | vs empty | load |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		fmt.Println(r.row())
	}
	if b.opts.scalePlot != "" {
		if err := writeScalePlot(b.opts.scalePlot, results); err != nil {
			return err
		}
		fmt.Printf("\nPlot: %s\n", b.opts.scalePlot)
	}
	return nil
}

func (r *scaleResult) row() string {
	vs, cpuVs := "", ""
	if r.VsEmpty > 0 {
		vs, cpuVs = fmt.Sprintf("%.2f", r.VsEmpty), fmt.Sprintf("%.2f", r.CPUVsEmpty)
	}
	return fmt.Sprintf("| %s | %d | %d | %d | %.1f | %.1f | %.1f | %.0f | %.0f | %.1f | %.1f | %.1f | %s | %.2f | %s | %.1f |", r.Variant, r.Finished, r.ForeignCSRs, r.RequestBytes,
		r.CacheSyncSeconds, r.ReadySeconds, r.FirstSignatureSeconds, r.SettledRSSMiB, r.PeakRSSMiB, r.LiveHeapMiB, r.StartupCPUSeconds, r.NewPerSecond, vs, r.NewCPUMillis, cpuVs, r.Load)
}

// scaleRun starts a manager, follows /readyz, signs one request as soon as
// it is ready, and reads the manager's memory and CPU once settled.
//
// Then it signs batch new requests of an issuer in a namespace of the run's
// own (removed afterwards, with the manager stopped, so the cluster stays
// at n finished requests).
func (b *bench) scaleRun(ctx context.Context, ns string, iss *v1alpha1.EJBCAIssuer, n int, v scaleVariant, batch [][]byte) (*scaleResult, error) {
	health, err := freePort()
	if err != nil {
		return nil, err
	}
	bin := b.bin
	if v.Bin != "" {
		bin = v.Bin
	}
	load := loadAverage()
	start := time.Now()
	mgr, err := startManagerEnv(bin, b.stack.Kubeconfig, filepath.Join(b.work, fmt.Sprintf("scale-%d-%s.log", n, v.Name)), b.opts.workers, v.Env,
		append(append(b.managerFlags(), "--health-probe-bind-address="+health), v.Flags...)...)
	if err != nil {
		return nil, err
	}
	defer mgr.stop()
	tag := fmt.Sprintf("scale-%d-%s", n, v.Name)
	profiled := b.scaleProfile(mgr, "/debug/pprof/profile?seconds=15", tag+".cpu.pprof")
	defer profiled()
	res := &scaleResult{Variant: v.Name, Finished: n, Ours: (n + 1) / 2, ForeignCSRs: n / 3, Load: load}
	synced, ready, err := waitReady(ctx, "http://"+health+"/readyz/signing", 5*time.Minute)
	if err != nil {
		return nil, err
	}
	res.CacheSyncSeconds, res.ReadySeconds = synced.Sub(start).Seconds(), ready.Sub(start).Seconds()

	requests, err := csrs(1, shapePlain)
	if err != nil {
		return nil, err
	}
	cr := &cmapi.CertificateRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("first-%d-%s", n, v.Name)},
		Spec: cmapi.CertificateRequestSpec{Request: requests[0], Usages: []cmapi.KeyUsage{cmapi.UsageServerAuth, cmapi.UsageDigitalSignature},
			IssuerRef: cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: v1alpha1.IssuerKind, Name: iss.Name}},
	}
	c := b.stack.Client
	if err := c.Create(ctx, cr); err != nil {
		return nil, err
	}
	if err := approve(ctx, c, cr); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
			return nil, err
		}
		if c := readyOf(cr); c != nil && c.Status == cmmeta.ConditionTrue {
			res.FirstSignatureSeconds = time.Since(start).Seconds()
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the first request was not signed within 2 minutes of readiness")
		}
	}
	cpu, _ := mgr.cpu()
	res.StartupCPUSeconds = cpu.Seconds()
	time.Sleep(5 * time.Second) // settle: informers' initial work done, GC caught up
	res.LiveHeapMiB = heapAfterGC(mgr) / (1 << 20)
	b.scaleProfile(mgr, "/debug/pprof/heap", tag+".heap.pprof")()
	cur, peak, _ := mgr.rss()
	res.SettledRSSMiB, res.PeakRSSMiB = cur/(1<<20), peak/(1<<20)

	for round := range afterStartRounds + 1 {
		// Each batch in a namespace of its own (request names repeat).
		newNS, err := b.namespace("scale-new")
		if err != nil {
			return nil, err
		}
		defer func() { _ = b.cleanup(context.Background(), newNS) }()
		newIss, err := b.issuer(ctx, newNS, "ejbca", "mtls")
		if err != nil {
			return nil, err
		}
		before, err := mgr.cpu()
		if err != nil {
			return nil, err
		}
		rate, err := b.signBatch(ctx, newNS, newIss, batch)
		if err != nil {
			return nil, err
		}
		after, err := mgr.cpu()
		if err != nil {
			return nil, err
		}
		if round == 0 {
			continue // the warm-up batch
		}
		res.NewRounds = append(res.NewRounds, rate)
		res.NewCPUMillisRounds = append(res.NewCPUMillisRounds, float64((after-before).Microseconds())/1000/float64(len(batch)))
	}
	res.NewPerSecond = median(res.NewRounds)
	res.NewCPUMillis = median(res.NewCPUMillisRounds)
	return res, nil
}

func median(v []float64) float64 {
	sorted := slices.Sorted(slices.Values(v))
	return sorted[len(sorted)/2]
}

// signBatch creates and approves a request per CSR for iss and returns
// certificates per second from the first creation to the last Ready.
func (b *bench) signBatch(ctx context.Context, ns string, iss *v1alpha1.EJBCAIssuer, batch [][]byte) (float64, error) {
	if err := b.stack.WaitIssuerReady(ctx, iss, 60*time.Second); err != nil {
		return 0, err
	}
	rw, err := b.watchRequests(ctx, ns)
	if err != nil {
		return 0, err
	}
	defer rw.stop()
	begin := time.Now()
	if _, err := b.createRequests(ctx, ns, v1alpha1.IssuerKind, iss.Name, shapePlain, batch); err != nil {
		return 0, err
	}
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		ready, failed := rw.counts()
		if failed > 0 {
			return 0, fmt.Errorf("%d of the new requests failed", failed)
		}
		if ready == len(batch) {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d of %d new requests Ready after 3 minutes", ready, len(batch))
		}
	}
	rw.mu.Lock()
	var last time.Time
	for _, t := range rw.ready {
		if t.After(last) {
			last = t
		}
	}
	rw.mu.Unlock()
	return float64(len(batch)) / last.Sub(begin).Seconds(), nil
}

func readyOf(cr *cmapi.CertificateRequest) *cmapi.CertificateRequestCondition {
	for i := range cr.Status.Conditions {
		if cr.Status.Conditions[i].Type == cmapi.CertificateRequestConditionReady {
			return &cr.Status.Conditions[i]
		}
	}
	return nil
}

// waitReady polls the manager's readiness check: synced is when it first
// stopped saying the cache has not synced, ready when it passed.
func waitReady(ctx context.Context, url string, limit time.Duration) (synced, ready time.Time, err error) {
	deadline := time.Now().Add(limit)
	for ; time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ctx.Err() != nil {
			return synced, ready, ctx.Err()
		}
		res, err := http.Get(url)
		if err != nil {
			continue // not serving yet
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		now := time.Now()
		if synced.IsZero() && !strings.Contains(string(body), "cache has not synced") {
			synced = now
		}
		if res.StatusCode == http.StatusOK {
			return synced, now, nil
		}
	}
	return synced, ready, fmt.Errorf("the manager was not ready within %s", limit)
}

// finishedFiller creates final CertificateRequests shaped as cert-manager
// leaves them (P-256 CSR, RSA-2048 leaf and intermediate, status.ca,
// approved and Ready), half of them ours (with the issuance record the
// manager writes), and foreign CSRs, growing the
// cluster to a given count.
type finishedFiller struct {
	c          client.Client
	ns, issuer string
	requests   int
	csrs       int
	csrPEM     [][]byte
	chains     [][]byte
	leaves     []*x509.Certificate
	ca         []byte
	// key seals the issuance records of our half, as the manager's own
	// key would (the manager cannot verify them: nothing is revoked here).
	key         signing.IssuanceKey
	bytes, seen atomic.Int64
}

// The filler has a client of its own, limited only by the API server
// (filling is setup, not measured; at 200 queries per second 30,000
// requests took 8 minutes).
func newFinishedFiller(cfg *rest.Config, scheme *runtime.Scheme, ns, issuer string) (*finishedFiller, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 5000, 10000
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	f := &finishedFiller{c: c, ns: ns, issuer: issuer, key: make(signing.IssuanceKey, 32)}
	if _, err := rand.Read(f.key); err != nil {
		return nil, err
	}
	if f.csrPEM, err = csrs(8, shapePlain); err != nil {
		return nil, err
	}
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Bench Intermediate CA", Organization: []string{"Bench"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	f.ca = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	leafKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	// A pool of leaves (each request's serial need not be unique here:
	// nothing is revoked); RSA signatures are what makes them slow to make.
	for i := range 64 {
		name := fmt.Sprintf("svc-%d.bench.example.com", i)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(1000 + i)), Subject: pkix.Name{CommonName: name},
			DNSNames: []string{name, "alt-" + name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caTmpl, &leafKey.PublicKey, caKey)
		if err != nil {
			return nil, err
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		f.leaves = append(f.leaves, leaf)
		f.chains = append(f.chains, append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), f.ca...))
	}
	return f, nil
}

func (f *finishedFiller) meanBytes() int {
	if f.seen.Load() == 0 {
		return 0
	}
	return int(f.bytes.Load() / f.seen.Load())
}

// to grows the cluster to n finished requests and n/3 foreign CSRs.
func (f *finishedFiller) to(ctx context.Context, n int) error {
	if err := parallel(ctx, f.requests, n, f.request); err != nil {
		return err
	}
	f.requests = max(f.requests, n)
	if err := parallel(ctx, f.csrs, n/3, f.foreignCSR); err != nil {
		return err
	}
	f.csrs = max(f.csrs, n/3)
	return nil
}

// parallel runs do(i) for i in [from, to) on 24 goroutines, stopping at the
// first error.
func parallel(ctx context.Context, from, to int, do func(context.Context, int) error) error {
	var next atomic.Int64
	next.Store(int64(from))
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= to || ctx.Err() != nil {
					return
				}
				if err := do(ctx, i); err != nil {
					once.Do(func() { firstErr = err })
					next.Store(int64(to))
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

func (f *finishedFiller) request(ctx context.Context, i int) error {
	ref := cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: v1alpha1.IssuerKind, Name: f.issuer}
	if i%2 == 1 {
		ref = cmmeta.IssuerReference{Group: "cert-manager.io", Kind: "ClusterIssuer", Name: "letsencrypt-prod"}
	}
	name := fmt.Sprintf("done-%d", i)
	// Owned by its Certificate, as cert-manager makes every request (the
	// Certificate itself is not created: nothing here reconciles it).
	owner := metav1.OwnerReference{APIVersion: cmapi.SchemeGroupVersion.String(), Kind: cmapi.CertificateKind, Name: "svc-" + name,
		UID: types.UID(fmt.Sprintf("00000000-0000-4000-8000-%012d", i)), Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}
	cr := &cmapi.CertificateRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name, OwnerReferences: []metav1.OwnerReference{owner}, Annotations: map[string]string{
			cmapi.CertificateNameKey: "svc-" + name, cmapi.CertificateRequestRevisionAnnotationKey: "1",
			cmapi.CertificateRequestPrivateKeyAnnotationKey: "svc-" + name + "-tls", "cert-manager.io/certificate-secret-name": "svc-" + name + "-tls"}},
		Spec: cmapi.CertificateRequestSpec{Request: f.csrPEM[i%len(f.csrPEM)], IssuerRef: ref,
			Duration: &metav1.Duration{Duration: 90 * 24 * time.Hour}, Usages: []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageKeyEncipherment, cmapi.UsageServerAuth}},
	}
	if err := f.c.Create(ctx, cr); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return err
		}
		cr.ResourceVersion = ""
	}
	created := cr.ResourceVersion != ""
	now := metav1.Now()
	for attempt := 0; ; attempt++ {
		// The created object's version is usually still current (one call
		// fewer); cert-manager's approver may have written in between.
		if !created || attempt > 0 {
			if err := f.c.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
				return err
			}
		}
		cr.Status = cmapi.CertificateRequestStatus{
			Conditions: []cmapi.CertificateRequestCondition{
				{Type: cmapi.CertificateRequestConditionApproved, Status: cmmeta.ConditionTrue, Reason: "cert-manager.io", Message: "Certificate request has been approved by cert-manager.io", LastTransitionTime: &now},
				{Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionTrue, Reason: cmapi.CertificateRequestReasonIssued, Message: "Certificate fetched from issuer successfully", LastTransitionTime: &now},
			},
			Certificate: f.chains[i%len(f.chains)], CA: f.ca,
		}
		if i%2 == 0 {
			// Ours: signed by the manager, which records what it issued.
			rec := f.key.IssuanceRecordCondition(cr.UID, f.leaves[i%len(f.leaves)], now)
			cr.Status.Conditions = append(cr.Status.Conditions, cmapi.CertificateRequestCondition{Type: *rec.Type, Status: *rec.Status,
				Reason: *rec.Reason, Message: *rec.Message, LastTransitionTime: rec.LastTransitionTime})
		}
		err := f.c.Status().Update(ctx, cr)
		if err == nil {
			break
		}
		if !apierrors.IsConflict(err) || attempt > 5 {
			return err
		}
	}
	if i%50 == 0 {
		if data, err := json.Marshal(cr); err == nil {
			f.bytes.Add(int64(len(data)))
			f.seen.Add(1)
		}
	}
	return nil
}

// foreignCSR creates a CSR for another signer, as kubelets do for their
// client certificates.
func (f *finishedFiller) foreignCSR(ctx context.Context, i int) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	node := fmt.Sprintf("node-%d", i)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}}}, key)
	if err != nil {
		return err
	}
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("csr-%s-%d", f.ns, i)},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: "example.com/bench-kubelet",
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		},
	}
	if err := f.c.Create(ctx, csr); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// scaleProfile saves one of the manager's pprof profiles under --profile
// (none without it); the returned func waits for it.
func (b *bench) scaleProfile(m *managerProcess, path, file string) func() {
	if b.opts.profile == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		data, err := httpGet(strings.TrimSuffix(m.metricsURL, "/metrics") + path)
		if err != nil {
			progress("profile: %v", err)
			return
		}
		if err := os.WriteFile(filepath.Join(b.opts.profile, file), data, 0o644); err == nil {
			progress("profile: %s", filepath.Join(b.opts.profile, file))
		}
	}()
	return func() { <-done }
}
