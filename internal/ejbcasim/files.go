package ejbcasim

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// WriteCredentials writes what a tool outside Go needs to talk to the
// simulator: ca.crt (verifies its TLS), client.crt and client.key (an
// administrator), token (a static bearer token) and oauth.json (token URL,
// client id and secret).
func (sim *Sim) WriteCredentials(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	oauth, err := json.MarshalIndent(map[string]string{
		"token_url":     sim.TokenURL(),
		"client_id":     sim.OAuthClientID(),
		"client_secret": sim.OAuthClientSecret(),
	}, "", "  ")
	if err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"ca.crt", sim.CABundlePEM(), 0o644},
		{"client.crt", sim.ClientCertPEM(), 0o644},
		{"client.key", sim.ClientKeyPEM(), 0o600},
		{"token", []byte(sim.StaticToken() + "\n"), 0o600},
		{"oauth.json", append(oauth, '\n'), 0o600},
	}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, f.data, f.mode); err != nil {
			return err
		}
		// WriteFile keeps the mode of an existing file; make it what we mean.
		if err := os.Chmod(path, f.mode); err != nil {
			return err
		}
	}
	return nil
}
