package main

import (
	"archive/tar"
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// file is a regular file or directory of an image's flattened filesystem.
type file struct {
	mode     int64
	uid, gid int
	dir      bool
	data     []byte
}

// imageFiles reads every layer of img, in order, into one filesystem.
func imageFiles(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	fs := map[string]file{}
	for _, l := range layers {
		mt, err := l.MediaType()
		if err != nil || mt != types.OCILayer {
			t.Errorf("layer media type %q (%v), want %q", mt, err, types.OCILayer)
		}
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		var prev string
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Name < prev {
				t.Errorf("layer entries not sorted: %s after %s", h.Name, prev)
			}
			prev = h.Name
			if !h.ModTime.Equal(time.Unix(0, 0)) || h.Uname != "" || h.Gname != "" {
				t.Errorf("%s: time %v, owner names %q/%q: want the epoch and none", h.Name, h.ModTime, h.Uname, h.Gname)
			}
			f := file{mode: h.Mode, uid: h.Uid, gid: h.Gid, dir: h.Typeflag == tar.TypeDir}
			switch h.Typeflag {
			case tar.TypeDir:
			case tar.TypeReg:
				if f.data, err = io.ReadAll(tr); err != nil {
					t.Fatal(err)
				}
			default:
				t.Errorf("%s: tar type %c, want only files and directories (no links)", h.Name, h.Typeflag)
			}
			fs[strings.TrimSuffix(h.Name, "/")] = f
		}
		rc.Close()
	}
	return fs
}

// TestImage: make image writes an OCI layout whose one entry, tagged with
// the version, is an index over linux/amd64 and linux/arm64; each image runs
// /ejbca-issuer as 65532:65532 with the Dockerfile's labels, holds a static,
// -trimpath binary for its architecture stamped with version and commit,
// the CA roots of the build machine's bundle, passwd and group entries for
// nonroot, and nothing else: no shell, no other executable.
func TestImage(t *testing.T) {
	dir := builtImage(t)
	idx, err := layoutIndex(filepath.Join(dir, layoutDir))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex || len(im.Manifests) != 2 {
		t.Fatalf("index %s with %d manifests, want an OCI index of 2", im.MediaType, len(im.Manifests))
	}
	digest, _ := idx.Digest()
	if b, _ := os.ReadFile(filepath.Join(dir, digestFile)); string(b) != digest.String()+"\n" {
		t.Errorf("%s says %q, the index is %s", digestFile, b, digest)
	}
	hostBundle, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatal(err)
	}
	want := imageSpec(testVersion, testCommit)
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	var archs []string
	for _, m := range im.Manifests {
		arch := m.Platform.Architecture
		archs = append(archs, m.Platform.OS+"/"+arch)
		t.Run(arch, func(t *testing.T) {
			img, err := idx.Image(m.Digest)
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			c := cf.Config
			if cf.OS != "linux" || cf.Architecture != arch || c.User != "65532:65532" || !slices.Equal(c.Entrypoint, []string{"/ejbca-issuer"}) ||
				len(c.Cmd) != 0 || !cf.Created.Equal(time.Unix(0, 0)) {
				t.Errorf("config: os %s arch %s user %q entrypoint %q cmd %q created %v", cf.OS, cf.Architecture, c.User, c.Entrypoint, c.Cmd, cf.Created)
			}
			for k, v := range want.Labels {
				if c.Labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
				}
			}
			if c.Labels["org.opencontainers.image.version"] != testVersion || c.Labels["org.opencontainers.image.revision"] != testCommit {
				t.Errorf("labels %v do not carry the version and commit", c.Labels)
			}
			fs := imageFiles(t, img)
			var paths []string
			for p, f := range fs {
				paths = append(paths, p)
				if !f.dir && f.mode&0o111 != 0 && p != "ejbca-issuer" {
					t.Errorf("%s is executable: the image holds one program", p)
				}
			}
			for _, sh := range []string{"bin/sh", "bin/bash", "bin/busybox", "usr/bin/env"} {
				if _, ok := fs[sh]; ok {
					t.Errorf("the image has %s", sh)
				}
			}
			slices.Sort(paths)
			t.Logf("files: %v", paths)
			if f := fs["etc/ssl/certs/ca-certificates.crt"]; !bytes.Equal(f.data, hostBundle) || f.mode != 0o644 {
				t.Errorf("the CA bundle (%d bytes, mode %o) is not the machine's Debian bundle (%d bytes)", len(f.data), f.mode, len(hostBundle))
			}
			if !strings.Contains(string(fs["etc/passwd"].data), "\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n") ||
				!strings.Contains(string(fs["etc/group"].data), "\nnonroot:x:65532:\n") {
				t.Errorf("passwd/group lack nonroot 65532:\n%s%s", fs["etc/passwd"].data, fs["etc/group"].data)
			}
			if h := fs["home/nonroot"]; !h.dir || h.uid != 65532 || h.gid != 65532 {
				t.Errorf("/home/nonroot: %+v, want a directory of 65532", h)
			}
			if tmp := fs["tmp"]; !tmp.dir || tmp.mode != 0o1777 {
				t.Errorf("/tmp: %+v, want mode 1777", tmp)
			}
			bin, ok := fs["ejbca-issuer"]
			if !ok || bin.mode != 0o755 || bin.uid != 0 {
				t.Fatalf("/ejbca-issuer: %v %+v", ok, bin.mode)
			}
			ef, err := elf.NewFile(bytes.NewReader(bin.data))
			if err != nil {
				t.Fatal(err)
			}
			if ef.Machine != machines[arch] {
				t.Errorf("the %s binary is for %v", arch, ef.Machine)
			}
			for _, p := range ef.Progs {
				if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
					t.Errorf("the binary is dynamically linked (%v)", p.Type)
				}
			}
			if ef.Section(".symtab") != nil {
				t.Error("the binary has a symbol table: the Makefile's -s -w did not apply")
			}
			path := filepath.Join(t.TempDir(), "ejbca-issuer")
			if err := os.WriteFile(path, bin.data, 0o755); err != nil {
				t.Fatal(err)
			}
			info, err := buildinfo.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			settings := map[string]string{}
			for _, s := range info.Settings {
				settings[s.Key] = s.Value
			}
			if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" || settings["GOARCH"] != arch || settings["vcs.revision"] != "" {
				t.Errorf("build settings %v: want CGO_ENABLED=0, -trimpath, GOARCH=%s and no VCS stamp", settings, arch)
			}
			if arch == runtime.GOARCH {
				out, err := exec.Command(path, "--version").CombinedOutput()
				wantOut := "ejbca-issuer " + testVersion + " (commit " + testCommit + ", " + info.GoVersion + ")\n"
				if err != nil || string(out) != wantOut {
					t.Errorf("--version: %q %v, want %q", out, err, wantOut)
				}
			}

			// The docker tarball holds this image, tagged.
			tb := filepath.Join(dir, "ejbca-issuer-"+arch+".tar")
			tag, _ := name.NewTag(testImg)
			timg, err := tarball.ImageFromPath(tb, &tag)
			if err != nil {
				t.Fatalf("the docker tarball %s: %v", tb, err)
			}
			cd, _ := img.ConfigName()
			tcd, _ := timg.ConfigName()
			ld, _ := img.Layers()
			tld, _ := timg.Layers()
			if cd != tcd || len(ld) != len(tld) {
				t.Errorf("the docker tarball's config %s (%d layers) is not the layout's %s (%d)", tcd, len(tld), cd, len(ld))
			}
			for i := range ld {
				a, _ := ld[i].DiffID()
				b, _ := tld[i].DiffID()
				if a != b {
					t.Errorf("layer %d: tarball %s, layout %s", i, b, a)
				}
			}
		})
	}
	slices.Sort(archs)
	if !slices.Equal(archs, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("platforms %v", archs)
	}
}

// TestImageReproducible: building again from the same source gives the same
// index digest and the same SBOM.
func TestImageReproducible(t *testing.T) {
	first := builtImage(t)
	second := t.TempDir()
	makeTarget(t, "image", imageVars(second)...)
	for _, f := range []string{digestFile, sbomFile} {
		a, err := os.ReadFile(filepath.Join(first, f))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(second, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two builds of the same source:\n%.300s\n%.300s", f, a, b)
		}
	}
	d, _ := os.ReadFile(filepath.Join(first, digestFile))
	t.Logf("both builds: index %s", bytes.TrimSpace(d))
}
