package signing

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// ClientConfig is <trust>/client.json: which repository this host trusts and under which root.
// The pinned root sits beside it in pinned-root.json; the verified cache in cache/.
type ClientConfig struct {
	Remote string `json:"remote"`
}

// Pin records remote and the pinned root for the client of the trust directory, and clears the
// cache, whose metadata belonged to the previous pin.
func Pin(trustDir, remote string, root []byte) error {
	if err := os.MkdirAll(trustDir, 0o700); err != nil {
		return err
	}
	if _, err := NewClient(ClientOptions{Root: root, Remote: remote, CacheDir: filepath.Join(trustDir, "cache")}); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(trustDir, "cache")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(trustDir, "pinned-root.json"), root, 0o644); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(ClientConfig{Remote: remote}, "", "  ")
	return os.WriteFile(filepath.Join(trustDir, "client.json"), b, 0o644)
}

// OpenClient builds the client configured in the trust directory (see Pin).
func OpenClient(trustDir string, offline bool) (*Client, error) {
	b, err := os.ReadFile(filepath.Join(trustDir, "client.json"))
	if err != nil {
		return nil, fmt.Errorf("no trust configured (bulwark trust init or trust pin): %w", err)
	}
	var cfg ClientConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("parse client.json: %w", err)
	}
	root, err := os.ReadFile(filepath.Join(trustDir, "pinned-root.json"))
	if err != nil {
		return nil, fmt.Errorf("pinned root: %w", err)
	}
	return NewClient(ClientOptions{Root: root, Remote: cfg.Remote, CacheDir: filepath.Join(trustDir, "cache"), Offline: offline})
}
