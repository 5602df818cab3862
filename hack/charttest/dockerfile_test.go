package charttest

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// testVersion and testCommit are injected into the manager built like the
// Dockerfile does.
const (
	testVersion = "v0.0.0-charttest"
	testCommit  = "c0ffee0c0ffee0c0ffee0c0ffee0c0ffee0c0ffe"
)

// dockerfile is the parsed Dockerfile: instructions with continuation lines
// joined.
type dockerfile struct{ instructions []string }

func readDockerfile() (dockerfile, error) {
	var df dockerfile
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		return df, err
	}
	var cur strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		df.instructions = append(df.instructions, cur.String())
		cur.Reset()
	}
	return df, nil
}

// goBuild returns the builder stage's `go build` RUN command (without RUN
// and its --mount flags) and the stage's ARG defaults.
func (df dockerfile) goBuild() (string, map[string]string, error) {
	args := map[string]string{}
	for _, in := range df.instructions {
		if rest, ok := strings.CutPrefix(in, "ARG "); ok {
			for _, a := range strings.Fields(rest) {
				k, v, _ := strings.Cut(a, "=")
				args[k] = v
			}
		}
		if rest, ok := strings.CutPrefix(in, "RUN "); ok && strings.Contains(rest, "go build") {
			fields := strings.Fields(rest)
			for len(fields) > 0 && strings.HasPrefix(fields[0], "--mount=") {
				fields = fields[1:]
			}
			return strings.Join(fields, " "), args, nil
		}
	}
	return "", nil, fmt.Errorf("the Dockerfile has no RUN ... go build")
}

// buildContext copies the files .dockerignore lets into the build context
// to dir, as `docker build .` would send them.
func buildContext(dir string) error {
	f, err := os.Open(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		return err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return err
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return err
	}
	// A directory that is excluded can be skipped unless an exception
	// pattern may re-include something under it.
	mayReinclude := func(rel string) bool {
		for _, p := range pm.Patterns() {
			if p.Exclusion() && (strings.HasPrefix(p.String(), rel+"/") || p.String() == rel || strings.HasPrefix(p.String(), "*")) {
				return true
			}
		}
		return false
	}
	return filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == repoRoot {
			return err
		}
		rel, err := filepath.Rel(repoRoot, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		excluded, err := pm.MatchesOrParentMatches(rel)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if excluded && !mayReinclude(rel) {
				return filepath.SkipDir
			}
			return nil
		}
		if excluded || !d.Type().IsRegular() {
			return nil
		}
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return copyFile(path, dst)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// buildLikeDockerfile runs the Dockerfile's `go build` command, with its
// ARGs (VERSION=testVersion, the target platform of this machine), in a copy
// of the build context, writing the binary into outDir instead of /out.
func buildLikeDockerfile(outDir string) (string, error) {
	df, err := readDockerfile()
	if err != nil {
		return "", err
	}
	cmdline, args, err := df.goBuild()
	if err != nil {
		return "", err
	}
	if !strings.Contains(cmdline, "/out/") {
		return "", fmt.Errorf("the Dockerfile's go build does not write into /out/: %s", cmdline)
	}
	cmdline = strings.ReplaceAll(cmdline, "/out/", outDir+"/")
	ctxDir, err := os.MkdirTemp("", "ejbca-issuer-docker-context-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(ctxDir)
	if err := buildContext(ctxDir); err != nil {
		return "", fmt.Errorf("copying the build context: %w", err)
	}
	args["VERSION"], args["COMMIT"], args["TARGETOS"], args["TARGETARCH"] = testVersion, testCommit, runtime.GOOS, runtime.GOARCH
	cmd := exec.Command("sh", "-c", cmdline)
	cmd.Dir = ctxDir
	cmd.Env = append(os.Environ(), "GOFLAGS=") // the golang image sets no GOFLAGS
	for k, v := range args {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s: %v\n%s", cmdline, err, out)
	}
	return filepath.Join(outDir, "ejbca-issuer"), nil
}

// binaries: the manager (built like the Dockerfile does) and the EJBCA
// simulator, built once per test run, concurrently with the control plane's
// start (TestMain starts them).
var bins struct {
	once               sync.Once
	dir, manager, sim  string
	managerErr, simErr error
	managerDur, simDur time.Duration
}

func buildBinaries() {
	bins.once.Do(func() {
		dir, err := os.MkdirTemp("", "ejbca-issuer-charttest-bin-")
		if err != nil {
			bins.managerErr, bins.simErr = err, err
			return
		}
		bins.dir = dir
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			start := time.Now()
			bins.manager, bins.managerErr = buildLikeDockerfile(dir)
			bins.managerDur = time.Since(start)
		}()
		go func() {
			defer wg.Done()
			start := time.Now()
			cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "ejbca-sim"), "./hack/ejbca-sim")
			cmd.Dir = repoRoot
			if out, err := cmd.CombinedOutput(); err != nil {
				bins.simErr = fmt.Errorf("go build ./hack/ejbca-sim: %v\n%s", err, out)
			}
			bins.sim = filepath.Join(dir, "ejbca-sim")
			bins.simDur = time.Since(start)
		}()
		wg.Wait()
	})
}

func managerBinary(t testing.TB) string {
	t.Helper()
	buildBinaries()
	if bins.managerErr != nil {
		t.Fatalf("building the manager like the Dockerfile: %v", bins.managerErr)
	}
	return bins.manager
}

func simBinary(t testing.TB) string {
	t.Helper()
	buildBinaries()
	if bins.simErr != nil {
		t.Fatal(bins.simErr)
	}
	return bins.sim
}

// TestDockerfileBuild: the Dockerfile's own build command, run on the build
// context its .dockerignore selects, makes a static, stripped, -trimpath
// binary that reports the injected version; the image runs it as the
// distroless non-root user the chart's security context expects, on the Go
// version go.mod names; the Makefile's ldflags are the Dockerfile's.
func TestDockerfileBuild(t *testing.T) {
	bin := managerBinary(t)
	t.Logf("manager built like the Dockerfile in %s", bins.managerDur.Round(time.Millisecond))
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if want := "ejbca-issuer " + testVersion + " (commit " + testCommit + ", " + info.GoVersion + ")\n"; err != nil || string(out) != want {
		t.Errorf("--version: %q, %v; want %q", out, err, want)
	}

	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	// (With -trimpath, Go does not record -ldflags: --version above and the
	// missing symbol table below prove them.)
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" || settings["GOOS"] != runtime.GOOS {
		t.Errorf("build settings %v: want CGO_ENABLED=0 and -trimpath", settings)
	}
	if info.Main.Path != "github.com/certctl-io/ejbca-issuer" {
		t.Errorf("main module %q", info.Main.Path)
	}
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is dynamically linked (%v): distroless/static has no libc", p.Type)
		}
	}
	if ef.Section(".symtab") != nil {
		t.Error("the binary has a symbol table: -s did not apply")
	}

	df, err := readDockerfile()
	if err != nil {
		t.Fatal(err)
	}
	has := func(prefix string) bool {
		return slices.ContainsFunc(df.instructions, func(s string) bool { return strings.HasPrefix(s, prefix) })
	}
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if goVersion == nil || !has("FROM --platform=$BUILDPLATFORM golang:"+string(goVersion[1])+" AS builder") {
		t.Errorf("the builder stage is not golang:%s (go.mod's go version): %v", goVersion[1], df.instructions)
	}
	for _, want := range []string{
		"FROM gcr.io/distroless/static:nonroot",
		"COPY --from=builder /out/ejbca-issuer /ejbca-issuer",
		"USER 65532:65532",
		`ENTRYPOINT ["/ejbca-issuer"]`,
	} {
		if !has(want) {
			t.Errorf("the Dockerfile lacks %q", want)
		}
	}
	if d := deploymentOf(t, mustRender(t, "r", "ns", nil)); *d.Spec.Template.Spec.SecurityContext.RunAsUser != 65532 {
		t.Errorf("the chart runs as UID %d, the image's user is 65532", *d.Spec.Template.Spec.SecurityContext.RunAsUser)
	}

	cmdline, _, err := df.goBuild()
	if err != nil {
		t.Fatal(err)
	}
	ldflags := regexp.MustCompile(`-ldflags "([^"]*)"`).FindStringSubmatch(cmdline)
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	var makeLDFlags string
	sc := bufio.NewScanner(bytes.NewReader(mk))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "LDFLAGS := "); ok {
			makeLDFlags = v
		}
	}
	if ldflags == nil || strings.NewReplacer("${VERSION}", "$(VERSION)", "${COMMIT}", "$(COMMIT)").Replace(ldflags[1]) != makeLDFlags {
		t.Errorf("Dockerfile -ldflags %q differ from the Makefile's LDFLAGS %q", ldflags, makeLDFlags)
	}
}

// finalStage returns the instructions of the Dockerfile's last stage.
func (df dockerfile) finalStage() []string {
	var stage []string
	for _, in := range df.instructions {
		if strings.HasPrefix(in, "FROM ") {
			stage = nil
		}
		stage = append(stage, in)
	}
	return stage
}

// dockerfileWords splits a Dockerfile instruction's arguments as the
// Dockerfile parser does for LABEL and ARG: key=value pairs, values in
// double quotes may hold spaces.
var dockerfileWords = regexp.MustCompile(`([A-Za-z0-9_.-]+)=("(?:[^"\\]|\\.)*"|\S+)`)

// TestDockerfileMatchesImage: the image the Dockerfile builds and the one
// make image builds (hack/image's spec) run the same binary the same way:
// same user, entrypoint, binary path, labels (with the version and commit
// build args where make image puts them), and go build environment and
// flags (-ldflags is checked against the Makefile by TestDockerfileBuild).
func TestDockerfileMatchesImage(t *testing.T) {
	df, err := readDockerfile()
	if err != nil {
		t.Fatal(err)
	}
	s := makeImageSpec(t)
	final := df.finalStage()
	var user string
	var entrypoint []string
	labels := map[string]string{}
	args := map[string]string{}
	var copied string
	for _, in := range final {
		kw, rest, _ := strings.Cut(in, " ")
		switch kw {
		case "USER":
			user = rest
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &entrypoint); err != nil {
				t.Errorf("ENTRYPOINT %s is not the exec form: %v", rest, err)
			}
		case "LABEL", "ARG":
			for _, m := range dockerfileWords.FindAllStringSubmatch(rest, -1) {
				v := m[2]
				if uq, err := strconv.Unquote(v); err == nil {
					v = uq
				}
				if kw == "LABEL" {
					labels[m[1]] = v
				} else {
					args[m[1]] = v
				}
			}
		case "COPY":
			f := strings.Fields(rest)
			copied = f[len(f)-1]
		case "CMD":
			t.Errorf("the Dockerfile sets CMD %s; make image's image has none", rest)
		}
	}
	if user != s.User {
		t.Errorf("Dockerfile USER %q, make image %q", user, s.User)
	}
	if !slices.Equal(entrypoint, s.Entrypoint) {
		t.Errorf("Dockerfile ENTRYPOINT %q, make image %q", entrypoint, s.Entrypoint)
	}
	if copied != s.Binary {
		t.Errorf("the Dockerfile copies the binary to %q, make image puts it at %q", copied, s.Binary)
	}
	// make image's labels name the version and commit as "$(VERSION)" and
	// "$(COMMIT)" (the Makefile's variables), the Dockerfile's as build args.
	want := map[string]string{}
	for k, v := range s.Labels {
		want[k] = strings.NewReplacer("$(VERSION)", "${VERSION}", "$(COMMIT)", "${COMMIT}").Replace(v)
	}
	if !maps.Equal(labels, want) {
		t.Errorf("Dockerfile labels %v\nmake image labels %v", labels, want)
	}
	for _, a := range []string{"VERSION", "COMMIT"} {
		if _, ok := args[a]; !ok {
			t.Errorf("the final stage does not declare ARG %s, so its labels would be empty", a)
		}
	}
	cmdline, _, err := df.goBuild()
	if err != nil {
		t.Fatal(err)
	}
	words := strings.Fields(regexp.MustCompile(`-ldflags "[^"]*"`).ReplaceAllString(cmdline, ""))
	for _, w := range append(append([]string{}, s.BuildEnv...), s.BuildFlags...) {
		if !slices.Contains(words, w) {
			t.Errorf("the Dockerfile's go build lacks %s, which make image uses: %s", w, cmdline)
		}
	}
	for _, w := range words {
		if strings.HasPrefix(w, "-") && w != "-o" && !slices.Contains(s.BuildFlags, w) {
			t.Errorf("the Dockerfile's go build has %s, which make image does not use", w)
		}
	}
}

// TestManagerAcceptsRenderedArgs: the manager parses every argument the chart
// (default values and every option on) and config/default pass it: a flag the
// chart renders but the binary does not define would crash-loop the pod.
// --version exits after parsing all flags.
func TestManagerAcceptsRenderedArgs(t *testing.T) {
	bin := managerBinary(t)
	for name, d := range map[string][]string{
		"chart defaults":    container(t, deploymentOf(t, mustRender(t, "ejbca-issuer", "ejbca-issuer", nil))).Args,
		"chart all options": container(t, deploymentOf(t, mustRender(t, "ejbca", "pki", valuesFile(t, "testdata/all-options.yaml")))).Args,
		"chart toggles": container(t, deploymentOf(t, mustRender(t, "r", "ns",
			values(t, "metrics: {enabled: false}\nleaderElection: {enabled: false}")))).Args,
		"config/default": container(t, deploymentOf(t, kustomizeBuild(t))).Args,
	} {
		out, err := exec.Command(bin, append(slices.Clone(d), "--version")...).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "ejbca-issuer ") {
			t.Errorf("%s: the manager rejects %v: %v\n%s", name, d, err, out)
		}
	}
}
