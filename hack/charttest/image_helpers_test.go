package charttest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runMake runs a target of the repository's Makefile, outside any make that
// runs the tests (its jobserver and flags are not passed down).
func runMake(t testing.TB, target string, vars ...string) string {
	t.Helper()
	cmd := exec.Command("make", append([]string{"--no-print-directory", "-C", repoRoot, target}, vars...)...)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "MAKEFLAGS=") && !strings.HasPrefix(e, "MFLAGS=") && !strings.HasPrefix(e, "MAKELEVEL=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("make %s %v: %v\n%s", target, vars, err, out.String())
	}
	return out.String()
}

// The parts of the OCI image spec the tests read (read with the standard
// library: go-containerregistry stays in hack/image's module).
type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Annotations map[string]string `json:"annotations"`
	Platform    *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform"`
}

type ociIndex struct {
	MediaType string          `json:"mediaType"`
	Manifests []ociDescriptor `json:"manifests"`
}

type ociManifest struct {
	Config ociDescriptor   `json:"config"`
	Layers []ociDescriptor `json:"layers"`
}

type ociConfig struct {
	Architecture string `json:"architecture"`
	Config       struct {
		User       string            `json:"User"`
		Entrypoint []string          `json:"Entrypoint"`
		Cmd        []string          `json:"Cmd"`
		Env        []string          `json:"Env"`
		Labels     map[string]string `json:"Labels"`
		WorkingDir string            `json:"WorkingDir"`
	} `json:"config"`
}

// ociLayout is an OCI image layout written by make image.
type ociLayout string

func (l ociLayout) blob(t testing.TB, digest string, into any) []byte {
	t.Helper()
	alg, hex, ok := strings.Cut(digest, ":")
	if !ok {
		t.Fatalf("digest %q", digest)
	}
	b, err := os.ReadFile(filepath.Join(string(l), "blobs", alg, hex))
	if err != nil {
		t.Fatal(err)
	}
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("blob %s: %v", digest, err)
		}
	}
	return b
}

// imageIndex returns the digest of the one image index the layout holds.
func (l ociLayout) imageIndex(t testing.TB) (string, ociIndex) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(string(l), "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var top ociIndex
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	if len(top.Manifests) != 1 {
		t.Fatalf("the layout holds %d entries, want one image index", len(top.Manifests))
	}
	var idx ociIndex
	l.blob(t, top.Manifests[0].Digest, &idx)
	return top.Manifests[0].Digest, idx
}

// image returns the manifest and config of the layout's image for arch.
func (l ociLayout) image(t testing.TB, arch string) (ociManifest, ociConfig) {
	t.Helper()
	_, idx := l.imageIndex(t)
	for _, d := range idx.Manifests {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == arch {
			var m ociManifest
			var c ociConfig
			l.blob(t, d.Digest, &m)
			l.blob(t, m.Config.Digest, &c)
			return m, c
		}
	}
	t.Fatalf("the image index has no linux/%s image", arch)
	return ociManifest{}, ociConfig{}
}

// unpack extracts the layers of m, in order, into dir, with their modes and
// owners (as a container runtime does; the tests run as root).
func (l ociLayout) unpack(t testing.TB, m ociManifest, dir string) {
	t.Helper()
	for _, ld := range m.Layers {
		zr, err := gzip.NewReader(bytes.NewReader(l.blob(t, ld.Digest, nil)))
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Clean("/" + h.Name)
			if strings.Contains(filepath.Base(name), ".wh.") {
				t.Fatalf("layer %s has a whiteout %s: not expected in our image", ld.Digest, h.Name)
			}
			dst := filepath.Join(dir, name)
			switch h.Typeflag {
			case tar.TypeDir:
				if err := os.MkdirAll(dst, 0o755); err != nil {
					t.Fatal(err)
				}
			case tar.TypeReg:
				b, err := io.ReadAll(tr)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(dst, b, 0o600); err != nil {
					t.Fatal(err)
				}
			default:
				t.Fatalf("%s: tar type %c", h.Name, h.Typeflag)
			}
			if err := os.Lchown(dst, h.Uid, h.Gid); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dst, os.FileMode(h.Mode&0o777)|modeBits(h.Mode)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func modeBits(m int64) os.FileMode {
	var fm os.FileMode
	if m&0o1000 != 0 {
		fm |= os.ModeSticky
	}
	if m&0o2000 != 0 {
		fm |= os.ModeSetgid
	}
	if m&0o4000 != 0 {
		fm |= os.ModeSetuid
	}
	return fm
}

// imageSpec is what hack/image's `spec` command prints: the user,
// entrypoint, labels and build flags of make image.
type imageSpec struct {
	User       string            `json:"user"`
	Entrypoint []string          `json:"entrypoint"`
	Binary     string            `json:"binary"`
	Env        []string          `json:"env"`
	Labels     map[string]string `json:"labels"`
	BuildEnv   []string          `json:"buildEnv"`
	BuildFlags []string          `json:"buildFlags"`
}

func makeImageSpec(t testing.TB) imageSpec {
	t.Helper()
	cmd := exec.Command("go", "-C", filepath.Join(repoRoot, "hack", "image"), "run", ".", "spec")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go run ./hack/image spec: %v", err)
	}
	var s imageSpec
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatal(fmt.Errorf("%v: %s", err, out))
	}
	return s
}
