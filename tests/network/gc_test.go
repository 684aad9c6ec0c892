package network

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"bulwark.dev/bulwark/tests/internal/clitest"
)

// TestKilledMidSetupCollected: `bulwark run` SIGKILLed with its children (the container's
// init, as a reboot or a cgroup kill would) while it attaches the container (once the
// attachment record exists, then a little later each time) leaves a dead container whose lease,
// masquerade, port mapping and egress rules `network prune` releases; at the end, with the
// containers removed and the network pruned, nothing is left in the test host: no veth, bridge,
// Bulwark or CNI chain, lease or attachment. (A run killed alone leaves its container created,
// its init alive and attached: ps -a lists it and rm -f releases it.)
func TestKilledMidSetupCollected(t *testing.T) {
	f := newFixture(t)
	h := newTestHost(t)
	h.must(t, f.root, "network", "create", "web")
	atts := filepath.Join(f.root, "networks", "default", "attachments")
	var ids []string
	dead := 0
	t.Cleanup(func() {
		for _, id := range ids {
			h.bulwark(t, f.root, "rm", "-f", id)
		}
	})
	for i := range 4 {
		id := f.leaks.Track(fmt.Sprintf("killed-%d", i))
		ids = append(ids, id)
		port := fmt.Sprint(18090 + i)
		cmd := exec.Command("nsenter", "--net=/run/netns/"+h.name, clitest.Bin, "--root", f.root,
			"run", "--name", id, "--network", "web", "--egress", "network", "-p", port+":80", "busybox:1", "sleep", "100")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 3000; k++ {
			if _, err := os.Stat(filepath.Join(atts, id+".json")); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(i) * 20 * time.Millisecond) // spreads the kill over the attach
		killWithChildren(cmd.Process.Pid)
		cmd.Wait()
		h.must(t, f.root, "network", "prune")
		if r := h.bulwark(t, f.root, "inspect", id); r.Code == 0 && strings.Contains(r.Stdout, `"running"`) {
			continue // killed after the start: a live container keeps what it holds
		}
		dead++
		if _, err := os.Stat(filepath.Join(atts, id+".json")); err == nil {
			t.Errorf("kill %d: the dead container's attachment survived network prune", i)
		}
		for what, cmd := range map[string]string{
			"egress chain":       "iptables-save -t filter | grep -c 'bulwark-egress:default/" + id + " ' || true",
			"masquerade rule":    `iptables-save -t nat | grep -c 'id: \\"` + id + `\\"' || true`,
			"port mapping rules": "iptables-save -t nat | grep -c 'dport " + port + " ' || true",
		} {
			if n := strings.TrimSpace(h.sh(t, cmd)); n != "0" {
				t.Errorf("kill %d: %s %s left for the dead %s", i, n, what, id)
			}
		}
		if leases := leasesOf(t, f.root, id); len(leases) > 0 {
			t.Errorf("kill %d: leases left for the dead %s: %v", i, id, leases)
		}
	}
	if dead == 0 {
		t.Error("every kill came after the start: no dead container was collected")
	}
	for _, id := range ids {
		// The run may have seen its container die and removed it before its own kill.
		if r := h.bulwark(t, f.root, "rm", "-f", id); r.Code != 0 && !strings.Contains(r.Stderr, "no such container") {
			t.Errorf("rm -f %s: exit %d: %s", id, r.Code, r.Stderr)
		}
	}
	h.must(t, f.root, "network", "prune")
	for what, cmd := range map[string]string{
		"veths":          "ip -o link show type veth",
		"bridges":        "ip -o link show type bridge",
		"Bulwark chains": "iptables-save | grep -E 'BULWARK|BWE-' || true",
		"CNI chains":     "iptables-save -t nat | grep CNI- || true",
	} {
		if out := h.sh(t, cmd); strings.TrimSpace(out) != "" && !onlyHostportChains(out) {
			t.Errorf("%s left: %s", what, out)
		}
	}
	if leases := leasesOf(t, f.root, ""); len(leases) > 0 {
		t.Errorf("leases left: %v", leases)
	}
	if left, _ := os.ReadDir(atts); len(left) > 0 {
		t.Errorf("attachments left: %v", left)
	}
}

// leasesOf lists host-local's lease files under the state root naming id ("" for any).
func leasesOf(t *testing.T, root, id string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(root, "networks", "*", "ipam", "*", "*", "10.*"))
	var out []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if id == "" || strings.HasPrefix(string(b), id+"\n") || strings.HasPrefix(string(b), id+"\r") {
			out = append(out, f)
		}
	}
	return out
}

// onlyHostportChains reports whether the nat rules left are portmap's shared chains, empty and
// unjumped-to per container (the plugin keeps them for every network).
func onlyHostportChains(out string) bool {
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.Contains(l, "CNI-HOSTPORT-") {
			return false
		}
	}
	return true
}

// killWithChildren SIGKILLs pid's children, then pid.
func killWithChildren(pid int) {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, task := range tasks {
		b, _ := os.ReadFile(task)
		for _, c := range strings.Fields(string(b)) {
			var child int
			if _, err := fmt.Sscan(c, &child); err == nil {
				syscall.Kill(child, syscall.SIGKILL)
			}
		}
	}
	syscall.Kill(pid, syscall.SIGKILL)
}
