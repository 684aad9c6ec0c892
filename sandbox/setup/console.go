package setup

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// setupConsole allocates a pty from the container's private devpts, makes its slave the
// process's controlling terminal and stdio, and sends the master to the runtime (which forwards it
// to the caller's console socket).
func setupConsole(ch *Channel, p *ProcessPlan) error {
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/ptmx: %w", err)
	}
	defer unix.Close(master)
	var unlock int32
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(master), unix.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		return fmt.Errorf("unlockpt: %w", e)
	}
	n, err := unix.IoctlGetUint32(master, unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("ptsname: %w", err)
	}
	name := fmt.Sprintf("/dev/pts/%d", n)
	slave, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	defer unix.Close(slave)
	if err := unix.Fchown(slave, int(p.UID), int(p.GID)); err != nil {
		return fmt.Errorf("chown %s: %w", name, err)
	}
	if p.Rows > 0 || p.Cols > 0 {
		if err := unix.IoctlSetWinsize(slave, unix.TIOCSWINSZ, &unix.Winsize{Row: p.Rows, Col: p.Cols}); err != nil {
			return fmt.Errorf("set window size: %w", err)
		}
	}
	// Init is already a session leader (Setsid at clone); an exec'd process becomes one here.
	unix.Setsid()
	if err := unix.IoctlSetInt(slave, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("TIOCSCTTY: %w", err)
	}
	for fd := 0; fd <= 2; fd++ {
		if err := unix.Dup3(slave, fd, 0); err != nil {
			return fmt.Errorf("dup pty to %d: %w", fd, err)
		}
	}
	return ch.Send(&Message{Kind: KindConsole, Console: name, FDs: []int{master}})
}
