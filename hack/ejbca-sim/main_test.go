package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// lockedBuffer collects run's output while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestPresets starts the command with every preset and checks that it says
// which one it runs and behaves as it: the status revision and whether
// /v1/endentity exists.
func TestPresets(t *testing.T) {
	for _, preset := range ejbcasim.PresetNames() {
		t.Run(preset, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			var out lockedBuffer
			done := make(chan error, 1)
			go func() { done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--out", dir, "--preset", preset}, &out) }()

			var baseURL string
			if err := testkit.Poll(20*time.Second, func() string {
				for _, line := range strings.Split(out.String(), "\n") {
					if v, ok := strings.CutPrefix(strings.TrimSpace(line), "REST API:"); ok {
						baseURL = strings.TrimSpace(v)
						return ""
					}
				}
				return fmt.Sprintf("no REST API line in %q", out.String())
			}); err != nil {
				cancel()
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "preset:     "+preset+" ") {
				t.Errorf("output does not name the preset: %q", out.String())
			}

			caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
			if err != nil {
				t.Fatal(err)
			}
			cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key"))
			if err != nil {
				t.Fatal(err)
			}
			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM(caPEM)
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}}}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}

			resp, err := hc.Get(baseURL + "/v1/certificate/status")
			if err != nil {
				t.Fatal(err)
			}
			var st struct {
				Revision string `json:"revision"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if !strings.Contains(st.Revision, preset) {
				t.Errorf("revision %q does not name %s", st.Revision, preset)
			}
			resp, err = hc.Post(baseURL+"/v1/endentity", "application/json", strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			b, _ := ejbcasim.PresetBehaviour(preset)
			if (resp.StatusCode == http.StatusNotFound) == b.EndEntityAPI {
				t.Errorf("/v1/endentity answered %d with EndEntityAPI=%v", resp.StatusCode, b.EndEntityAPI)
			}

			cancel()
			if err := <-done; err != nil {
				t.Fatalf("run: %v", err)
			}
		})
	}
}

func TestUnknownPresetAndMissingOut(t *testing.T) {
	var out lockedBuffer
	if err := run(context.Background(), []string{"--out", t.TempDir(), "--preset", "enterprise-7"}, &out); err == nil || !strings.Contains(err.Error(), "enterprise-7") {
		t.Fatalf("unknown preset: %v", err)
	}
	if err := run(context.Background(), []string{"--preset", "community-9"}, &out); err == nil {
		t.Fatal("missing --out accepted")
	}
}
