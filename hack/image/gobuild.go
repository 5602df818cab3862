package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// goBuild cross-compiles the manager for linux/arch into out, with the
// spec's build settings and the given -ldflags. VCS stamping is off: the
// commit comes in through -ldflags, and a dirty tree must not change the
// digest of what the same sources build.
func goBuild(repo, arch, ldflags, out string) error {
	s := imageSpec("", "")
	args := append([]string{"build"}, s.BuildFlags...)
	args = append(args, "-buildvcs=false", "-ldflags", ldflags, "-o", out, ".")
	cmd := exec.Command("go", args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), s.BuildEnv...)
	cmd.Env = append(cmd.Env, "GOOS=linux", "GOARCH="+arch, "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("GOARCH=%s %s go %s: %v\n%s", arch, strings.Join(s.BuildEnv, " "), strings.Join(args, " "), err, b)
	}
	return nil
}

// repoRoot checks that dir is the ejbca-issuer checkout and makes it absolute.
func repoRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(abs, "go.mod"))
	if err != nil || !strings.Contains(string(b), "module github.com/certctl-io/ejbca-issuer\n") {
		return "", fmt.Errorf("%s is not the ejbca-issuer checkout (--repo)", abs)
	}
	return abs, nil
}
