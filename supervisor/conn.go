package supervisor

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/flock"
)

// startTimeout bounds how long Dial waits for a reaper it started to have a worker listening
// (the worker adopts the state root's containers before it listens).
const startTimeout = 60 * time.Second

// Dial connects to the supervisor of dir, starting one (argv: the command that runs RunReaper
// through the binary's hidden entry point) when none listens. Two clients starting one at once
// start one: the second finds the first's. A supervisor found leaving (its worker idle, no
// longer listening, its reaper about to return) is waited for, and another started once it has
// gone: a client never waits on one that will not listen again.
func Dial(dir string, argv []string) (*net.UnixConn, error) {
	if c, err := dial(dir); err == nil {
		return c, nil
	}
	if len(argv) == 0 {
		return nil, errors.New("supervisor: none runs and no command to start one")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	unlock, _, err := lock(filepath.Join(dir, "start.lock"), unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if c, err := dial(dir); err == nil {
		return c, nil
	}
	// spawned is closed once the reaper this client started has exited (nil: none started).
	var spawned <-chan struct{}
	deadline := time.Now().Add(startTimeout)
	for {
		c, err := dial(dir)
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("supervisor of %s did not start listening (see %s): %w", dir, filepath.Join(dir, "supervisor.log"), err)
		}
		switch {
		case spawned == nil && !Running(dir):
			// None runs, or the one found leaving has gone. One is started once: if it exits
			// without listening, starting it again would fail again.
			if spawned, err = spawn(dir, argv); err != nil {
				return nil, err
			}
		case spawned != nil && closed(spawned):
			return nil, fmt.Errorf("supervisor of %s exited without listening (see %s): %w", dir, filepath.Join(dir, "supervisor.log"), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Ensure makes sure dir has a supervisor, which adopts the state root's containers: when none
// runs it starts one (argv as Dial's) and waits until its worker listens. Two kinds of worker are
// not taken for a supervisor, as a Dial after Running took them: one still listening whose reaper
// died (it leaves its containers to the next supervisor within a tick: connecting to it started
// none), and one leaving idle (its reaper holds the lock, its socket's name is gone: Running
// returned at once); the containers stayed unsupervised until a later command looked again. The
// look and the start are one step under the start lock, as Dial's are.
func Ensure(dir string, argv []string) error {
	if Running(dir) && socketIno(dir) != 0 {
		return nil
	}
	if len(argv) == 0 {
		return errors.New("supervisor: none runs and no command to start one")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	unlock, _, err := lock(filepath.Join(dir, "start.lock"), unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	// spawned is closed once the reaper started here has exited (nil: none started); its worker
	// listens on a socket of its own (Listen replaces the name), not on leaving's.
	var spawned <-chan struct{}
	var leaving uint64
	deadline := time.Now().Add(startTimeout)
	for {
		running, ino := Running(dir), socketIno(dir)
		switch {
		case spawned == nil && running && ino != 0:
			return nil // one runs: another client started it meanwhile, or it listens again
		case spawned == nil && !running:
			// None runs, or the one found leaving has gone, or its worker still listens without it.
			leaving = ino
			if spawned, err = spawn(dir, argv); err != nil {
				return err
			}
			continue
		case spawned != nil && ino != 0 && ino != leaving:
			if c, err := dial(dir); err == nil {
				c.Close()
				return nil
			}
		case spawned != nil && closed(spawned) && !running:
			return fmt.Errorf("supervisor of %s exited without listening (see %s)", dir, filepath.Join(dir, "supervisor.log"))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("supervisor of %s did not start listening (see %s)", dir, filepath.Join(dir, "supervisor.log"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// socketIno is the inode of dir's socket (0: none).
func socketIno(dir string) uint64 {
	var st unix.Stat_t
	if unix.Stat(filepath.Join(dir, "sock"), &st) != nil {
		return 0
	}
	return st.Ino
}

// closed reports whether done is closed.
func closed(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// Running reports whether a reaper holds dir's lock. It takes the lock for an instant to look,
// which a reaper starting then outlasts (lockReaper).
func Running(dir string) bool {
	unlock, ok, err := TryLock(filepath.Join(dir, "reaper.lock"))
	if err != nil {
		return false
	}
	if ok {
		unlock()
	}
	return !ok
}

// spawn starts a reaper in its own session, so that it outlives its client and its terminal;
// the channel is closed if it exits while this client runs.
func spawn(dir string, argv []string) (<-chan struct{}, error) {
	logf, err := os.OpenFile(filepath.Join(dir, "supervisor.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), EnvMode+"="+ModeReaper, EnvDir+"="+dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("supervisor: start: %w", err)
	}
	// The reaper daemonises by outliving us (its parent becomes our nearest subreaper or init,
	// which collects it); while we run, we collect it.
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	return done, nil
}

func dial(dir string) (*net.UnixConn, error) {
	p, done, err := SocketAddr(dir, "sock")
	if err != nil {
		return nil, err
	}
	defer done()
	return net.DialUnix("unix", nil, &net.UnixAddr{Name: p, Net: "unix"})
}

// Listen is the worker's socket (a stale one, left by a worker that died, is replaced: the
// caller is the state root's only worker, its reaper holding the lock).
func Listen(dir string) (*net.UnixListener, error) {
	p, done, err := SocketAddr(dir, "sock")
	if err != nil {
		return nil, err
	}
	defer done()
	os.Remove(p)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("supervisor: listen: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	return ln, nil
}

// Unlisten removes the worker's socket from dir, so that no client connects to it any more
// (Dial then starts the next supervisor once this one has gone); its listener still takes the
// connections made before.
func Unlisten(dir string) error {
	p, done, err := SocketAddr(dir, "sock")
	if err != nil {
		return err
	}
	defer done()
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("supervisor: remove the socket: %w", err)
	}
	return nil
}

// SocketAddr reaches a socket in dir through a descriptor of dir, so the path stays within the
// 108 bytes of a unix socket address however deep the state root; done releases it.
func SocketAddr(dir, name string) (string, func(), error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("open %s: %w", dir, err)
	}
	return "/proc/self/fd/" + strconv.Itoa(fd) + "/" + name, func() { unix.Close(fd) }, nil
}

// TryLock takes an exclusive flock on p without waiting; ok is false when another holds it.
func TryLock(p string) (unlock func(), ok bool, err error) {
	return lock(p, unix.LOCK_EX|unix.LOCK_NB)
}

func lock(p string, how int) (func(), bool, error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("supervisor: open lock %s: %w", p, err)
	}
	if err := flock.Lock(int(f.Fd()), how); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("supervisor: lock %s: %w", p, err)
	}
	return func() { f.Close() }, true, nil
}

// maxMessage bounds a message's body (a client cannot make the worker allocate more).
const maxMessage = 64 << 20

// Send writes one message: a 4-byte length carrying the descriptors, then v as JSON.
func Send(c *net.UnixConn, v any, files ...*os.File) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("supervisor: encode: %w", err)
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := c.WriteMsgUnix(hdr[:], oob, nil); err != nil {
		return fmt.Errorf("supervisor: send: %w", err)
	}
	if _, err := c.Write(b); err != nil {
		return fmt.Errorf("supervisor: send: %w", err)
	}
	return nil
}

// Recv reads one message into v and returns the descriptors it carried.
func Recv(c *net.UnixConn, v any) ([]*os.File, error) {
	var hdr [4]byte
	oob := make([]byte, unix.CmsgSpace(253*4))
	n, oobn, _, _, err := c.ReadMsgUnix(hdr[:], oob)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, io.EOF
	}
	var files []*os.File
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, fmt.Errorf("supervisor: control message: %w", err)
		}
		for _, m := range msgs {
			fds, err := unix.ParseUnixRights(&m)
			if err != nil {
				continue
			}
			for _, fd := range fds {
				files = append(files, os.NewFile(uintptr(fd), "received"))
			}
		}
	}
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	if n < len(hdr) {
		if _, err := io.ReadFull(c, hdr[n:]); err != nil {
			closeAll()
			return nil, err
		}
	}
	size := binary.BigEndian.Uint32(hdr[:])
	if size > maxMessage {
		closeAll()
		return nil, fmt.Errorf("supervisor: message of %d bytes", size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(c, b); err != nil {
		closeAll()
		return nil, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		closeAll()
		return nil, fmt.Errorf("supervisor: decode: %w", err)
	}
	return files, nil
}
