package idmap

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

const testBase = 3 << 20 // host id container root maps to in the test's user namespace

// userns starts a sleeping process in a new user namespace mapping 0..65535 to testBase.. and
// returns an fd for that namespace.
func userns(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: testBase, Size: int(RangeSize)}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: testBase, Size: int(RangeSize)}},
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start process in a new user namespace: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// inPrivateMountNS runs fn on a thread of its own in a new, private mount namespace. The thread is
// never unlocked, so Go discards it (and the namespace with every mount fn made) when fn returns.
func inPrivateMountNS(t *testing.T, fn func() error) {
	t.Helper()
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			done <- fmt.Errorf("unshare mount namespace: %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			done <- fmt.Errorf("make / private: %w", err)
			return
		}
		done <- fn()
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func statOwner(p string) (uint32, uint32, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return 0, 0, err
	}
	return st.Uid, st.Gid, nil
}

func TestIDMappedMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("idmapped mounts need CAP_SYS_ADMIN")
	}
	nsfd := userns(t)
	for _, fs := range []string{"tmpfs", "tempdir"} {
		t.Run(fs, func(t *testing.T) {
			src, dst := filepath.Join(t.TempDir(), "src"), filepath.Join(t.TempDir(), "dst")
			for _, d := range []string{src, dst} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			inPrivateMountNS(t, func() error {
				if fs == "tmpfs" {
					if err := unix.Mount("tmpfs", src, "tmpfs", 0, "size=1m"); err != nil {
						return fmt.Errorf("mount tmpfs: %w", err)
					}
				}
				// On disk: one file of host root, one of host 1000:1000.
				for name, id := range map[string]int{"root-file": 0, "user-file": 1000} {
					p := filepath.Join(src, name)
					if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
						return err
					}
					if err := os.Lchown(p, id, id); err != nil {
						return err
					}
				}
				fd, err := IDMappedMount(src, nsfd)
				if err != nil {
					return err
				}
				defer unix.Close(fd)
				if err := unix.MoveMount(fd, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
					return fmt.Errorf("move_mount: %w", err)
				}
				for name, want := range map[string]uint32{"root-file": testBase, "user-file": testBase + 1000} {
					uid, gid, err := statOwner(filepath.Join(dst, name))
					if err != nil {
						return err
					}
					if uid != want || gid != want {
						return fmt.Errorf("%s through the idmapped mount: %d:%d, want %d:%d", name, uid, gid, want, want)
					}
					if uid, _, _ := statOwner(filepath.Join(src, name)); uid == want {
						return fmt.Errorf("%s: the source changed ownership too", name)
					}
				}
				return nil
			})
		})
	}
}

func TestIDMappedMountRefusesSymlinkAndBadNS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("idmapped mounts need CAP_SYS_ADMIN")
	}
	dir := t.TempDir()
	link := filepath.Join(dir, "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	nsfd := userns(t)
	if fd, err := IDMappedMount(link, nsfd); err == nil {
		unix.Close(fd)
		t.Error("IDMappedMount followed a symlinked source")
	}
	// The initial user namespace cannot be an idmapping (it would be the identity).
	self, err := unix.Open("/proc/self/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(self)
	if fd, err := IDMappedMount(dir, self); err == nil {
		unix.Close(fd)
		t.Error("IDMappedMount accepted the initial user namespace")
	} else if !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EINVAL) {
		t.Logf("initial userns refused with %v", err)
	}
}
