package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"sigs.k8s.io/kustomize/api/krusty"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// The files of a release, beside image/ (what build writes) and SHA256SUMS.
const (
	releaseImageDir = "image"
	crdsFile        = "ejbca-issuer-crds.yaml"
	installFile     = "ejbca-issuer.yaml"
	sumsFile        = "SHA256SUMS"
	defaultImage    = "ghcr.io/certctl-io/ejbca-issuer" // the image config/default and the chart name
)

var releaseVersion = regexp.MustCompile(`^v(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)$`)

// release writes everything a release publishes into b.out: the image
// (layout, tarballs, SBOM), the chart packaged with appVersion and the image
// digest, the CRDs as one file, the config/default install pinned by digest,
// and SHA256SUMS over all of it.
func release(b buildOptions) (*buildResult, error) {
	m := releaseVersion.FindStringSubmatch(b.version)
	if m == nil {
		return nil, fmt.Errorf("VERSION=%q: a release needs vX.Y.Z", b.version)
	}
	if err := b.check(); err != nil {
		return nil, err
	}
	repo, err := repoRoot(b.repo)
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(b.out); err != nil {
		return nil, err
	}
	img := b
	img.out = filepath.Join(b.out, releaseImageDir)
	res, err := build(img)
	if err != nil {
		return nil, err
	}
	pinned := res.repository + "@" + res.digest.String()
	if err := packageChart(repo, b.out, m[1], b.version, res, b.created); err != nil {
		return nil, fmt.Errorf("packaging the chart: %w", err)
	}
	if err := writeCRDs(repo, filepath.Join(b.out, crdsFile)); err != nil {
		return nil, err
	}
	if err := writeInstall(repo, filepath.Join(b.out, installFile), res); err != nil {
		return nil, fmt.Errorf("rendering config/default with %s: %w", pinned, err)
	}
	if err := writeSums(b.out); err != nil {
		return nil, err
	}
	return res, nil
}

// packageChart writes ejbca-issuer-<chartVersion>.tgz: the chart with
// version and appVersion set and values.yaml's image.repository and
// image.digest filled in (edited as text so that its comments, which
// `helm show values` prints, survive).
func packageChart(repo, out, chartVersion, appVersion string, res *buildResult, mtime time.Time) error {
	c, err := loader.Load(filepath.Join(repo, "charts", "ejbca-issuer"))
	if err != nil {
		return err
	}
	c.Metadata.Version, c.Metadata.AppVersion = chartVersion, appVersion
	for _, f := range c.Raw {
		if f.Name != chartutil.ValuesfileName {
			continue
		}
		if f.Data, err = setImageValues(f.Data, res.repository, res.digest.String()); err != nil {
			return err
		}
		if c.Values, err = chartutil.ReadValues(f.Data); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "ejbca-issuer-chart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tgz, err := chartutil.Save(c, dir)
	if err != nil {
		return err
	}
	return reproducibleTgz(tgz, filepath.Join(out, filepath.Base(tgz)), mtime)
}

// setImageValues sets repository and digest in the top-level image: block.
func setImageValues(values []byte, repository, digest string) ([]byte, error) {
	lines := strings.Split(string(values), "\n")
	in, setRepo, setDigest := false, false, false
	for i, l := range lines {
		switch {
		case l == "image:":
			in = true
		case in && l != "" && !strings.HasPrefix(l, " "):
			in = false
		case in && strings.HasPrefix(l, "  repository: "):
			lines[i], setRepo = "  repository: "+repository, true
		case in && strings.HasPrefix(l, "  digest: "):
			lines[i], setDigest = `  digest: "`+digest+`"`, true
		}
	}
	if !setRepo || !setDigest {
		return nil, fmt.Errorf("values.yaml has no image.repository or image.digest line to set")
	}
	return []byte(strings.Join(lines, "\n")), nil
}

// reproducibleTgz copies a tar.gz with every time set to mtime (Helm
// stamps the packaging time), so the same release gives the same checksum.
func reproducibleTgz(src, dst string, mtime time.Time) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		h.ModTime, h.AccessTime, h.ChangeTime = mtime, time.Time{}, time.Time{}
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(dst, buf.Bytes(), 0o644)
}

// writeCRDs concatenates config/crd/bases, sorted, into one YAML stream.
func writeCRDs(repo, dst string) error {
	files, err := filepath.Glob(filepath.Join(repo, "config", "crd", "bases", "*.yaml"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no CRDs in config/crd/bases")
	}
	sort.Strings(files)
	var out bytes.Buffer
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if out.Len() > 0 {
			out.WriteString("---\n")
		}
		out.Write(bytes.TrimPrefix(b, []byte("---\n")))
	}
	return os.WriteFile(dst, out.Bytes(), 0o644)
}

// writeInstall renders config/default through an overlay that sets the
// image by digest, as `kustomize edit set image` would.
func writeInstall(repo, dst string, res *buildResult) error {
	overlay, err := os.MkdirTemp("", "ejbca-issuer-release-overlay-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(overlay)
	// Kustomize takes no absolute resource path: name config/default
	// relative to the overlay.
	base, err := filepath.Rel(overlay, filepath.Join(repo, "config", "default"))
	if err != nil {
		return err
	}
	k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - %s\nimages:\n  - name: %s\n    newName: %s\n    digest: %s\n",
		filepath.ToSlash(base), defaultImage, res.repository, res.digest)
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		return err
	}
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = kustypes.LoadRestrictionsNone
	rm, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), overlay)
	if err != nil {
		return err
	}
	y, err := rm.AsYaml()
	if err != nil {
		return err
	}
	if !bytes.Contains(y, []byte("image: "+res.repository+"@"+res.digest.String())) {
		return fmt.Errorf("the rendered Deployment does not name %s@%s", res.repository, res.digest)
	}
	return os.WriteFile(dst, y, 0o644)
}

// writeSums writes SHA256SUMS, in sha256sum's format, over every file under
// dir, so `sha256sum -c SHA256SUMS` in dir checks the whole release.
func writeSums(dir string) error {
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		lines = append(lines, hex.EncodeToString(h[:])+"  "+filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i][66:] < lines[j][66:] })
	return os.WriteFile(filepath.Join(dir, sumsFile), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}
