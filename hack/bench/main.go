// Command bench measures ejbca-issuer the way it runs in production: the real
// manager binary as its own process, against a real kube-apiserver and etcd
// and the EJBCA simulator with a set latency per call. It reports throughput,
// latency from creation to Ready, EJBCA calls per certificate, TLS handshakes,
// token fetches, and the manager's CPU and memory, as Markdown tables on
// stdout and a JSON file under bench-results/.
//
//	go run ./hack/bench [--scenario all|issue|throughput|scale|cluster-size|outage|nodes|certificates] [--quick]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/certctl-io/ejbca-issuer/internal/devstack"
	"github.com/certctl-io/ejbca-issuer/internal/testenv"
)

type options struct {
	scenarios []string
	quick     bool
	latency   time.Duration
	workers   int
	count     int
	outage    time.Duration
	qps       int
	outDir    string
	plot      string
	keep      bool
	profile   string
	// manager is a manager binary to measure instead of building this
	// tree's: two builds compared in one window of a shared machine.
	manager string
	// scaleSizes are the scale scenario's counts of finished requests.
	scaleSizes []int
	// scaleVariants are the manager settings each scale point runs with.
	scaleVariants []scaleVariant
	// scalePlot is where the scale scenario's plot goes (SVG).
	scalePlot string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--null-issuer" {
		if err := nullIssuerMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "null issuer:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var o options
	var scenarios string
	flag.StringVar(&scenarios, "scenario", "all", "comma-separated: issue, writecost, throughput, scale, cluster-size, outage, nodes, certificates, or all")
	flag.BoolVar(&o.quick, "quick", false, "small sizes: a smoke run in under 2 minutes")
	flag.DurationVar(&o.latency, "latency", 50*time.Millisecond, "EJBCA simulator latency per call (issue, cluster-size, outage, certificates)")
	flag.IntVar(&o.workers, "workers", 16, "the manager's --max-concurrent-reconciles (issue, cluster-size, outage, certificates)")
	flag.IntVar(&o.count, "count", 0, "certificates per run (default: 1000, or 100 with --quick)")
	flag.DurationVar(&o.outage, "outage", 3*time.Minute, "how long EJBCA is unreachable in the outage scenario (20s with --quick)")
	flag.IntVar(&o.qps, "kube-api-qps", 0, "the manager's --kube-api-qps (burst is twice this); 0: the manager's defaults")
	flag.StringVar(&o.outDir, "out", "bench-results", "directory for the JSON results")
	flag.StringVar(&o.plot, "plot", "", "write the throughput scenario's plot (SVG) here")
	flag.StringVar(&o.profile, "profile", "", "write a CPU profile of the manager during each issue run to this directory")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (manager logs, kubeconfig) and print its path")
	flag.StringVar(&o.manager, "manager", "", "measure this manager binary instead of building the source tree's (to compare two builds run after one another)")
	var scaleSizes string
	flag.StringVar(&scaleSizes, "scale-sizes", "", "comma-separated counts of finished requests for the scale scenario (default 0,2000,10000,30000; 0,600 with --quick)")
	var scaleVariants string
	flag.StringVar(&scaleVariants, "scale-variants", "default", `manager settings to compare at each scale point: "name=TOKEN ...;name2=..." where a token is a manager --flag, bin=PATH (another manager binary) or KEY=VALUE for its environment`)
	flag.StringVar(&o.scalePlot, "scale-plot", "", "write the scale scenario's plot (SVG) here")
	flag.Parse()
	o.scaleVariants = parseScaleVariants(scaleVariants)
	for _, f := range strings.Split(scaleSizes, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			o.scaleSizes = append(o.scaleSizes, n)
		}
	}
	o.scenarios = strings.Split(scenarios, ",")
	if scenarios == "all" {
		o.scenarios = []string{"issue", "throughput", "scale", "cluster-size", "outage", "nodes", "certificates"}
	}
	if o.count == 0 {
		o.count = 1000
		if o.quick {
			o.count = 100
		}
	}
	if o.quick && o.outage == 3*time.Minute {
		o.outage = 20 * time.Second
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctrl.SetLogger(logr.Discard())

	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "ejbca-issuer-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		progress("work directory (manager logs): %s", work)
	} else {
		defer os.RemoveAll(work)
	}

	bin := o.manager
	if bin == "" {
		progress("building the manager binary with the release flags")
		if bin, err = buildManager(root, work); err != nil {
			return fmt.Errorf("building the manager: %w", err)
		}
	}
	progress("starting the control plane, the EJBCA simulator and cert-manager's controllers")
	stack, err := devstack.Start(ctx, devstack.Options{Dir: work, NoManager: true, Progress: progress})
	if err != nil {
		return err
	}
	defer stack.Stop()

	b := &bench{opts: o, stack: stack, bin: bin, work: work, root: root}
	report := &report{
		Date: time.Now().UTC().Format(time.RFC3339), CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Quick: o.quick, Results: map[string][]any{},
	}
	for _, sc := range o.scenarios {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		start := time.Now()
		progress("scenario %s", sc)
		var err error
		switch sc {
		case "issue":
			err = b.scenarioIssue(ctx, report)
		case "writecost":
			err = b.scenarioWriteCost(ctx, report)
		case "throughput":
			err = b.scenarioThroughput(ctx, report)
		case "scale":
			err = b.scenarioScale(ctx, report)
		case "cluster-size":
			err = b.scenarioClusterSize(ctx, report)
		case "outage":
			err = b.scenarioOutage(ctx, report)
		case "nodes":
			err = b.scenarioNodes(ctx, report)
		case "certificates":
			err = b.scenarioCertificates(ctx, report)
		default:
			err = fmt.Errorf("unknown scenario %q", sc)
		}
		if err != nil {
			return fmt.Errorf("scenario %s: %w", sc, err)
		}
		progress("scenario %s took %s", sc, time.Since(start).Round(time.Second))
	}

	outDir := o.outDir
	if !filepath.IsAbs(outDir) {
		// Relative to the repository, as `make bench` runs it.
		outDir = filepath.Join(root, outDir)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(outDir, time.Now().UTC().Format("20060102T150405Z")+".json")
	data, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	fmt.Printf("\nResults: %s\n", path)
	return nil
}

var benchStart = time.Now()

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[bench %6.1fs] %s\n", time.Since(benchStart).Seconds(), fmt.Sprintf(format, args...))
}

type report struct {
	Date      string           `json:"date"`
	CPUs      int              `json:"cpus"`
	GoVersion string           `json:"go_version"`
	GOOS      string           `json:"goos"`
	GOARCH    string           `json:"goarch"`
	Quick     bool             `json:"quick"`
	Results   map[string][]any `json:"results"`
}
