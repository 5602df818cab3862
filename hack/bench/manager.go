package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// managerProcess is the real ejbca-issuer binary run as its own process, so
// its CPU and memory can be read apart from the benchmark's.
type managerProcess struct {
	cmd        *exec.Cmd
	metricsURL string
	done       chan error

	mu       sync.Mutex
	peakHeap float64
	stopSamp chan struct{}
	sampDone chan struct{}
}

// buildManager builds the manager of the source tree at root with the release
// flags (as the Dockerfile and `make build` do) into the run's own work
// directory: bin/ may be shared by several checkouts (worktrees link it), and
// a bench started from another one would replace the binary under this run.
func buildManager(root, work string) (string, error) {
	bin := filepath.Join(work, "ejbca-issuer-bench")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X github.com/certctl-io/ejbca-issuer/internal/version.Version=bench", "-o", bin, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return bin, cmd.Run()
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func startManager(bin, kubeconfig, logPath string, workers int, extra ...string) (*managerProcess, error) {
	return startManagerEnv(bin, kubeconfig, logPath, workers, nil, extra...)
}

// startManagerEnv is startManager with further environment variables
// (KEY=VALUE) for the manager process.
func startManagerEnv(bin, kubeconfig, logPath string, workers int, env []string, extra ...string) (*managerProcess, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	args := append([]string{
		"--cluster-resource-namespace=ejbca-issuer",
		"--max-concurrent-reconciles=" + strconv.Itoa(workers),
		"--metrics-bind-address=" + addr,
		"--health-probe-bind-address=0",
		"--enable-pprof",
		"--log-level=0",
	}, extra...)
	return startProcess(bin, args, addr, kubeconfig, logPath, env...)
}

// startProcess runs bin with args (which make it serve Prometheus metrics on
// addr) against kubeconfig and waits for its metrics endpoint. The process
// gets client-go's defaults, not the benchmark's own client-go settings
// (devstack turns streaming lists off for cert-manager's in-process
// controllers), plus env.
func startProcess(bin string, args []string, addr, kubeconfig, logPath string, env ...string) (*managerProcess, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUBE_FEATURE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "KUBECONFIG="+kubeconfig, "POD_NAMESPACE=ejbca-issuer")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	m := &managerProcess{cmd: cmd, metricsURL: "http://" + addr + "/metrics", done: make(chan error, 1),
		stopSamp: make(chan struct{}), sampDone: make(chan struct{})}
	go func() { m.done <- cmd.Wait(); logFile.Close() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := m.metric("go_memstats_heap_alloc_bytes"); err == nil {
			break
		}
		select {
		case err := <-m.done:
			return nil, fmt.Errorf("the manager exited: %v (log: %s)", err, logPath)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.stop()
			return nil, fmt.Errorf("the manager's metrics endpoint did not come up (log: %s)", logPath)
		}
	}
	go m.sample()
	return m, nil
}

// sample records the peak heap every second until stopped (each scrape
// costs the manager some CPU, so not more often).
func (m *managerProcess) sample() {
	defer close(m.sampDone)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-m.stopSamp:
			return
		case <-t.C:
			if h, err := m.metric("go_memstats_heap_alloc_bytes"); err == nil {
				m.mu.Lock()
				m.peakHeap = max(m.peakHeap, h)
				m.mu.Unlock()
			}
		}
	}
}

func (m *managerProcess) resetPeakHeap() {
	m.mu.Lock()
	m.peakHeap = 0
	m.mu.Unlock()
}

func (m *managerProcess) peakHeapBytes() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peakHeap
}

func (m *managerProcess) stop() {
	select {
	case <-m.stopSamp:
	default:
		close(m.stopSamp)
		<-m.sampDone
	}
	_ = m.cmd.Process.Signal(os.Interrupt)
	select {
	case <-m.done:
	case <-time.After(15 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}

// cpu is the process's user+system CPU time so far.
func (m *managerProcess) cpu() (time.Duration, error) {
	return processCPU(m.cmd.Process.Pid)
}

const ticksPerSecond = 100 // USER_HZ on Linux

// processCPU is a process's user+system CPU time so far.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / ticksPerSecond, nil
}

// rss returns the current and peak resident set size in bytes.
func (m *managerProcess) rss() (cur, peak float64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", m.cmd.Process.Pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "VmRSS:":
			cur = kb * 1024
		case "VmHWM:":
			peak = kb * 1024
		}
	}
	return cur, peak, sc.Err()
}

// metrics scrapes the manager's Prometheus endpoint into series -> value.
func (m *managerProcess) metrics() (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.metricsURL, nil)
	// Uncompressed, as httpGet: this runs every second (sample), where a
	// real Prometheus scrapes every 15-60 s, and gzip would charge the
	// measured process about 1 MiB of allocation and its compression per
	// scrape.
	req.Header.Set("Accept-Encoding", "identity")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", m.metricsURL, res.Status)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return parseMetrics(body), nil
}

// parseMetrics reads Prometheus text exposition into series -> value.
func parseMetrics(body []byte) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

func (m *managerProcess) metric(series string) (float64, error) {
	all, err := m.metrics()
	if err != nil {
		return 0, err
	}
	v, ok := all[series]
	if !ok {
		return 0, fmt.Errorf("no series %s", series)
	}
	return v, nil
}

// sumMetric adds every series of a metric whose labels contain all of match.
func sumMetric(all map[string]float64, name string, match ...string) float64 {
	var sum float64
	for series, v := range all {
		if !strings.HasPrefix(series, name+"{") && series != name {
			continue
		}
		ok := true
		for _, m := range match {
			ok = ok && strings.Contains(series, m)
		}
		if ok {
			sum += v
		}
	}
	return sum
}
