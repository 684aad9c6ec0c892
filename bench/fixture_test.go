package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bulwark.dev/bulwark/sandbox"
)

// hostNS are the namespace inodes of the fake host (/proc/self/ns).
var hostNS = map[string]int{"user": 1, "mnt": 2, "pid": 3, "net": 4, "ipc": 5, "uts": 6, "cgroup": 7, "time": 8}

// fakeHost writes a fake /proc/self and /sys with v1 memory and pids hierarchies.
func fakeHost(t *testing.T) (proc, sys string) {
	t.Helper()
	dir := t.TempDir()
	proc, sys = filepath.Join(dir, "proc"), filepath.Join(dir, "sys")
	writeNS(t, filepath.Join(proc, "self"), hostNS)
	write(t, filepath.Join(proc, "self", "mountinfo"), `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:26 / /sys/fs/cgroup/memory rw,nosuid shared:9 - cgroup cgroup rw,memory
31 22 0:27 / /sys/fs/cgroup/pids rw,nosuid shared:10 - cgroup cgroup rw,pids
32 22 0:28 / /sys/fs/cgroup/unified rw,nosuid shared:11 - cgroup2 cgroup2 rw
`)
	return proc, sys
}

func writeNS(t *testing.T, dir string, ns map[string]int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "ns"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, ino := range ns {
		if err := os.Symlink(fmt.Sprintf("%s:[%d]", name, ino), filepath.Join(dir, "ns", name)); err != nil {
			t.Fatal(err)
		}
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakeCtr describes a container process for the fake /proc.
type fakeCtr struct {
	pid            int
	capEff, capBnd string
	nnp, seccomp   int
	uidMap         string
	sharedNS       []string // namespaces shared with the host
	rootOpts       string
	memLimit       string
	pidsMax        string
	nofileHard     string
	extraMounts    string
	unmask         string // a masked path left visible (present in the container's root)
	maskedDirFull  bool   // the read-only directory over masked directories is not empty
}

// bulwarkLike is what the kernel shows of a Bulwark container.
func bulwarkLike(pid int) fakeCtr {
	return fakeCtr{pid: pid, capEff: "00000000000004fb", capBnd: "00000000000004fb", nnp: 1, seccomp: 2,
		uidMap: "         0    1048576      65536\n", rootOpts: "ro,nosuid,nodev,relatime",
		memLimit: "536870912", pidsMax: "1024", nofileHard: "20000"}
}

// write lays the container out under proc and sys.
func (c fakeCtr) write(t *testing.T, proc, sys string) {
	t.Helper()
	dir := filepath.Join(proc, fmt.Sprint(c.pid))
	ns := map[string]int{}
	for n, ino := range hostNS {
		ns[n] = ino + 1000*c.pid
	}
	for _, n := range c.sharedNS {
		ns[n] = hostNS[n]
	}
	writeNS(t, dir, ns)
	write(t, filepath.Join(dir, "status"), fmt.Sprintf("Name:\tsleep\nUid:\t0\t0\t0\t0\nCapInh:\t0000000000000000\nCapPrm:\t%s\nCapEff:\t%s\nCapBnd:\t%s\nCapAmb:\t0000000000000000\nNoNewPrivs:\t%d\nSeccomp:\t%d\nSeccomp_filters:\t%d\n",
		c.capEff, c.capEff, c.capBnd, c.nnp, c.seccomp, map[bool]int{true: 1}[c.seccomp == 2]))
	write(t, filepath.Join(dir, "uid_map"), c.uidMap)
	write(t, filepath.Join(dir, "gid_map"), c.uidMap)
	write(t, filepath.Join(dir, "stat"), fmt.Sprintf("%d (sleep) S 1 1 1 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 4242 1000 100 0\n", c.pid))
	cg := fmt.Sprintf("/bulwark/c%d", c.pid)
	write(t, filepath.Join(dir, "cgroup"), fmt.Sprintf("4:memory:%s\n8:pids:%s\n0::%s\n", cg, cg, cg))
	var mi strings.Builder
	fmt.Fprintf(&mi, "76 47 0:42 / / %s - overlay none rw\n70 76 0:45 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n82 76 0:47 / /sys ro,nosuid - sysfs sysfs ro\n", c.rootOpts)
	id := 100
	for _, p := range sandbox.FloorExpected().MaskedPaths {
		if p == c.unmask {
			write(t, filepath.Join(dir, "root", p), "")
			continue
		}
		if maskedDirs[p] {
			// The runtime's shared empty directory, read-only (see sandbox/shareddirs.go).
			if err := os.MkdirAll(filepath.Join(dir, "root", p), 0o755); err != nil {
				t.Fatal(err)
			}
			if c.maskedDirFull {
				write(t, filepath.Join(dir, "root", p, "leak"), "")
			}
			fmt.Fprintf(&mi, "%d 70 0:27 /bulwark-runc/shared/empty %s ro,nosuid,nodev,noexec,relatime,idmapped - tmpfs tmpfs rw\n", id, p)
		} else {
			fmt.Fprintf(&mi, "%d 70 0:6 /null %s rw,nosuid - devtmpfs devtmpfs rw\n", id, p)
		}
		id++
	}
	for _, p := range sandbox.FloorExpected().ReadonlyPaths {
		fmt.Fprintf(&mi, "%d 70 0:45 %s %s ro,nosuid,nodev,noexec - proc proc rw\n", id, strings.TrimPrefix(p, "/proc"), p)
		id++
	}
	mi.WriteString(c.extraMounts)
	write(t, filepath.Join(dir, "mountinfo"), mi.String())
	write(t, filepath.Join(dir, "limits"), fmt.Sprintf("Limit                     Soft Limit           Hard Limit           Units     \n"+
		"Max core file size        0                    0                    bytes     \n"+
		"Max processes             4096                 4096                 processes \n"+
		"Max open files            1024                 %s                processes \n", c.nofileHard))
	write(t, filepath.Join(sys, "fs/cgroup/memory", cg, "memory.limit_in_bytes"), c.memLimit+"\n")
	write(t, filepath.Join(sys, "fs/cgroup/pids", cg, "pids.max"), c.pidsMax+"\n")
}

// maskedDirs are the masked paths the fixture covers as directories.
var maskedDirs = map[string]bool{"/proc/acpi": true, "/sys/firmware": true}

// testEnv is an Env over the fake trees with the given containers.
func testEnv(t *testing.T, ctrs ...fakeCtr) *Env {
	t.Helper()
	proc, sys := fakeHost(t)
	e := &Env{Proc: proc, Sys: sys, Etc: t.TempDir(), Root: t.TempDir(), Euid: 0, Floor: sandbox.FloorExpected(),
		LandlockABI: func() int { return 7 }, Targets: []string{TargetBulwark}}
	for _, c := range ctrs {
		c.write(t, proc, sys)
		e.Containers = append(e.Containers, Container{Name: fmt.Sprintf("bulwark:c%d", c.pid), Pid: c.pid})
	}
	return e
}
