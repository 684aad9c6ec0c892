package signing

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// keyFile is the on-disk form of a private key: the TUF public key plus the ed25519 private key
// in hex. It is created 0600 and refused if readable by others. A public key file is the TUF key
// JSON alone.
type keyFile struct {
	Key     *metadata.Key `json:"key"`
	Private string        `json:"private,omitempty"`
}

// PrivateKey is a loaded ed25519 signing key.
type PrivateKey struct {
	ID   string
	Pub  *metadata.Key
	priv ed25519.PrivateKey
}

// Signer returns a sigstore signer for TUF metadata.
func (k *PrivateKey) Signer() (signature.Signer, error) {
	return signature.LoadSigner(k.priv, crypto.Hash(0))
}

// GenerateKey makes a new ed25519 key.
func GenerateKey() (*PrivateKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return nil, err
	}
	id, err := k.ID()
	if err != nil {
		return nil, err
	}
	return &PrivateKey{ID: id, Pub: k, priv: priv}, nil
}

// WritePrivate saves the key to path (mode 0600, never overwriting) and its public half to
// path+".pub".
func (k *PrivateKey) WritePrivate(path string) error {
	b, err := json.MarshalIndent(keyFile{Key: k.Pub, Private: hex.EncodeToString(k.priv)}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write private key: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return WritePublic(path+".pub", k.Pub)
}

// WritePublic saves a public key file.
func WritePublic(path string, k *metadata.Key) error {
	b, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func readKeyFile(path string) (*keyFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil || kf.Key == nil {
		// A public key file.
		var k metadata.Key
		if err := json.Unmarshal(b, &k); err != nil {
			return nil, fmt.Errorf("parse key %s: %w", path, err)
		}
		kf = keyFile{Key: &k}
	}
	if kf.Key.Type != metadata.KeyTypeEd25519 {
		return nil, fmt.Errorf("key %s: type %q, only ed25519 is supported", path, kf.Key.Type)
	}
	return &kf, nil
}

// LoadPublic reads a public (or private) key file and returns the public key.
func LoadPublic(path string) (*metadata.Key, error) {
	kf, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	return kf.Key, nil
}

// LoadPrivate reads a private key file, refusing one that group or others can read.
func LoadPrivate(path string) (*PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("private key %s is accessible by others (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	kf, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	raw, err := hex.DecodeString(kf.Private)
	if err != nil || len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("key %s holds no ed25519 private key", path)
	}
	priv := ed25519.PrivateKey(raw)
	pub, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		return nil, err
	}
	id, err := pub.ID()
	if err != nil {
		return nil, err
	}
	if pub.Value.PublicKey != kf.Key.Value.PublicKey {
		return nil, fmt.Errorf("key %s: public and private halves differ", path)
	}
	return &PrivateKey{ID: id, Pub: pub, priv: priv}, nil
}

// loadRoleKeys loads every private key in dir (keys/<role>); a missing dir is no keys.
func loadRoleKeys(dir string) ([]*PrivateKey, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*PrivateKey
	for _, e := range ents {
		if e.IsDir() || filepath.Ext(e.Name()) != ".key" {
			continue
		}
		k, err := LoadPrivate(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
