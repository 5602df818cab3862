package manager

import (
	"fmt"
	"strconv"
	"strings"
)

// MemoryLimitEnv names the container's memory limit in bytes; the chart and
// config/manager set it from limits.memory through the downward API.
const MemoryLimitEnv = "MEMORY_LIMIT"

// memoryLimitShare is the part of the container's limit the Go runtime may
// use before its garbage collector works harder: the rest is for what the
// runtime does not count (the binary's mapped pages, C stacks) and for
// overshoot between collections.
const memoryLimitShare = 0.9

// SoftMemoryLimit is the Go runtime's soft memory limit for a container
// limited to the bytes in MEMORY_LIMIT (90% of them), so that the process
// collects garbage harder as it nears its limit (at start, while the cache
// fills) instead of being OOM-killed. ok is false when GOMEMLIMIT is set (the
// operator's choice stands) or MEMORY_LIMIT is not; an unreadable
// MEMORY_LIMIT is an error.
func SoftMemoryLimit(getenv func(string) string) (limit int64, ok bool, err error) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, false, nil
	}
	v := strings.TrimSpace(getenv(MemoryLimitEnv))
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, false, fmt.Errorf("%s=%q is not a number of bytes", MemoryLimitEnv, v)
	}
	return int64(float64(n) * memoryLimitShare), true, nil
}
