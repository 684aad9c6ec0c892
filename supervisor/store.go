package supervisor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// The reaper keeps descriptors for its worker, so that what only a descriptor can hold outlives
// a worker that dies: a terminal's master (its last close hangs the terminal up), the pidfd that
// still gives the exit status of a container that is not the reaper's child, the network
// namespace a container's network was set up in. The worker stores a descriptor under a name
// and drops it when done; a worker started again receives every one still stored before it
// adopts the containers.
//
// The store is a SOCK_SEQPACKET pair, the worker's end its descriptor StoreFD. One message is
// one operation, its kind the first byte and a name the rest:
//
//	worker → reaper: opPut (one descriptor attached; replaces the name's), opDrop
//	reaper → worker: opPut for each stored descriptor, then opEnd, once, as the worker starts
const StoreFD = 4

const (
	opPut  byte = 'p'
	opDrop byte = 'd'
	opEnd  byte = 'e'
)

// maxName bounds a stored name (a container id and a suffix).
const maxName = 512

// fdStore is the reaper's side: descriptors by name, raw (the reaper never reads them).
type fdStore struct {
	mu  sync.Mutex // guards fds
	fds map[string]int
}

// serve hands every stored descriptor to a worker just started, then applies its operations
// until it closes its end (it died or exited).
func (s *fdStore) serve(c *net.UnixConn) {
	defer c.Close()
	s.mu.Lock()
	var err error
	for name, fd := range s.fds {
		if err = sendOp(c, opPut, name, fd); err != nil {
			break
		}
	}
	s.mu.Unlock()
	if err != nil || sendOp(c, opEnd, "", -1) != nil {
		return
	}
	for {
		op, name, fds, err := recvOp(c)
		if err != nil {
			return
		}
		s.mu.Lock()
		if old, ok := s.fds[name]; ok && (op == opDrop || len(fds) > 0) {
			unix.Close(old)
			delete(s.fds, name)
		}
		if op == opPut && len(fds) > 0 {
			s.fds[name] = fds[0]
			fds = fds[1:]
		}
		s.mu.Unlock()
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
}

// storePair makes the pair for a worker: the reaper's end, served, and the worker's, for
// StoreFD.
func (s *fdStore) storePair() (*os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("supervisor: descriptor store: %w", err)
	}
	mine := os.NewFile(uintptr(fds[0]), "store")
	c, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		unix.Close(fds[1])
		return nil, fmt.Errorf("supervisor: descriptor store: %w", err)
	}
	go s.serve(c.(*net.UnixConn))
	return os.NewFile(uintptr(fds[1]), "store"), nil
}

func sendOp(c *net.UnixConn, op byte, name string, fd int) error {
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	_, _, err := c.WriteMsgUnix(append([]byte{op}, name...), oob, nil)
	return err
}

func recvOp(c *net.UnixConn) (byte, string, []int, error) {
	b := make([]byte, 1+maxName)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := c.ReadMsgUnix(b, oob)
	if err != nil {
		return 0, "", nil, err
	}
	var fds []int
	if oobn > 0 {
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		for _, m := range msgs {
			if got, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, got...)
			}
		}
	}
	if n == 0 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return 0, "", nil, errors.New("supervisor: descriptor store closed")
	}
	return b[0], string(b[1:n]), fds, nil
}

// Store is the worker's side of its reaper's descriptor store.
type Store struct {
	mu sync.Mutex // serialises operations
	c  *net.UnixConn
}

// OpenStore connects to the reaper's store (StoreFD) and returns the descriptors it kept, by
// name: the caller takes those it needs and drops the others.
func OpenStore() (*Store, map[string]*os.File, error) {
	f := os.NewFile(StoreFD, "store")
	if f == nil {
		return nil, nil, errors.New("supervisor: no descriptor store")
	}
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("supervisor: descriptor store: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, nil, errors.New("supervisor: descriptor store is not a unix socket")
	}
	kept := map[string]*os.File{}
	for {
		op, name, fds, err := recvOp(uc)
		if err != nil {
			uc.Close()
			return nil, nil, err
		}
		if op == opEnd {
			return &Store{c: uc}, kept, nil
		}
		for i, fd := range fds {
			if i == 0 && op == opPut {
				kept[name] = os.NewFile(uintptr(fd), name)
			} else {
				unix.Close(fd)
			}
		}
	}
}

// Put stores f under name (the reaper holds its own copy until Drop).
func (s *Store) Put(name string, f *os.File) error {
	if len(name) > maxName {
		return fmt.Errorf("supervisor: store %q: name too long", name)
	}
	rc, err := f.SyscallConn() // not f.Fd(): it would make a pollable descriptor blocking
	if err != nil {
		return fmt.Errorf("supervisor: store %s: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cerr := rc.Control(func(fd uintptr) { err = sendOp(s.c, opPut, name, int(fd)) }); cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("supervisor: store %s: %w", name, err)
	}
	return nil
}

// Drop releases the reaper's copies of the named descriptors.
func (s *Store) Drop(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range names {
		sendOp(s.c, opDrop, name, -1)
	}
}
