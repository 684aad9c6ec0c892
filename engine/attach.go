package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/supervisor"
)

// A detached container with a terminal (run -d -t) keeps its pty master in the supervisor's
// worker (and a copy in its reaper's store, so that the terminal outlives a worker that dies and
// the next one serves it), which serves <root>/engine/<id>/attach.sock: `bulwark attach`
// connects there. Both directions carry frames — kind (1 byte), length (4 bytes, big endian),
// payload:
//
//	client → monitor: frameInput (bytes for the pty), frameResize (rows, cols: 2+2 bytes)
//	monitor → client: frameOutput (bytes from the pty), frameExit (the exit status: 4 bytes),
//	                  sent once the workload has exited and its output has been sent
//
// The client leaves by closing its connection (Docker's detach keys); the container runs on.
const (
	frameInput  byte = 0
	frameResize byte = 1
	frameOutput byte = 2
	frameExit   byte = 3
	// maxFrame bounds a frame's payload (a client cannot make the monitor allocate more).
	maxFrame = 1 << 20
)

func writeFrame(w io.Writer, kind byte, p []byte) error {
	hdr := make([]byte, 5, 5+len(p))
	hdr[0] = kind
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(p)))
	_, err := w.Write(append(hdr, p...))
	return err
}

func readFrame(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("attach: frame of %d bytes", n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	return hdr[0], p, nil
}

// attachServer fans a pty's output out to the attached clients and their input into the pty.
type attachServer struct {
	pty *os.File
	ln  *net.UnixListener

	mu      sync.Mutex // guards clients
	clients map[*net.UnixConn]bool
}

// serveAttach listens on the container's attach socket.
func (e *Engine) serveAttach(id string, pty *os.File) (*attachServer, error) {
	p, done, err := supervisor.SocketAddr(e.metaDir(id), "attach.sock")
	if err != nil {
		return nil, err
	}
	defer done()
	// A worker that died left its socket: this worker serves the terminal now.
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("listen on attach socket: %w", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on attach socket: %w", err)
	}
	s := &attachServer{pty: pty, ln: ln, clients: map[*net.UnixConn]bool{}}
	go s.accept()
	return s, nil
}

func (s *attachServer) accept() {
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.clients[c] = true
		s.mu.Unlock()
		go s.input(c)
	}
}

// input copies one client's frames into the pty until it leaves.
func (s *attachServer) input(c *net.UnixConn) {
	defer s.drop(c)
	for {
		kind, p, err := readFrame(c)
		if err != nil {
			return
		}
		switch kind {
		case frameInput:
			if _, err := s.pty.Write(p); err != nil {
				return
			}
		case frameResize:
			if len(p) == 4 {
				ws := &unix.Winsize{Row: binary.BigEndian.Uint16(p), Col: binary.BigEndian.Uint16(p[2:])}
				_ = unix.IoctlSetWinsize(int(s.pty.Fd()), unix.TIOCSWINSZ, ws)
			}
		default:
			return
		}
	}
}

func (s *attachServer) drop(c *net.UnixConn) {
	s.mu.Lock()
	delete(s.clients, c)
	s.mu.Unlock()
	c.Close()
}

// Write sends output to every client; a client that does not take it within a second is
// dropped, so that one stalled client never stalls the workload or its log.
func (s *attachServer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.clients {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		if err := writeFrame(c, frameOutput, p); err != nil {
			delete(s.clients, c)
			c.Close()
		}
	}
	return len(p), nil
}

// finish tells every client the exit status and stops serving.
func (s *attachServer) finish(code int) {
	s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(int32(code)))
	for c := range s.clients {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		writeFrame(c, frameExit, b[:])
		c.Close()
	}
	s.clients = nil
}

// ErrNotAttachable is returned for a container that has no terminal served by a monitor
// (one not started with -d -t, or whose workload has exited).
var ErrNotAttachable = errors.New("container is not attachable")

// Attachment is a client's connection to a detached container's terminal.
type Attachment struct {
	conn *net.UnixConn
	mu   sync.Mutex // serialises frames written by Write and Resize
}

// Attach connects to the terminal of a container started with -d -t.
func (e *Engine) Attach(id string) (*Attachment, error) {
	if _, err := e.readMeta(id); err != nil {
		return nil, err
	}
	p, done, err := supervisor.SocketAddr(e.metaDir(id), "attach.sock")
	if err != nil {
		return nil, err
	}
	defer done()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: p, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNotAttachable, id, err)
	}
	return &Attachment{conn: c}, nil
}

// Write sends input to the container's terminal.
func (a *Attachment) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := writeFrame(a.conn, frameInput, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Resize sets the terminal's window size.
func (a *Attachment) Resize(rows, cols uint16) error {
	var b [4]byte
	binary.BigEndian.PutUint16(b[:], rows)
	binary.BigEndian.PutUint16(b[2:], cols)
	a.mu.Lock()
	defer a.mu.Unlock()
	return writeFrame(a.conn, frameResize, b[:])
}

// Copy writes the terminal's output to w until the workload exits, and returns its exit status;
// ok is false when the connection ended without one (Close, or the monitor died).
func (a *Attachment) Copy(w io.Writer) (code int, ok bool, err error) {
	for {
		kind, p, err := readFrame(a.conn)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				err = nil
			}
			return 0, false, err
		}
		switch kind {
		case frameOutput:
			if _, err := w.Write(p); err != nil {
				return 0, false, err
			}
		case frameExit:
			if len(p) != 4 {
				return 0, false, errors.New("attach: bad exit frame")
			}
			return int(int32(binary.BigEndian.Uint32(p))), true, nil
		}
	}
}

// Close leaves the container running (detach).
func (a *Attachment) Close() error { return a.conn.Close() }

// attachSocket is the socket's path in the container's engine directory.
func (e *Engine) attachSocket(id string) string { return filepath.Join(e.metaDir(id), "attach.sock") }
