package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"bulwark.dev/bulwark/internal/jsontext"
	"golang.org/x/sys/unix"
)

const (
	keyFile       = "audit.key"
	publicKeyFile = "audit.pub"
	// checkpointDomain separates checkpoint signatures from any other use of the key.
	checkpointDomain = "bulwark.dev/audit/checkpoint/v1"
)

// Checkpoint is a signed statement that the chain had record Seq with hash Hash at Time. Exported
// checkpoints, kept off the host, let a verifier detect a truncated tail or a rewritten log.
type Checkpoint struct {
	Version   string    `json:"v"`
	Seq       uint64    `json:"seq"`
	Hash      string    `json:"hash"`
	Time      time.Time `json:"time"`
	PublicKey string    `json:"public_key"` // base64 ed25519 public key of the signer
	Signature string    `json:"sig"`        // base64 ed25519 signature over signedBytes()
}

func (c Checkpoint) signedBytes() []byte {
	return []byte(checkpointDomain + "\n" + strconv.FormatUint(c.Seq, 10) + "\n" + c.Hash + "\n" +
		c.Time.UTC().Format(time.RFC3339Nano) + "\n")
}

// verifySignature checks the checkpoint's signature with pub (the trusted key, not the one it carries).
func (c Checkpoint) verifySignature(pub ed25519.PublicKey) error {
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil {
		return fmt.Errorf("checkpoint %d: bad signature encoding: %w", c.Seq, err)
	}
	if !ed25519.Verify(pub, c.signedBytes(), sig) {
		return fmt.Errorf("checkpoint %d: signature does not verify", c.Seq)
	}
	return nil
}

// loadOrCreateKey returns the seed of the log's ed25519 signing key, creating the key (0600), and
// dir if need be, on first use.
func loadOrCreateKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, keyFile)
	seed, err := readKey(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create audit dir: %w", err)
		}
		return createKey(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read audit key: %w", err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("audit key %s: want %d bytes, have %d", path, ed25519.SeedSize, len(seed))
	}
	return seed, nil
}

// readKey reads the key file at path, up to one byte more than a seed (a longer file is read
// short, and refused as not a seed), in one read: a read of a regular file that returns less
// than it asked for has reached its end. Every bulwark-runc create and exec opens the log: the
// file is read through its descriptor with plain system calls, not an *os.File, which registers
// it with (and, the first in a process, sets up) the runtime's poller for one read.
func readKey(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, ed25519.SeedSize+1)
	n, err := unix.Read(fd, buf)
	for err == unix.EINTR {
		n, err = unix.Read(fd, buf)
	}
	if err != nil {
		return nil, &os.PathError{Op: "read", Path: path, Err: err}
	}
	return buf[:n], nil
}

func createKey(dir string) ([]byte, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate audit key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".key-*")
	if err != nil {
		return nil, fmt.Errorf("create audit key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(priv.Seed()); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write audit key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write audit key: %w", err)
	}
	// link(2) fails if another process won the race; then their key is the one to use.
	if err := os.Link(tmp.Name(), filepath.Join(dir, keyFile)); errors.Is(err, os.ErrExist) {
		return loadOrCreateKey(dir)
	} else if err != nil {
		return nil, fmt.Errorf("publish audit key: %w", err)
	}
	pubTmp := tmp.Name() + ".pub"
	enc := base64.StdEncoding.EncodeToString(pub) + "\n"
	if err := os.WriteFile(pubTmp, []byte(enc), 0o644); err != nil {
		return nil, fmt.Errorf("write audit public key: %w", err)
	}
	if err := os.Rename(pubTmp, filepath.Join(dir, publicKeyFile)); err != nil {
		return nil, fmt.Errorf("publish audit public key: %w", err)
	}
	return priv.Seed(), nil
}

// PublicKey reads the public key of the log in dir.
func PublicKey(dir string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(filepath.Join(dir, publicKeyFile))
	if err != nil {
		return nil, fmt.Errorf("read audit public key: %w", err)
	}
	return decodePublicKey(string(b))
}

func decodePublicKey(s string) (ed25519.PublicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(trimNewline(s))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("malformed ed25519 public key")
	}
	return ed25519.PublicKey(raw), nil
}

func trimNewline(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}

// maybeCheckpoint signs a checkpoint when enough records or time have passed. Caller holds the lock.
func (l *Log) maybeCheckpoint() error {
	now := l.opts.Now()
	if l.tail.seq == l.tail.ckptSeq {
		return nil
	}
	if l.tail.seq-l.tail.ckptSeq < l.opts.CheckpointEvery && now.Sub(l.tail.ckptTime) < l.opts.CheckpointInterval {
		return nil
	}
	return l.writeCheckpoint(now)
}

// Checkpoint signs a checkpoint of the current tail now, whatever the schedule says.
func (l *Log) Checkpoint() (Checkpoint, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.refreshTail(); err != nil {
		return Checkpoint{}, err
	}
	if err := l.writeCheckpoint(l.opts.Now()); err != nil {
		return Checkpoint{}, err
	}
	return LatestCheckpoint(l.dir)
}

func (l *Log) writeCheckpoint(now time.Time) error {
	if l.key == nil {
		l.key = ed25519.NewKeyFromSeed(l.seed)
	}
	c := Checkpoint{
		Version: SchemaVersion, Seq: l.tail.seq, Hash: l.tail.hash, Time: now.UTC(),
		PublicKey: base64.StdEncoding.EncodeToString(l.key.Public().(ed25519.PublicKey)),
	}
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(l.key, c.signedBytes()))
	line, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(l.dir, checkpointsFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open checkpoints: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync checkpoints: %w", err)
	}
	l.tail.ckptSeq, l.tail.ckptTime = c.Seq, c.Time
	return nil
}

// loadCheckpointTail sets the schedule's starting point from the last checkpoint on disk. Only
// the file's last line is read: every process's first append loads it, and the file grows by a
// line at least every CheckpointInterval of activity (reading it whole made each first append
// slower as the state root aged). Every checkpoint is checked by Verify. A last line that is cut
// short (a crash while one was written) or does not decode is refused, as the whole file was.
func (l *Log) loadCheckpointTail() error {
	line, _, whole, err := lastLine(filepath.Join(l.dir, checkpointsFile))
	switch {
	case errors.Is(err, os.ErrNotExist), err == nil && line == nil && whole:
		l.tail.ckptSeq, l.tail.ckptTime = 0, l.opts.Now()
		return nil
	case err != nil:
		return err
	case !whole:
		return fmt.Errorf("%s ends with a partial line (run 'bulwark audit verify')", checkpointsFile)
	}
	var c Checkpoint
	if err := jsontext.Decode(line, &c, readCheckpoint); err != nil {
		return fmt.Errorf("%s: last line: %w", checkpointsFile, err)
	}
	l.tail.ckptSeq, l.tail.ckptTime = c.Seq, c.Time
	return nil
}

// Checkpoints reads every checkpoint of the log in dir, oldest first.
func Checkpoints(dir string) ([]Checkpoint, error) {
	var out []Checkpoint
	err := readSegment(filepath.Join(dir, checkpointsFile), func(line int, raw []byte, _ bool) error {
		var c Checkpoint
		if err := jsontext.Decode(raw, &c, readCheckpoint); err != nil {
			return fmt.Errorf("%s line %d: %w", checkpointsFile, line, err)
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

// LatestCheckpoint returns the newest checkpoint; os.ErrNotExist (wrapped) when there is none.
func LatestCheckpoint(dir string) (Checkpoint, error) {
	all, err := Checkpoints(dir)
	if err != nil {
		return Checkpoint{}, err
	}
	if len(all) == 0 {
		return Checkpoint{}, fmt.Errorf("no checkpoint yet: %w", os.ErrNotExist)
	}
	return all[len(all)-1], nil
}
