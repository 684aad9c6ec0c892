package setup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// The setup protocol between the runtime (parent) and the container-side process (child: init for
// Create, the joining process for Exec) is ONE channel — a unix stream socketpair — carrying a closed
// set of typed messages. Each message is a 4-byte big-endian length and a binary body (wire.go;
// a config carries its seccomp programs raw); file descriptors travel as SCM_RIGHTS on the message
// they belong to.
//
//	parent (runtime)                                  child (init / exec)
//	  user namespace made and mapped; child born in
//	  its cgroup, whose nsenter constructor joins it,
//	  creates the mnt/pid/ipc/uts/net namespaces and
//	  forks init; exec: the constructor joins the
//	  container's namespaces instead;
//	  idmapped rootfs mount made for the child's userns
//	  ── config {spec-derived plan} + fds ──────────▶  unshare(cgroup ns); mounts; pivot_root;
//	                                                   hostname; rlimits; user; caps; no_new_privs;
//	                                                   Landlock; seccomp (last)
//	  ◀──────────────────── console + pty master fd ─  only when process.terminal
//	  ◀────────────────────────────── ready | error ─  ready = {step times}; error = {layer, step, errno, path, message}
//	  persist state "created"; close the channel       init: block on the exec fifo, then execve
//	                                                   exec: execve at once
//
// An "error" may replace any child message; nothing follows it. Any other order is a protocol
// violation and aborts the setup (enforced by sequence, unit-tested in protocol_test.go).

// Descriptors the runtime hands a re-executed child through exec.Cmd.ExtraFiles, by fixed number.
// Everything else (rootfs mount, exec fifo, bind sources, pty master) travels as SCM_RIGHTS on the
// setup channel, named by index in the config message.
const (
	FDChannel = 3 // the child's end of the setup channel
	FDSelf    = 4 // the read-only setup binary the child was executed from (CVE-2019-5736; sandbox/selfexe.go)
	FDNsenter = 5 // Exec and Create: nsenter reports the joined or forked process's pid here (sandbox/internal/nsenter)
	FDUserns  = 6 // Create: the user namespace init starts in, its pod sandbox's or its own (sandbox/internal/nsenter)
)

// Kind is a message's type.
type Kind string

const (
	KindConfig  Kind = "config"
	KindConsole Kind = "console"
	KindReady   Kind = "ready"
	KindError   Kind = "error"
)

// Message is the only thing that crosses the channel.
type Message struct {
	Kind    Kind
	Config  *Config
	Console string // pty slave name, with KindConsole
	Error   *InitError
	// Steps and Started come with KindReady: the child's step times and when (Unix ns) its
	// setup began, for Options.Steps.
	Steps   []StepTime
	Started int64
	FDs     []int `wire:"-"` // SCM_RIGHTS payload, not serialised
}

// protocolOrder lists, for the last message seen, which kinds may come next.
var protocolOrder = map[Kind][]Kind{
	"":          {KindConfig, KindError},
	KindConfig:  {KindConsole, KindReady, KindError},
	KindConsole: {KindReady, KindError},
}

// sequence tracks one side's view of the conversation and refuses out-of-order messages.
type sequence struct{ last Kind }

func (s *sequence) next(k Kind) error {
	for _, ok := range protocolOrder[s.last] {
		if ok == k {
			s.last = k
			return nil
		}
	}
	return fmt.Errorf("setup protocol violation: %q after %q", k, s.last)
}

// maxMessage bounds a frame so a confused peer cannot make the other side allocate without limit.
const maxMessage = 16 << 20

// MaxFDs bounds the descriptors one message may carry.
const MaxFDs = 64

// Channel is one side of the setup channel.
type Channel struct {
	f   *os.File
	seq sequence
}

// NewChannel speaks the protocol over the socket f.
func NewChannel(f *os.File) *Channel { return &Channel{f: f} }

// Close closes the channel's socket.
func (c *Channel) Close() error { return c.f.Close() }

// Send sends m, with its descriptors, in protocol order.
func (c *Channel) Send(m *Message) error {
	if err := c.seq.next(m.Kind); err != nil {
		return err
	}
	body := encodeMessage(m)
	if len(body) > maxMessage {
		return fmt.Errorf("encode %s message: %d bytes exceed %d", m.Kind, len(body), maxMessage)
	}
	frame := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(body)), uint32(len(body)))
	frame = append(frame, body...)
	var oob []byte
	if len(m.FDs) > 0 {
		oob = unix.UnixRights(m.FDs...)
	}
	// Fd puts the socket in blocking mode: setup is strictly sequential, so blocking calls are right.
	fd := int(c.f.Fd())
	n, err := unix.SendmsgN(fd, frame, oob, nil, 0)
	for errors.Is(err, unix.EINTR) {
		n, err = unix.SendmsgN(fd, frame, oob, nil, 0)
	}
	for err == nil && n < len(frame) {
		// The rest of a large frame goes as plain stream data; the fds rode on the first part.
		var w int
		w, err = unix.Write(fd, frame[n:])
		if errors.Is(err, unix.EINTR) {
			w, err = 0, nil
		}
		n += w
	}
	if err != nil {
		return fmt.Errorf("send %s message: %w", m.Kind, err)
	}
	return nil
}

// Recv reads one message; received fds are close-on-exec.
func (c *Channel) Recv() (*Message, error) {
	hdr := make([]byte, 4)
	oob := make([]byte, unix.CmsgSpace(MaxFDs*4))
	n, oobn, err := recvmsgRetry(int(c.f.Fd()), hdr, oob)
	if err != nil {
		return nil, fmt.Errorf("receive message: %w", err)
	}
	fds, err := parseRights(oob[:oobn])
	if err != nil {
		return nil, err
	}
	if n == 0 {
		CloseAll(fds)
		return nil, fmt.Errorf("receive message: %w", io.EOF)
	}
	if n < 4 {
		if _, err := io.ReadFull(c.f, hdr[n:]); err != nil {
			CloseAll(fds)
			return nil, fmt.Errorf("receive message header: %w", err)
		}
	}
	size := binary.BigEndian.Uint32(hdr)
	if size > maxMessage {
		CloseAll(fds)
		return nil, fmt.Errorf("receive message: frame of %d bytes exceeds %d", size, maxMessage)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(c.f, body); err != nil {
		CloseAll(fds)
		return nil, fmt.Errorf("receive message body: %w", err)
	}
	m, err := decodeMessage(body)
	if err != nil {
		CloseAll(fds)
		return nil, err
	}
	m.FDs = fds
	if err := c.seq.next(m.Kind); err != nil {
		CloseAll(fds)
		return nil, err
	}
	return m, nil
}

func parseRights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	cmsgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("parse control message: %w", err)
	}
	var fds []int
	for _, cm := range cmsgs {
		got, err := unix.ParseUnixRights(&cm)
		if err != nil {
			CloseAll(fds)
			return nil, fmt.Errorf("parse SCM_RIGHTS: %w", err)
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

// CloseAll closes descriptors (a message's, donated ones).
func CloseAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// SocketPair returns the parent's and the child's ends of a fresh channel socket.
func SocketPair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "bulwark-parent"), os.NewFile(uintptr(fds[1]), "bulwark-child"), nil
}

// recvmsgRetry is Recvmsg on the blocking setup socket, retried when a signal interrupts it (the
// Go runtime's preemption and SIGCHLD arrive during setup; exec saw "interrupted system call").
func recvmsgRetry(fd int, p, oob []byte) (n, oobn int, err error) {
	for {
		n, oobn, _, _, err = unix.Recvmsg(fd, p, oob, unix.MSG_CMSG_CLOEXEC)
		if !errors.Is(err, unix.EINTR) {
			return n, oobn, err
		}
	}
}
