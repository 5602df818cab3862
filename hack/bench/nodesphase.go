package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

// phaseMark is what the nodes scenario reads at the start and end of a
// phase: the manager's metrics and CPU, the API server's request counts,
// the simulator's counters and each node's calls and connections.
type phaseMark struct {
	at     time.Time
	mgr    map[string]float64
	api    map[string]float64
	cpu    time.Duration
	sim    ejbcasim.Counters
	calls  []int
	dials  []int
	enrols []int
	load   float64
}

// nodesPhase is one phase of the nodes scenario (a one-node run, the
// two-node run before the kill, after it): what it cost, per certificate
// Ready in it, so that a drop in throughput can be traced to the calls,
// writes or CPU that grew.
type nodesPhase struct {
	Name string `json:"name"`
	// Load is the machine's 1-minute load average at the start and end.
	Load    [2]float64 `json:"load_average"`
	Seconds float64    `json:"seconds"`
	Certs   int        `json:"certificates_ready"`
	// Outcomes are the manager's requests by outcome (issued, pending,
	// issuer_not_ready, ...): every reconcile that decided something.
	Outcomes map[string]float64 `json:"manager_outcomes"`
	// HealthChecks are the issuer checks the manager made.
	HealthChecks float64 `json:"issuer_health_checks"`
	// EJBCACalls are the simulator's calls by endpoint, of every node.
	EJBCACalls map[string]int `json:"ejbca_calls"`
	// NodeCalls and NodeDials are per node (node 1, node 2): calls that
	// reached it and connections opened to it.
	NodeCalls     []int   `json:"calls_per_node"`
	NodeDials     []int   `json:"connections_per_node"`
	TLSHandshakes int     `json:"tls_handshakes"`
	CPUMsPerCert  float64 `json:"manager_cpu_ms_per_cert"`
	// Writes are every client's API writes by verb and resource, per
	// certificate (the manager's status updates and events among them).
	WritesPerCert map[string]float64 `json:"api_writes_per_cert"`
}

func (b *bench) mark(ctx context.Context, mgr *managerProcess, nodes ...*ejbcasim.Node) phaseMark {
	// The simulator's counters first: they are read at once, the scrapes
	// take a while (calls go on meanwhile).
	m := phaseMark{at: time.Now(), sim: b.stack.Sim.Counters(), load: loadAverage()}
	for _, n := range nodes {
		m.calls = append(m.calls, n.Calls(""))
		m.dials = append(m.dials, n.Dialed())
		m.enrols = append(m.enrols, n.Calls("/pkcs10enroll"))
	}
	m.cpu, _ = mgr.cpu()
	m.mgr, _ = mgr.metrics()
	m.api, _ = b.apiMetrics(ctx)
	return m
}

// phaseBetween is what happened from m0 to m1, with certs certificates
// Ready in it.
func phaseBetween(name string, m0, m1 phaseMark, certs int) nodesPhase {
	p := nodesPhase{Name: name, Seconds: m1.at.Sub(m0.at).Seconds(), Certs: certs, Outcomes: map[string]float64{},
		EJBCACalls: map[string]int{}, WritesPerCert: map[string]float64{}, TLSHandshakes: m1.sim.TLSHandshakes - m0.sim.TLSHandshakes,
		Load: [2]float64{m0.load, m1.load}}
	for series, v := range m1.mgr {
		if strings.HasPrefix(series, "ejbca_issuer_certificaterequests_total{") {
			if d := v - m0.mgr[series]; d > 0 {
				p.Outcomes[label(series, "outcome")] += d
			}
		}
	}
	p.HealthChecks = sumMetric(m1.mgr, "ejbca_issuer_health_checks_total") - sumMetric(m0.mgr, "ejbca_issuer_health_checks_total")
	for ep := range m1.sim.Calls {
		if d := m1.sim.Get(ep) - m0.sim.Get(ep); d > 0 {
			p.EJBCACalls[ep] = d
		}
	}
	for i := range m1.calls {
		p.NodeCalls = append(p.NodeCalls, m1.calls[i]-m0.calls[i])
		p.NodeDials = append(p.NodeDials, m1.dials[i]-m0.dials[i])
	}
	if certs > 0 {
		p.CPUMsPerCert = float64((m1.cpu - m0.cpu).Milliseconds()) / float64(certs)
		p.WritesPerCert = usage(m0.api, m1.api, "", certs).AllClientsWritesPerCert
	}
	return p
}

// phaseTable prints the phases as a Markdown table.
func phaseTable(phases []nodesPhase) {
	fmt.Println("| phase | load | s | certs | outcomes (manager) | issuer checks | EJBCA calls | calls node 1 / node 2 | connections node 1 / node 2 | TLS handshakes | CPU ms/cert | API writes/cert |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, p := range phases {
		fmt.Printf("| %s | %.1f–%.1f | %.2f | %d | %s | %.0f | %s | %s | %s | %d | %.2f | %s |\n", p.Name, p.Load[0], p.Load[1], p.Seconds, p.Certs, formatCounts(p.Outcomes),
			p.HealthChecks, formatIntCounts(p.EJBCACalls), joinInts(p.NodeCalls), joinInts(p.NodeDials), p.TLSHandshakes, p.CPUMsPerCert,
			formatPerCert(p.WritesPerCert))
	}
}

// loadAverage is the machine's 1-minute load average (0 if unknown): the
// figures of a shared machine mean little without it.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func formatCounts(m map[string]float64) string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s %.0f", k, v))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func formatIntCounts(m map[string]int) string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, " / ")
}
