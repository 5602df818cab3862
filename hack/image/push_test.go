package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestImagePush: make image-push sends the index of make image's layout to
// a registry (go-containerregistry's, in process, on 127.0.0.1) that wants
// basic auth, with the credentials the default keychain finds in
// $DOCKER_CONFIG/config.json (what `docker login` writes); the index and
// each image pulled back have the digests built.
func TestImagePush(t *testing.T) {
	dir := builtImage(t)
	const user, pass = "pusher", "s3cret"
	var authorized, refused atomic.Int32
	reg := registry.New(registry.Logger(quietLogger()))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			refused.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="imagetest"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		authorized.Add(1)
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	if !strings.HasPrefix(host, "127.0.0.1:") {
		t.Fatalf("the registry listens on %s, not 127.0.0.1", host)
	}

	dockerConfig := t.TempDir()
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}}})
	if err := os.WriteFile(filepath.Join(dockerConfig, "config.json"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dockerConfig)

	img := host + "/pki/ejbca-issuer:" + testVersion
	out := makeTarget(t, "image-push", "IMAGE_DIR="+dir, "IMG="+img)
	want, err := os.ReadFile(filepath.Join(dir, digestFile))
	if err != nil {
		t.Fatal(err)
	}
	wantRef := host + "/pki/ejbca-issuer@" + strings.TrimSpace(string(want))
	if !strings.Contains(out, wantRef+"\n") {
		t.Errorf("make image-push printed %q, want the pinned reference %s", out, wantRef)
	}
	if authorized.Load() == 0 {
		t.Error("no request to the registry carried the keychain's credentials")
	}

	ref, err := name.ParseReference(img, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	// Pulled back through the same auth wall, with the same credentials.
	pulled, err := remote.Index(ref, remote.WithAuth(basic{user, pass}))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := pulled.Digest()
	if got.String() != strings.TrimSpace(string(want)) {
		t.Errorf("pulled index %s, built %s", got, want)
	}
	local, err := layoutIndex(filepath.Join(dir, layoutDir))
	if err != nil {
		t.Fatal(err)
	}
	lm, _ := local.IndexManifest()
	for _, m := range lm.Manifests {
		ri, err := remote.Image(ref.Context().Digest(m.Digest.String()), remote.WithAuth(basic{user, pass}))
		if err != nil {
			t.Fatalf("pulling %s %s: %v", m.Platform.Architecture, m.Digest, err)
		}
		rd, _ := ri.Digest()
		li, _ := local.Image(m.Digest)
		lc, _ := li.ConfigName()
		rc, _ := ri.ConfigName()
		if rd != m.Digest || lc != rc {
			t.Errorf("%s: pulled %s (config %s), built %s (config %s)", m.Platform.Architecture, rd, rc, m.Digest, lc)
		}
	}
	t.Logf("pushed %s; %d requests authorized, %d challenged", wantRef, authorized.Load(), refused.Load())
}
