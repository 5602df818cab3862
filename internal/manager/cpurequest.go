package manager

import (
	"fmt"
	"strconv"
	"strings"
)

// CPURequestEnv names the container's CPU request in whole cores, rounded
// up; the chart and config/manager set it from requests.cpu through the
// downward API (divisor 1).
const CPURequestEnv = "CPU_REQUEST"

// ProcsForCPURequest is the GOMAXPROCS for a container that requests the
// cores in CPU_REQUEST: that many. The Go runtime otherwise runs as many
// scheduler threads as the node has cores (its cgroup rule follows a CPU
// limit, never below 2, and the chart sets none). The manager spends most
// of its time waiting on EJBCA and the API server and uses a fraction of a
// core, so every watch event, answer and event write woke an idle thread
// that then looked for work on the others: on two cores that cost about
// 0.2 ms of CPU per certificate, a seventh of the whole (docs/performance.md),
// and more on larger nodes. ok is false when GOMAXPROCS is set (the
// operator's choice stands) or CPU_REQUEST is unset or 0 (no request: the
// runtime's default stands). An unreadable CPU_REQUEST is an error.
func ProcsForCPURequest(getenv func(string) string) (procs int, ok bool, err error) {
	if getenv("GOMAXPROCS") != "" {
		return 0, false, nil
	}
	v := strings.TrimSpace(getenv(CPURequestEnv))
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, false, fmt.Errorf("%s=%q is not a number of cores", CPURequestEnv, v)
	}
	if n == 0 {
		return 0, false, nil
	}
	return n, true, nil
}
