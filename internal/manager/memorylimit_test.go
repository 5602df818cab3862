package manager

import "testing"

func TestSoftMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		limit   int64
		ok, err bool
	}{
		{name: "no limit", env: map[string]string{}},
		{name: "container limit", env: map[string]string{"MEMORY_LIMIT": "268435456"}, limit: 241591910, ok: true},
		{name: "GOMEMLIMIT set wins", env: map[string]string{"MEMORY_LIMIT": "268435456", "GOMEMLIMIT": "100MiB"}},
		{name: "not a number", env: map[string]string{"MEMORY_LIMIT": "256Mi"}, err: true},
		{name: "zero", env: map[string]string{"MEMORY_LIMIT": "0"}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limit, ok, err := SoftMemoryLimit(func(k string) string { return tc.env[k] })
			if (err != nil) != tc.err || ok != tc.ok || limit != tc.limit {
				t.Fatalf("got %d, %v, %v; want %d, %v, error %v", limit, ok, err, tc.limit, tc.ok, tc.err)
			}
		})
	}
}
