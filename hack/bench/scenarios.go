package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
)

// scenarioIssue measures the ceiling with the null issuer and the manager
// over mTLS and OAuth2 with the same workers and load, with requests shaped
// as cert-manager creates them and, beside them, plain ones (shapes.go), and
// reports each manager run as a fraction of the ceiling. The null issuer
// runs with client limits that do not bind (nullIssuerQPS), so the ceiling
// is the API server's; the manager runs at its default flags unless
// --kube-api-qps is given. The null issuer runs first and last (the ceiling
// is the mean of the two, so a drift of the shared machine shows), after an
// unreported warm-up run: the first requests of a fresh API server are
// several times slower.
func (b *bench) scenarioIssue(ctx context.Context, rep *report) error {
	progress("issue: warm-up, %d certificates answered by the null issuer (not reported)", min(b.opts.count, 100))
	if _, err := b.issueRun(ctx, runConfig{Auth: "null", Shape: shapePlain, Workers: b.opts.workers, Count: min(b.opts.count, 100)}); err != nil {
		return err
	}
	// Beside the ceiling, the null issuer writing as the manager does (a
	// status apply and an event per certificate, nullWrites) shows what
	// those two writes alone cost on this machine.
	runs := []runConfig{{Auth: "null", Shape: shapeCertManager}, {Auth: "null", Shape: shapeCertManager, NullWrites: managersWrites},
		{Auth: "mtls", Shape: shapeCertManager}, {Auth: "oauth2", Shape: shapeCertManager},
		{Auth: "mtls", Shape: shapePlain}, {Auth: "oauth2", Shape: shapePlain},
		{Auth: "null", Shape: shapeCertManager, NullWrites: managersWrites}, {Auth: "null", Shape: shapeCertManager}}
	var results, nulls []*runResult
	for _, rc := range runs {
		rc.Workers, rc.Latency, rc.Count = b.opts.workers, b.opts.latency, b.opts.count
		switch {
		case rc.Auth == "null" && rc.NullWrites != "":
			rc.Latency = 0
			progress("issue: %d certificates answered by the null issuer writing as the manager does (%s), %d workers", b.opts.count, rc.NullWrites, b.opts.workers)
		case rc.Auth == "null":
			rc.Latency = 0
			progress("issue: the ceiling, %d certificates answered by the null issuer (one status write each, no EJBCA), %d workers", b.opts.count, b.opts.workers)
		default:
			progress("issue: %d %s requests over %s, %d workers, %s EJBCA latency", b.opts.count, rc.Shape, rc.Auth, b.opts.workers, b.opts.latency)
		}
		r, err := b.issueRun(ctx, rc)
		if err != nil {
			return err
		}
		if rc.Auth == "null" && rc.NullWrites == "" {
			nulls = append(nulls, r)
		}
		results = append(results, r)
		rep.Results["issue"] = append(rep.Results["issue"], r)
	}
	var ceiling float64
	for _, r := range nulls {
		ceiling += r.CertsPerSecond / float64(len(nulls))
	}
	for _, r := range results {
		if ceiling > 0 {
			r.CeilingPerSecond = ceiling
			r.FractionOfCeiling = r.CertsPerSecond / ceiling
		}
	}
	limits := "the manager's defaults"
	if b.opts.qps > 0 {
		limits = fmt.Sprintf("%d/%d", b.opts.qps, 2*b.opts.qps)
	}
	fmt.Printf("\n### issue: %d approved CertificateRequests, one issuer, %d workers, %s per EJBCA call, manager client limits: %s\n\n",
		b.opts.count, b.opts.workers, b.opts.latency, limits)
	fmt.Printf("The ceiling is the null issuer's mean rate (client limits %d/%d, which do not bind), %.1f certificates/s.\n\n", nullIssuerQPS, 2*nullIssuerQPS, ceiling)
	fmt.Println("| issuer | requests | certs/s | ceiling certs/s | fraction of ceiling | API requests/cert | API writes/cert | API requests/cert by verb | events/cert | Warnings/cert | events on the issuer | CPU ms/cert | all clients' writes/cert | machine busy cores | machine CPU ms/cert | of which API server, etcd, bench process |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		name := "ejbca-issuer, " + r.Auth
		switch {
		case r.Auth == "null" && r.NullWrites != "":
			name = "null issuer writing as the manager (" + r.NullWrites + ")"
		case r.Auth == "null":
			name = "null issuer"
		}
		var all float64
		for _, v := range r.API.AllClientsWritesPerCert {
			all += v
		}
		fmt.Printf("| %s | %s | %.1f | %.1f | %.0f%% | %.2f | %.2f | %s | %.2f | %.2f | %d | %.2f | %.2f | %.2f of %d | %.1f | %.1f, %.1f, %.1f |\n", name, r.Shape, r.CertsPerSecond, ceiling, 100*r.FractionOfCeiling,
			r.API.RequestsPerCert, r.API.WritesPerCert, formatPerCert(r.API.PerCertByVerb), r.Events.PerCert, r.Events.WarningsPerCert, r.Events.OnIssuers, r.CPUMsPerCert, all,
			r.Machine.BusyCores, r.Machine.Cores, r.Machine.MsPerCert, r.Machine.APIServerMsPerCert, r.Machine.EtcdMsPerCert, r.Machine.BenchMsPerCert)
	}
	fmt.Println()
	fmt.Println("Where a request's time went (ms per certificate, from the manager's metrics; API time starts after client-go's token bucket, so throttling shows in \"other\"):")
	fmt.Println()
	fmt.Println("| issuer | requests | reconciles/cert | queue wait | worker | EJBCA | API by method | other (throttling, CPU) | events by reason |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		if r.Auth == "null" {
			continue
		}
		fmt.Printf("| %s | %s | %s | %s |\n", r.Auth, r.Shape, r.Time, r.Events.reasons())
	}
	fmt.Println()
	printRuns(results)
	return nil
}

func printRuns(results []*runResult) {
	fmt.Println("| auth | workers | latency | certs | failed | certs/s | ideal/s | p50 ms | p95 ms | p99 ms | EJBCA calls/cert | TLS handshakes | tokens | CPU ms/cert | CPU cores | peak RSS MiB | peak heap MiB | kube req/s | kube req ms | API req/cert | API writes/cert |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		var calls []string
		for ep, n := range r.CallsPerCert {
			calls = append(calls, fmt.Sprintf("%s %.2f", ep, n))
		}
		sort.Strings(calls)
		fmt.Printf("| %s | %d | %s | %d | %d | %.1f | %.0f | %.0f | %.0f | %.0f | %s | %d | %d | %.2f | %.2f | %.0f | %.0f | %.0f | %.0f | %.1f | %.2f |\n",
			r.Auth, r.Workers, r.Latency, r.Issued, r.Failed, r.CertsPerSecond, r.IdealPerSecond, r.P50Ms, r.P95Ms, r.P99Ms,
			strings.Join(calls, ", "), r.TLSHandshakes, r.TokensIssued, r.CPUMsPerCert, r.CPUCores, r.PeakRSSMiB, r.PeakHeapMiB,
			r.KubeWritesPerSec, r.KubeLatencyMs, r.API.RequestsPerCert, r.API.WritesPerCert)
	}
}

// scenarioThroughput measures throughput against workers and EJBCA latency.
func (b *bench) scenarioThroughput(ctx context.Context, rep *report) error {
	workers := []int{1, 4, 16, 64}
	latencies := []time.Duration{10 * time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond}
	if b.opts.quick {
		workers = []int{1, 16}
		latencies = []time.Duration{50 * time.Millisecond}
	}
	var results []*runResult
	for _, lat := range latencies {
		for _, w := range workers {
			ideal := float64(w) / lat.Seconds()
			// Enough for a steady state: ~8s at the ideal rate, at least
			// 1,000 at 64 workers, bounded so slow settings stay short.
			k := int(ideal * 8)
			k = max(k, 50)
			if w >= 64 {
				k = max(k, 1000)
			}
			k = min(k, 2000)
			if b.opts.quick {
				k = min(k, 60)
			}
			progress("throughput: %d workers, %s latency, %d certificates", w, lat, k)
			r, err := b.issueRun(ctx, runConfig{Auth: "mtls", Workers: w, Latency: lat, Count: k})
			if err != nil {
				return err
			}
			results = append(results, r)
			rep.Results["throughput"] = append(rep.Results["throughput"], r)
		}
	}
	fmt.Printf("\n### throughput: throughput against workers and EJBCA latency (mTLS)\n\n")
	printRuns(results)
	if b.opts.plot != "" {
		if err := writePlot(b.opts.plot, results); err != nil {
			return err
		}
		progress("wrote %s", b.opts.plot)
	}
	return nil
}

type clusterSizeResult struct {
	Unrelated           string  `json:"unrelated_objects"`
	HeapAfterStartMiB   float64 `json:"heap_after_start_mib"`
	RSSAfterStartMiB    float64 `json:"rss_after_start_mib"`
	HeapAfterIssuingMiB float64 `json:"heap_after_issuing_mib"`
	RSSAfterIssuingMiB  float64 `json:"rss_after_issuing_mib"`
	PeakHeapMiB         float64 `json:"peak_heap_mib"`
	PeakRSSMiB          float64 `json:"peak_rss_mib"`
	CertificatesIssued  int     `json:"certificates_issued"`
	IssueSecondsFor100  float64 `json:"issue_seconds"`
	ManagerStartSeconds float64 `json:"manager_start_seconds"`
}

// heapAfterGC asks the manager for a heap profile with a GC first, so the
// heap figure is what is live, then reads the heap gauge.
func heapAfterGC(m *managerProcess) float64 {
	u := strings.TrimSuffix(m.metricsURL, "/metrics") + "/debug/pprof/heap?gc=1"
	if res, err := httpGet(u); err == nil {
		_ = res
	}
	h, _ := m.metric("go_memstats_heap_alloc_bytes")
	return h
}

func (b *bench) clusterSizeRun(ctx context.Context, label string) (*clusterSizeResult, error) {
	ns, err := b.namespace("size")
	if err != nil {
		return nil, err
	}
	iss, err := b.issuer(ctx, ns, "ejbca", "mtls")
	if err != nil {
		return nil, err
	}
	start := time.Now()
	mgr, err := startManager(b.bin, b.stack.Kubeconfig, filepath.Join(b.work, ns+".log"), b.opts.workers, b.managerFlags()...)
	if err != nil {
		return nil, err
	}
	defer mgr.stop()
	if err := b.stack.WaitIssuerReady(ctx, iss, 120*time.Second); err != nil {
		return nil, err
	}
	res := &clusterSizeResult{Unrelated: label, ManagerStartSeconds: time.Since(start).Seconds()}
	time.Sleep(2 * time.Second)
	res.HeapAfterStartMiB = heapAfterGC(mgr) / (1 << 20)
	cur, _, _ := mgr.rss()
	res.RSSAfterStartMiB = cur / (1 << 20)

	const n = 100
	requests, err := csrs(n, shapePlain)
	if err != nil {
		return nil, err
	}
	rw, err := b.watchRequests(ctx, ns)
	if err != nil {
		return nil, err
	}
	defer rw.stop()
	t0 := time.Now()
	if _, err := b.createRequests(ctx, ns, v1alpha1.IssuerKind, "ejbca", shapePlain, requests); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(3 * time.Minute); ; {
		ready, failed := rw.counts()
		if ready+failed >= n {
			res.CertificatesIssued = ready
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d issued after 3 minutes", ready, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	res.IssueSecondsFor100 = time.Since(t0).Seconds()
	res.HeapAfterIssuingMiB = heapAfterGC(mgr) / (1 << 20)
	cur, peak, _ := mgr.rss()
	res.RSSAfterIssuingMiB, res.PeakRSSMiB = cur/(1<<20), peak/(1<<20)
	res.PeakHeapMiB = mgr.peakHeapBytes() / (1 << 20)
	return res, b.cleanup(ctx, ns)
}

// scenarioClusterSize measures the manager's memory with and without many
// unrelated Secrets and ConfigMaps in the cluster.
func (b *bench) scenarioClusterSize(ctx context.Context, rep *report) error {
	secrets, configMaps, namespaces := 10000, 2000, 100
	if b.opts.quick {
		secrets, configMaps, namespaces = 500, 100, 10
	}
	progress("cluster-size: baseline without unrelated objects")
	base, err := b.clusterSizeRun(ctx, "none")
	if err != nil {
		return err
	}
	progress("cluster-size: creating %d Secrets of 64 KiB and %d ConfigMaps in %d namespaces", secrets, configMaps, namespaces)
	if err := b.fillCluster(ctx, secrets, configMaps, namespaces); err != nil {
		return err
	}
	progress("cluster-size: the same run with them present")
	full, err := b.clusterSizeRun(ctx, fmt.Sprintf("%d Secrets (64 KiB) + %d ConfigMaps in %d namespaces", secrets, configMaps, namespaces))
	if err != nil {
		return err
	}
	rep.Results["cluster-size"] = []any{base, full}
	fmt.Printf("\n### cluster-size: manager memory with unrelated Secrets and ConfigMaps in the cluster\n\n")
	fmt.Println("| unrelated objects | manager start s | heap after start MiB | RSS after start MiB | heap after 100 certs MiB | RSS after 100 certs MiB | peak heap MiB | peak RSS MiB |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, r := range []*clusterSizeResult{base, full} {
		fmt.Printf("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n", r.Unrelated, r.ManagerStartSeconds, r.HeapAfterStartMiB,
			r.RSSAfterStartMiB, r.HeapAfterIssuingMiB, r.RSSAfterIssuingMiB, r.PeakHeapMiB, r.PeakRSSMiB)
	}
	return nil
}

func (b *bench) fillCluster(ctx context.Context, secrets, configMaps, namespaces int) error {
	c := b.stack.Client
	var nss []string
	for i := range namespaces {
		ns := fmt.Sprintf("unrelated-%d-%d", b.seq.Add(1), i)
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
		nss = append(nss, ns)
	}
	payload := make([]byte, 64<<10)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	cmData := strings.Repeat("x", 4<<10)
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	sem := make(chan struct{}, 32)
	for i := range secrets + configMaps {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			ns := nss[i%len(nss)]
			var obj client.Object
			if i < secrets {
				obj = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("s-%d", i)}, Data: map[string][]byte{"blob": payload}}
			} else {
				obj = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("c-%d", i)}, Data: map[string]string{"data": cmData}}
			}
			if err := c.Create(ctx, obj); err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		}(i)
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	return nil
}

type outageResult struct {
	Issuers                 int     `json:"issuers"`
	Requests                int     `json:"requests"`
	OutageSeconds           float64 `json:"outage_seconds"`
	HealthCallsPerIssuerMin float64 `json:"health_calls_per_issuer_per_minute_after_first_minute"`
	HealthCallsTotal        float64 `json:"health_calls_during_outage"`
	EnrolAttemptsDuring     float64 `json:"enrol_attempts_during_outage"`
	EnrolAttemptsPerRequest float64 `json:"enrol_attempts_per_request_during_outage"`
	FailedRequests          int     `json:"failed_requests"`
	SecondsToIssuersReady   float64 `json:"seconds_from_return_to_all_issuers_ready"`
	SecondsToAllIssued      float64 `json:"seconds_from_return_to_all_requests_issued"`
}

// scenarioOutage takes EJBCA away with requests in flight and brings it back.
func (b *bench) scenarioOutage(ctx context.Context, rep *report) error {
	const issuers, perIssuer = 20, 5
	sim := b.stack.Sim
	sim.SetLatency(b.opts.latency)
	defer sim.SetLatency(0)
	ns, err := b.namespace("outage")
	if err != nil {
		return err
	}
	var iss []*v1alpha1.EJBCAIssuer
	for i := range issuers {
		x, err := b.issuer(ctx, ns, fmt.Sprintf("ejbca-%d", i), "mtls")
		if err != nil {
			return err
		}
		iss = append(iss, x)
	}
	mgr, err := startManager(b.bin, b.stack.Kubeconfig, filepath.Join(b.work, ns+".log"), b.opts.workers, b.managerFlags()...)
	if err != nil {
		return err
	}
	defer mgr.stop()
	for _, x := range iss {
		if err := b.stack.WaitIssuerReady(ctx, x, 60*time.Second); err != nil {
			return err
		}
	}
	rw, err := b.watchRequests(ctx, ns)
	if err != nil {
		return err
	}
	defer rw.stop()

	progress("outage: EJBCA goes down for %s with %d requests arriving for %d issuers", b.opts.outage, issuers*perIssuer, issuers)
	m0, _ := mgr.metrics()
	health0 := healthCalls(m0)
	sim.SetDown(true)
	downAt := time.Now()
	all, err := csrs(issuers*perIssuer, shapePlain)
	if err != nil {
		return err
	}
	for i, x := range iss {
		part := all[i*perIssuer : (i+1)*perIssuer]
		if _, err := b.createRequestsNamed(ctx, ns, x.Name, part); err != nil {
			return err
		}
	}
	firstMinute := min(time.Minute, b.opts.outage/3)
	time.Sleep(firstMinute)
	m1, _ := mgr.metrics()
	health1 := healthCalls(m1)
	time.Sleep(time.Until(downAt.Add(b.opts.outage)))
	m2, _ := mgr.metrics()
	health2 := healthCalls(m2)
	enrol := sumMetric(m2, "ejbca_issuer_ejbca_requests_total", `endpoint="POST /v1/certificate/pkcs10enroll"`) -
		sumMetric(m0, "ejbca_issuer_ejbca_requests_total", `endpoint="POST /v1/certificate/pkcs10enroll"`)
	_, failedDuring := rw.counts()

	sim.SetDown(false)
	back := time.Now()
	progress("outage: EJBCA is back")
	res := &outageResult{Issuers: issuers, Requests: issuers * perIssuer, OutageSeconds: b.opts.outage.Seconds(),
		HealthCallsTotal: health2 - health0, EnrolAttemptsDuring: enrol, FailedRequests: failedDuring,
		// Requests wait for their issuer's re-check after a call that got
		// no answer: about one attempt each per outage, whatever its length.
		EnrolAttemptsPerRequest: enrol / float64(issuers*perIssuer)}
	window := (b.opts.outage - firstMinute).Minutes()
	res.HealthCallsPerIssuerMin = (health2 - health1) / float64(issuers) / window
	for deadline := time.Now().Add(10 * time.Minute); ; {
		readyIssuers := 0
		for _, x := range iss {
			if err := b.stack.Client.Get(ctx, client.ObjectKeyFromObject(x), x); err == nil && v1alpha1.IsReady(x) {
				readyIssuers++
			}
		}
		if readyIssuers == issuers && res.SecondsToIssuersReady == 0 {
			res.SecondsToIssuersReady = time.Since(back).Seconds()
		}
		ready, failed := rw.counts()
		if ready+failed >= issuers*perIssuer && readyIssuers == issuers {
			res.SecondsToAllIssued = time.Since(back).Seconds()
			res.FailedRequests = failed
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after 10 minutes: %d/%d issuers Ready, %d/%d requests issued", readyIssuers, issuers, ready, issuers*perIssuer)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rep.Results["outage"] = []any{res}
	fmt.Printf("\n### outage: %d issuers, %d requests, EJBCA unreachable for %s\n\n", issuers, issuers*perIssuer, b.opts.outage)
	fmt.Println("| health calls during outage | health calls per issuer per minute (after the first minute) | enrol attempts during outage | enrol attempts per request | requests Failed | s from return to all issuers Ready | s from return to all issued |")
	fmt.Println("|---|---|---|---|---|---|---|")
	fmt.Printf("| %.0f | %.2f | %.0f | %.2f | %d | %.1f | %.1f |\n", res.HealthCallsTotal, res.HealthCallsPerIssuerMin, res.EnrolAttemptsDuring,
		res.EnrolAttemptsPerRequest, res.FailedRequests, res.SecondsToIssuersReady, res.SecondsToAllIssued)
	return b.cleanup(ctx, ns)
}

// createRequestsNamed is createRequests with names unique to the issuer.
func (b *bench) createRequestsNamed(ctx context.Context, ns, issuer string, csrs [][]byte) (map[string]time.Time, error) {
	c := b.stack.Client
	created := map[string]time.Time{}
	for i, csr := range csrs {
		name := fmt.Sprintf("%s-req-%d", issuer, i)
		cr := &cmapi.CertificateRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{cmapi.CertificateNameKey: name}},
			Spec: cmapi.CertificateRequestSpec{Request: csr,
				IssuerRef: cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: v1alpha1.IssuerKind, Name: issuer}},
		}
		if err := c.Create(ctx, cr); err != nil {
			return nil, err
		}
		if err := approve(ctx, c, cr); err != nil {
			return nil, err
		}
		created[name] = time.Now()
	}
	return created, nil
}

type certificatesResult struct {
	Certificates   int     `json:"certificates"`
	Workers        int     `json:"workers"`
	LatencyMs      float64 `json:"latency_ms"`
	Seconds        float64 `json:"seconds"`
	CertsPerSecond float64 `json:"certs_per_second"`
	P50Ms          float64 `json:"p50_ms"`
	P95Ms          float64 `json:"p95_ms"`
	P99Ms          float64 `json:"p99_ms"`
	EnrolPerCert   float64 `json:"pkcs10enroll_per_cert"`
	CPUMsPerCert   float64 `json:"manager_cpu_ms_per_cert"`
	// Requests is how many CertificateRequests cert-manager created; more
	// than one per Certificate means it replaced some, each enrolled once.
	Requests int `json:"certificaterequests"`
}

// scenarioCertificates drives the issue run through cert-manager Certificates
// and its in-process controllers: the whole pipeline's throughput.
func (b *bench) scenarioCertificates(ctx context.Context, rep *report) error {
	sim := b.stack.Sim
	sim.SetLatency(b.opts.latency)
	defer sim.SetLatency(0)
	n := b.opts.count
	if !b.opts.quick {
		n = min(n, 500)
	}
	ns, err := b.namespace("certs")
	if err != nil {
		return err
	}
	iss, err := b.issuer(ctx, ns, "ejbca", "mtls")
	if err != nil {
		return err
	}
	mgr, err := startManager(b.bin, b.stack.Kubeconfig, filepath.Join(b.work, ns+".log"), b.opts.workers, b.managerFlags()...)
	if err != nil {
		return err
	}
	defer mgr.stop()
	if err := b.stack.WaitIssuerReady(ctx, iss, 60*time.Second); err != nil {
		return err
	}
	before := sim.Counters()
	cpuBefore, _ := mgr.cpu()
	c := b.stack.Client
	created := make([]time.Time, n)
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			name := fmt.Sprintf("cert-%d", i)
			crt := &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: cmapi.CertificateSpec{
				SecretName: name + "-tls", CommonName: name + ".example.com", DNSNames: []string{name + ".example.com"},
				PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256},
				IssuerRef:  cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: v1alpha1.IssuerKind, Name: "ejbca"}}}
			if err := c.Create(ctx, crt); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
			created[i] = time.Now()
		}(i)
	}
	wg.Wait()
	readyAt := make([]time.Time, n)
	remaining := n
	for deadline := time.Now().Add(10 * time.Minute); remaining > 0; {
		var list cmapi.CertificateList
		if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		now := time.Now()
		remaining = 0
		for _, crt := range list.Items {
			var i int
			if _, err := fmt.Sscanf(crt.Name, "cert-%d", &i); err != nil || i >= n {
				continue
			}
			ready := false
			for _, cond := range crt.Status.Conditions {
				ready = ready || (cond.Type == cmapi.CertificateConditionReady && cond.Status == cmmeta.ConditionTrue && crt.Status.Revision != nil)
			}
			if ready && readyAt[i].IsZero() {
				readyAt[i] = now
			}
			if readyAt[i].IsZero() {
				remaining++
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d Certificates not Ready after 10 minutes", remaining)
		}
		if remaining > 0 {
			time.Sleep(250 * time.Millisecond)
		}
	}
	var last time.Time
	var lat []time.Duration
	for i := range n {
		lat = append(lat, readyAt[i].Sub(created[i]))
		if readyAt[i].After(last) {
			last = readyAt[i]
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	cpuAfter, _ := mgr.cpu()
	after := sim.Counters()
	res := &certificatesResult{Certificates: n, Workers: b.opts.workers, LatencyMs: float64(b.opts.latency.Milliseconds()),
		Seconds: last.Sub(start).Seconds(), P50Ms: percentile(lat, 50), P95Ms: percentile(lat, 95), P99Ms: percentile(lat, 99),
		EnrolPerCert: float64(after.Get("pkcs10enroll")-before.Get("pkcs10enroll")) / float64(n),
		CPUMsPerCert: float64((cpuAfter - cpuBefore).Milliseconds()) / float64(n)}
	res.CertsPerSecond = float64(n) / res.Seconds
	var crs cmapi.CertificateRequestList
	if err := c.List(ctx, &crs, client.InNamespace(ns)); err == nil {
		res.Requests = len(crs.Items)
	}
	rep.Results["certificates"] = []any{res}
	fmt.Printf("\n### certificates: %d cert-manager Certificates through cert-manager's controllers (in-process, 5 workers each) and the manager (%d workers), %s per EJBCA call\n\n", n, b.opts.workers, b.opts.latency)
	fmt.Println("| certificates | CertificateRequests | certs/s | p50 ms | p95 ms | p99 ms | pkcs10enroll per cert | manager CPU ms/cert |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	fmt.Printf("| %d | %d | %.1f | %.0f | %.0f | %.0f | %.3f | %.2f |\n", n, res.Requests, res.CertsPerSecond, res.P50Ms, res.P95Ms, res.P99Ms, res.EnrolPerCert, res.CPUMsPerCert)
	return nil
}

// healthCalls counts the manager's calls to EJBCA that check health: the
// issuers' CA list and the reachability probe's status call.
func healthCalls(m map[string]float64) float64 {
	return sumMetric(m, "ejbca_issuer_ejbca_requests_total", `endpoint="GET /v1/ca"`) +
		sumMetric(m, "ejbca_issuer_ejbca_requests_total", `endpoint="GET /v1/certificate/status"`)
}

// managersWrites are the manager's writes per certificate, as the null
// issuer can make them: a status apply with a resourceVersion, and an event.
const managersWrites = "apply+event"

// scenarioWriteCost prices the manager's writes on the API server: the null
// issuer answers the same cert-manager-shaped load with a merge patch of the
// status (the ceiling's write), a server-side apply with a resourceVersion
// (the manager's status write), and each of them with one events.k8s.io
// event per certificate, interleaved. The API server's and etcd's CPU per
// certificate of each show what the manager's way of writing costs the
// cluster, apart from its own CPU and EJBCA.
func (b *bench) scenarioWriteCost(ctx context.Context, rep *report) error {
	progress("writecost: warm-up, %d certificates answered by the null issuer (not reported)", min(b.opts.count, 100))
	if _, err := b.issueRun(ctx, runConfig{Auth: "null", Shape: shapePlain, Workers: b.opts.workers, Count: min(b.opts.count, 100)}); err != nil {
		return err
	}
	variants := []string{"merge", "apply", "merge+event", managersWrites}
	var results []*runResult
	for round := range 2 {
		for _, v := range variants {
			progress("writecost: round %d, %d certificates, null issuer writing %s", round+1, b.opts.count, v)
			r, err := b.issueRun(ctx, runConfig{Auth: "null", Shape: shapeCertManager, Workers: b.opts.workers, Count: b.opts.count, NullWrites: v})
			if err != nil {
				return err
			}
			results = append(results, r)
			rep.Results["writecost"] = append(rep.Results["writecost"], r)
		}
	}
	fmt.Printf("\n### writecost: the null issuer's writes priced on the API server (%d cert-manager-shaped requests, %d workers)\n\n", b.opts.count, b.opts.workers)
	fmt.Println("| writes | certs/s | API writes/cert | null issuer CPU ms/cert | API server CPU ms/cert | etcd CPU ms/cert | bench process CPU ms/cert | machine busy cores | machine CPU ms/cert |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		fmt.Printf("| %s | %.1f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f of %d | %.1f |\n", r.NullWrites, r.CertsPerSecond, r.API.WritesPerCert, r.CPUMsPerCert,
			r.Machine.APIServerMsPerCert, r.Machine.EtcdMsPerCert, r.Machine.BenchMsPerCert, r.Machine.BusyCores, r.Machine.Cores, r.Machine.MsPerCert)
	}
	return nil
}
