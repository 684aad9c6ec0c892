package console

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// DefaultDetachKeys is Docker's detach sequence.
const DefaultDetachKeys = "ctrl-p,ctrl-q"

// ErrDetached is returned by a DetachReader once the detach sequence was read.
var ErrDetached = errors.New("detached")

// ParseDetachKeys reads Docker's --detach-keys syntax: a comma-separated list of single
// characters or ctrl-<c>, c one of a-z @ [ \ ] ^ _.
func ParseDetachKeys(s string) ([]byte, error) {
	var out []byte
	for _, k := range strings.Split(s, ",") {
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(strings.ToLower(k), "ctrl-") && len(k) == 6:
			c := strings.ToLower(k)[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c == '@':
				out = append(out, 0)
			case c >= '[' && c <= '_':
				out = append(out, c-'['+27)
			default:
				return nil, fmt.Errorf("detach keys %q: unknown key %q", s, k)
			}
		default:
			return nil, fmt.Errorf("detach keys %q: unknown key %q (a character or ctrl-<key>)", s, k)
		}
	}
	return out, nil
}

// DetachReader passes r's bytes on until the detach sequence is read: then it returns
// ErrDetached (the bytes before it delivered first, the sequence itself never). A partial match
// followed by anything else is passed on whole.
type DetachReader struct {
	r       io.Reader
	keys    []byte
	matched int
	out     []byte
	err     error
}

// NewDetachReader wraps r; keys must not be empty.
func NewDetachReader(r io.Reader, keys []byte) *DetachReader {
	return &DetachReader{r: r, keys: keys}
}

func (d *DetachReader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		buf := make([]byte, max(len(p), 1))
		n, err := d.r.Read(buf)
		for _, b := range buf[:n] {
			if b == d.keys[d.matched] {
				if d.matched++; d.matched == len(d.keys) {
					d.err = ErrDetached
					break
				}
				continue
			}
			d.out = append(d.out, d.keys[:d.matched]...)
			d.matched = 0
			if b == d.keys[0] {
				d.matched = 1
				continue
			}
			d.out = append(d.out, b)
		}
		if err != nil && d.err == nil {
			d.err = err
		}
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

// Remote is a terminal elsewhere (a detached container's, through its monitor).
type Remote interface {
	io.Writer
	Resize(rows, cols uint16) error
	Close() error
}

// Connect attaches the caller's terminal in to r, as docker attach does: in raw mode when in is
// a terminal, its window size sent now and on every SIGWINCH, its input copied to r until the
// detach keys, which close r and close detached. stop restores the terminal.
func Connect(in *os.File, r Remote, keys []byte) (detached <-chan struct{}, stop func(), err error) {
	fd := int(in.Fd())
	var old *term.State
	if term.IsTerminal(fd) {
		if old, err = term.MakeRaw(fd); err != nil {
			return nil, nil, fmt.Errorf("set terminal raw mode: %w", err)
		}
	}
	resize := func() {
		if ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ); err == nil {
			r.Resize(ws.Row, ws.Col)
		}
	}
	resize()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-winch:
				resize()
			case <-done:
				return
			}
		}
	}()
	det := make(chan struct{})
	go func() {
		_, err := io.Copy(r, NewDetachReader(in, keys))
		if errors.Is(err, ErrDetached) {
			close(det)
			r.Close()
		}
	}()
	var once sync.Once
	return det, func() {
		once.Do(func() {
			signal.Stop(winch)
			close(done)
			if old != nil {
				term.Restore(fd, old)
			}
		})
	}, nil
}
