package manager

import "testing"

func TestProcsForCPURequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		procs   int
		ok, err bool
	}{
		{name: "no request", env: map[string]string{}},
		{name: "the chart's default, 50m, rounded up by the downward API", env: map[string]string{"CPU_REQUEST": "1"}, procs: 1, ok: true},
		{name: "two cores", env: map[string]string{"CPU_REQUEST": "2"}, procs: 2, ok: true},
		{name: "no request, as the downward API gives it", env: map[string]string{"CPU_REQUEST": "0"}},
		{name: "GOMAXPROCS set wins", env: map[string]string{"CPU_REQUEST": "1", "GOMAXPROCS": "4"}},
		{name: "a quantity, not cores", env: map[string]string{"CPU_REQUEST": "50m"}, err: true},
		{name: "negative", env: map[string]string{"CPU_REQUEST": "-1"}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			procs, ok, err := ProcsForCPURequest(func(k string) string { return tc.env[k] })
			if (err != nil) != tc.err || ok != tc.ok || procs != tc.procs {
				t.Fatalf("got %d, %v, %v; want %d, %v, error %v", procs, ok, err, tc.procs, tc.ok, tc.err)
			}
		})
	}
}
