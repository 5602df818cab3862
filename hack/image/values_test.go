package main

import (
	"strings"
	"testing"
)

func TestSetImageValues(t *testing.T) {
	in := "# c\nimage:\n  # -- repo\n  repository: ghcr.io/x/y\n  tag: \"\"\n  digest: \"\"\nother:\n  digest: \"\"\n  repository: z\n"
	got, err := setImageValues([]byte(in), "r.example/p/q", "sha256:ab")
	if err != nil {
		t.Fatal(err)
	}
	want := "# c\nimage:\n  # -- repo\n  repository: r.example/p/q\n  tag: \"\"\n  digest: \"sha256:ab\"\nother:\n  digest: \"\"\n  repository: z\n"
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if _, err := setImageValues([]byte("image:\n  tag: x\n"), "r", "d"); err == nil || !strings.Contains(err.Error(), "image.repository") {
		t.Errorf("values without the lines: %v", err)
	}
}

func TestReleaseNeedsSemver(t *testing.T) {
	for _, v := range []string{"0.2.0", "v0.2", "dev", "v0.2.0+dirty", "v1.2.3-4-gabc-dirty "} {
		b := buildOptions{out: t.TempDir(), version: v, ldflags: "-X x/version.Version=" + v}
		if _, err := release(b); err == nil || !strings.Contains(err.Error(), "vX.Y.Z") {
			t.Errorf("VERSION=%q: %v", v, err)
		}
	}
}
