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

// The process's cgroup memory limit, read when MEMORY_LIMIT is not set (a
// manifest of one's own without the downward API): cgroup v2, then v1.
var cgroupMemoryLimitFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// cgroupUnlimited: cgroup v1 reports no limit as a number near 2^63.
const cgroupUnlimited = int64(1) << 60

// SoftMemoryLimit is the Go runtime's soft memory limit for a container
// limited to the bytes in MEMORY_LIMIT, or else to its cgroup's limit (90%
// of them), so that the process collects garbage harder as it nears its
// limit (at start, while the cache fills) instead of being OOM-killed. ok
// is false when GOMEMLIMIT is set (the operator's choice stands) or no limit
// is known: without a hard limit a soft one only costs garbage collection
// (and risks collecting without end once the live heap nears it) for a
// size nothing enforces, so the runtime's default (GOGC=100, no limit)
// stands. An unreadable MEMORY_LIMIT is an error; readFile reads the cgroup
// files (nil: none are read).
func SoftMemoryLimit(getenv func(string) string, readFile func(string) ([]byte, error)) (limit int64, ok bool, err error) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, false, nil
	}
	v := strings.TrimSpace(getenv(MemoryLimitEnv))
	if v == "" {
		n, found := cgroupMemoryLimit(readFile)
		if !found {
			return 0, false, nil
		}
		return int64(float64(n) * memoryLimitShare), true, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, false, fmt.Errorf("%s=%q is not a number of bytes", MemoryLimitEnv, v)
	}
	return int64(float64(n) * memoryLimitShare), true, nil
}

// cgroupMemoryLimit is the process's cgroup memory limit in bytes, if it has
// one.
func cgroupMemoryLimit(readFile func(string) ([]byte, error)) (int64, bool) {
	if readFile == nil {
		return 0, false
	}
	for _, f := range cgroupMemoryLimitFiles {
		data, err := readFile(f)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(data))
		if s == "max" {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n >= cgroupUnlimited {
			return 0, false
		}
		return n, true
	}
	return 0, false
}
