package version

import (
	"runtime"
	"testing"
)

func TestString(t *testing.T) {
	v, c := Version, Commit
	t.Cleanup(func() { Version, Commit = v, c })
	Version, Commit = "v0.2.0", "0123abc"
	if got, want := String(), "ejbca-issuer v0.2.0 (commit 0123abc, "+runtime.Version()+")"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
