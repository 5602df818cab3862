package manager

import (
	"io/fs"
	"testing"
)

func TestSoftMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		cgroup  map[string]string
		limit   int64
		ok, err bool
	}{
		{name: "no limit", env: map[string]string{}},
		{name: "container limit", env: map[string]string{"MEMORY_LIMIT": "268435456"}, limit: 241591910, ok: true},
		{name: "GOMEMLIMIT set wins", env: map[string]string{"MEMORY_LIMIT": "268435456", "GOMEMLIMIT": "100MiB"}},
		{name: "not a number", env: map[string]string{"MEMORY_LIMIT": "256Mi"}, err: true},
		{name: "zero", env: map[string]string{"MEMORY_LIMIT": "0"}, err: true},
		{name: "MEMORY_LIMIT wins over the cgroup's", env: map[string]string{"MEMORY_LIMIT": "268435456"},
			cgroup: map[string]string{"/sys/fs/cgroup/memory.max": "134217728\n"}, limit: 241591910, ok: true},
		{name: "cgroup v2 limit", env: map[string]string{}, cgroup: map[string]string{"/sys/fs/cgroup/memory.max": "134217728\n"}, limit: 120795955, ok: true},
		{name: "cgroup v2 without a limit", env: map[string]string{}, cgroup: map[string]string{"/sys/fs/cgroup/memory.max": "max\n"}},
		{name: "cgroup v1 limit", env: map[string]string{}, cgroup: map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "134217728\n"}, limit: 120795955, ok: true},
		{name: "cgroup v1 without a limit", env: map[string]string{}, cgroup: map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}},
		{name: "GOMEMLIMIT set wins over the cgroup's", env: map[string]string{"GOMEMLIMIT": "100MiB"}, cgroup: map[string]string{"/sys/fs/cgroup/memory.max": "134217728"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			read := func(name string) ([]byte, error) {
				if v, ok := tc.cgroup[name]; ok {
					return []byte(v), nil
				}
				return nil, fs.ErrNotExist
			}
			limit, ok, err := SoftMemoryLimit(func(k string) string { return tc.env[k] }, read)
			if (err != nil) != tc.err || ok != tc.ok || limit != tc.limit {
				t.Fatalf("got %d, %v, %v; want %d, %v, error %v", limit, ok, err, tc.limit, tc.ok, tc.err)
			}
		})
	}
}
