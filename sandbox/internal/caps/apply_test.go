package caps

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The Apply tests run in a re-executed copy of the test binary: Apply changes the credentials of
// the calling thread for good, which must not happen to the test runner itself.
const childEnv = "BULWARK_CAPS_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		child(mode)
		return
	}
	os.Exit(m.Run())
}

// child applies a set ("apply:<hex>" or "user:<uid>:<hex>"), prints its thread's status, then
// execs cat on /proc/self/status so the parent also sees the sets the kernel computed at execve.
func child(mode string) {
	f := strings.Split(mode, ":")
	s, _ := strconv.ParseUint(f[len(f)-1], 16, 64)
	var err error
	switch f[0] {
	case "apply":
		err = Apply(Set(s))
	case "user":
		uid, _ := strconv.Atoi(f[1])
		err = SwitchUser(uid, uid, []int{uid}, Set(s))
	}
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	os.Stdout.Write(b)
	// What a workload holding KILL could try: copy it into the inheritable set (allowed for
	// permitted capabilities) and then raise it ambient. The securebits lock must refuse the latter.
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	_ = unix.Capget(&hdr, &data[0])
	data[0].Inheritable = data[0].Permitted & (1 << KILL)
	_ = unix.Capset(&hdr, &data[0])
	raise := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(KILL), 0, 0)
	data[0].Inheritable = 0
	_ = unix.Capset(&hdr, &data[0])
	bits, _ := unix.PrctlRetInt(unix.PR_GET_SECUREBITS, 0, 0, 0, 0)
	fmt.Printf("AmbientRaise:\t%v\nSecurebits:\t%x\n", raise, bits)
	fmt.Println("--exec--")
	err = syscall.Exec("/bin/cat", []string{"cat", "/proc/self/status"}, nil)
	fmt.Println("ERROR exec", err)
	os.Exit(2)
}

type status map[string]string

func parseStatus(t *testing.T, text string) status {
	st := status{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			st[k] = strings.TrimSpace(v)
		}
	}
	return st
}

func (st status) set(t *testing.T, key string) Set {
	t.Helper()
	v, err := strconv.ParseUint(st[key], 16, 64)
	if err != nil {
		t.Fatalf("status %s = %q: %v", key, st[key], err)
	}
	return Set(v)
}

func runChild(t *testing.T, mode string) (before, after status) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("applying capability sets needs root")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child %s: %v\n%s", mode, err, out)
	}
	pre, post, ok := strings.Cut(string(out), "--exec--\n")
	if !ok {
		t.Fatalf("child output without exec marker:\n%s", out)
	}
	return parseStatus(t, pre), parseStatus(t, post)
}

// hostBounding is what this machine lets us keep at all (this VM lacks SYS_RESOURCE, say).
func hostBounding(t *testing.T) Set {
	st, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	return st.Bounding
}

func TestApplyRoot(t *testing.T) {
	for _, s := range []Set{0, Of(KILL, NET_BIND_SERVICE), Grantable, Of(CHOWN, SETPCAP)} {
		t.Run(s.String(), func(t *testing.T) {
			s &= hostBounding(t)
			before, after := runChild(t, fmt.Sprintf("apply:%x", uint64(s)))
			if before["AmbientRaise"] != "operation not permitted" {
				t.Errorf("raising an ambient capability: %q, want EPERM", before["AmbientRaise"])
			}
			if sb := before.set(t, "Securebits"); sb&(secbitNoAmbientRaise|secbitNoAmbientRaiseLocked) != secbitNoAmbientRaise|secbitNoAmbientRaiseLocked {
				t.Errorf("securebits %v lack the ambient lock", sb)
			}
			for _, st := range []status{before, after} {
				if st.set(t, "CapInh") != 0 || st.set(t, "CapAmb") != 0 {
					t.Errorf("inheritable/ambient not empty: %s / %s", st["CapInh"], st["CapAmb"])
				}
				for _, k := range []string{"CapPrm", "CapEff", "CapBnd"} {
					if got := st.set(t, k); got != s {
						t.Errorf("%s = %v, want %v", k, got, s)
					}
				}
			}
		})
	}
}

func TestSwitchUser(t *testing.T) {
	s := Of(KILL, CHOWN) & hostBounding(t)
	before, after := runChild(t, fmt.Sprintf("user:1000:%x", uint64(s)))
	if before["Uid"] != "1000\t1000\t1000\t1000" || before["Gid"] != "1000\t1000\t1000\t1000" {
		t.Fatalf("ids after SwitchUser: Uid %q Gid %q", before["Uid"], before["Gid"])
	}
	if before["Groups"] != "1000" {
		t.Errorf("Groups = %q, want 1000", before["Groups"])
	}
	for _, k := range []string{"CapPrm", "CapEff", "CapBnd"} {
		if got := before.set(t, k); got != s {
			t.Errorf("before exec %s = %v, want %v", k, got, s)
		}
	}
	// A non-root user keeps only the bounding set across execve: ambient is always empty.
	if p, e, b := after.set(t, "CapPrm"), after.set(t, "CapEff"), after.set(t, "CapBnd"); p != 0 || e != 0 || b != s {
		t.Errorf("after exec Prm %v Eff %v Bnd %v; want empty, empty, %v", p, e, b, s)
	}
	if after.set(t, "CapInh") != 0 || after.set(t, "CapAmb") != 0 {
		t.Errorf("inheritable/ambient not empty after exec")
	}
}

func TestApplyRefusesUnheldCapability(t *testing.T) {
	// Asking for a capability the thread does not hold must fail, not silently yield less.
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	missing := ^hostBounding(t) & Of(SYS_RESOURCE, CHECKPOINT_RESTORE, BPF)
	if missing == 0 {
		t.Skip("the host bounding set holds every probe capability")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=apply:%x", childEnv, uint64(missing|Of(KILL))))
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "ERROR") {
		t.Fatalf("Apply of unheld %v succeeded:\n%s", missing, out)
	}
}

// TestKernelLast: the bounding set's answer is the kernel's cap_last_cap.
func TestKernelLast(t *testing.T) {
	probed, err := KernelLast()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		t.Skipf("no cap_last_cap: %v", err)
	}
	if want := strings.TrimSpace(string(b)); strconv.Itoa(int(probed)) != want {
		t.Fatalf("probed last capability %d, cap_last_cap says %s", probed, want)
	}
	if probed < Last {
		t.Logf("kernel knows capabilities up to %v only", probed)
	}
}
