package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The tests run the Makefile's targets as a user would (make image,
// make image-push), on the repository two levels up.
var testRepo = func() string {
	dir, err := repoRoot(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return dir
}()

const (
	testVersion = "v0.0.0-imagetest"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
	testImg     = "registry.example.com/pki/ejbca-issuer:" + testVersion
)

// runMake runs make in the repository with vars, outside any make that
// runs the tests (its jobserver and flags are not passed down).
func runMake(target string, vars ...string) (string, error) {
	cmd := exec.Command("make", append([]string{"--no-print-directory", "-C", testRepo, target}, vars...)...)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "MAKEFLAGS=") && !strings.HasPrefix(e, "MFLAGS=") && !strings.HasPrefix(e, "MAKELEVEL=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("make %s %v: %v\n%s", target, vars, err, out.String())
	}
	return out.String(), nil
}

func makeTarget(t testing.TB, target string, vars ...string) string {
	t.Helper()
	out, err := runMake(target, vars...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// built is the image make image builds once for the package's tests.
var built struct {
	once sync.Once
	dir  string
	err  error
}

func builtImage(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "ejbca-issuer-imagetest-"); built.err == nil {
			_, built.err = runMake("image", imageVars(built.dir)...)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.dir
}

func imageVars(dir string) []string {
	return []string{"IMAGE_DIR=" + dir, "IMG=" + testImg, "VERSION=" + testVersion, "COMMIT=" + testCommit}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}
