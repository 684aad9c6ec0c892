package procfs

import (
	"os"
	"path/filepath"
	"testing"
)

func fixture(t *testing.T, files map[string]string) string {
	t.Helper()
	proc := t.TempDir()
	for name, content := range files {
		p := filepath.Join(proc, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return proc
}

func TestReadStatus(t *testing.T) {
	proc := fixture(t, map[string]string{"7/status": "Name:\tsleep\nUid:\t1048576\t1048576\t1048576\t1048576\nCapEff:\t00000000000004fb\nCapBnd:\t000001ffffffffff\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t3\n"})
	s, err := ReadStatus(proc, 7)
	if err != nil {
		t.Fatal(err)
	}
	if s.CapEff != 0x4fb || s.CapBnd != 0x1ffffffffff || s.NoNewPrivs != 1 || s.Seccomp != 2 || s.SeccompFilters != 3 || s.UID[0] != 1048576 {
		t.Fatalf("%+v", s)
	}
	// A status without the fields a control needs is an error, never zero values.
	proc = fixture(t, map[string]string{"7/status": "Name:\tsleep\nCapEff:\t0\n"})
	if _, err := ReadStatus(proc, 7); err == nil {
		t.Fatal("a truncated status parsed")
	}
}

func TestIDMap(t *testing.T) {
	proc := fixture(t, map[string]string{"7/uid_map": "         0    1048576      65536\n", "8/uid_map": "0 0 4294967295\n"})
	m, err := ReadIDMap(proc, 7, "uid_map")
	if err != nil {
		t.Fatal(err)
	}
	if out, ok := Outside(m, 0); !ok || out != 1048576 {
		t.Fatalf("0 → %d %v", out, ok)
	}
	if _, ok := Outside(m, 65536); ok {
		t.Fatal("65536 mapped")
	}
	m, err = ReadIDMap(proc, 8, "uid_map")
	if err != nil || m[0].Length != 4294967295 {
		t.Fatalf("%v %v", m, err)
	}
}

func TestNSInode(t *testing.T) {
	proc := t.TempDir()
	if err := os.MkdirAll(filepath.Join(proc, "self", "ns"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("user:[4026531837]", filepath.Join(proc, "self", "ns", "user")); err != nil {
		t.Fatal(err)
	}
	n, err := NSInode(proc, 0, "user")
	if err != nil || n != 4026531837 {
		t.Fatalf("%d %v", n, err)
	}
	if _, err := NSInode(proc, 0, "net"); err == nil {
		t.Fatal("missing link read")
	}
}

func TestParseMountinfo(t *testing.T) {
	ms, err := ParseMountinfo([]byte("76 47 0:42 / / ro,nosuid,nodev,relatime - overlay none rw,lowerdir+=/\n" +
		"104 70 0:6 /null /proc/interrupts rw,nosuid,noexec,relatime - devtmpfs devtmpfs rw,size=12334792k\n" +
		"30 22 0:26 / /mnt/with\\040space rw shared:9 master:2 - tmpfs tmpfs rw\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !ms[0].Has("ro") || ms[0].FSType != "overlay" || ms[1].Root != "/null" || ms[2].Point != "/mnt/with space" ||
		len(ms[2].Optional) != 2 || ms[2].Optional[0] != "shared:9" {
		t.Fatalf("%+v", ms)
	}
	if _, err := ParseMountinfo([]byte("1 2 3\n")); err == nil {
		t.Fatal("malformed line parsed")
	}
}

func TestCgroupsLimitsStartTime(t *testing.T) {
	proc := fixture(t, map[string]string{
		"7/cgroup": "4:memory:/bulwark/c1\n9:name=systemd:/bulwark/c1\n0::/bulwark/c1\n",
		"7/limits": "Limit                     Soft Limit           Hard Limit           Units     \n" +
			"Max open files            1024                 20000                files     \n" +
			"Max core file size        0                    unlimited            bytes     \n",
		"7/stat": "7 (a (b) c) S 1 1 1 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 913869 1000 100 0\n",
	})
	cgs, err := ReadCgroups(proc, 7)
	if err != nil || len(cgs) != 3 || cgs[0].Controllers[0] != "memory" || cgs[2].Controllers != nil || cgs[2].Path != "/bulwark/c1" {
		t.Fatalf("%+v %v", cgs, err)
	}
	l, err := ReadLimits(proc, 7)
	if err != nil || l["RLIMIT_NOFILE"].Hard != 20000 || l["RLIMIT_CORE"].Hard != -1 {
		t.Fatalf("%+v %v", l, err)
	}
	st, err := StartTime(proc, 7)
	if err != nil || st != 913869 {
		t.Fatalf("%d %v", st, err)
	}
}
