package engine

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"bulwark.dev/bulwark/tests/internal/clitest"
)

// quotaPolicy writes tenant data with size limits for the default tenant.
func quotaPolicy(t *testing.T, limits string) string {
	t.Helper()
	dir := t.TempDir()
	data := `{"bulwark": {"tenants": {"default": {"max_memory": 1073741824, "max_pids": 1024, ` + limits + `}}}}`
	if err := os.WriteFile(filepath.Join(dir, "data.json"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestVolumeQuota (issue 12, seed 8.4.4): volume create --opt size=10m makes a volume the kernel
// limits: writing 20 MiB into it fails with ENOSPC inside the container, df there shows its
// size, and on the host its image takes no more than it reserved at creation. Policy data sets
// the tenant's maximum per volume and in total, refused with the reason; a volume -v creates
// gets the tenant's default size; an unknown --opt is refused; rm leaves no mount and no loop
// device.
func TestVolumeQuota(t *testing.T) {
	f := newFixture(t)
	pol := quotaPolicy(t, `"max_volume_size": 16777216, "max_volumes_size": 27262976`)
	create := func(args ...string) clitest.Result {
		return clitest.Run(t, f.root, append([]string{"volume", "create", "--policy-dir", pol}, args...)...)
	}
	if r := create("--opt", "size=10m", "q"); r.Code != 0 || r.Stdout != "q\n" {
		t.Fatalf("create: exit %d, %q, %s", r.Code, r.Stdout, r.Stderr)
	}
	var vs []struct {
		Size int64 `json:"size"`
	}
	if err := json.Unmarshal([]byte(clitest.Must(t, f.root, "volume", "inspect", "q")), &vs); err != nil || len(vs) != 1 || vs[0].Size != 10<<20 {
		t.Errorf("inspect: %+v %v", vs, err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--opt", "size=17m", "big"}, "VOLUME_SIZE_NOT_GRANTED"},
		{[]string{"--opt", "size=10m", "q2"}, ""},
		{[]string{"--opt", "size=7m", "q3"}, "VOLUMES_TOTAL_NOT_GRANTED"},
		{[]string{"unsized"}, "VOLUME_SIZE_REQUIRED"},
		{[]string{"--opt", "type=tmpfs", "t"}, `volume option "type" is not supported`},
		{[]string{"--opt", "size=1m", "tiny"}, "below the minimum"},
	} {
		r := create(c.args...)
		if (c.want == "") != (r.Code == 0) || !strings.Contains(r.Stderr, c.want) {
			t.Errorf("create %v: exit %d, stderr %s; want %q", c.args, r.Code, r.Stderr, c.want)
		}
	}
	img := filepath.Join(f.root, "volumes", "default", "q", "disk.img")
	var before syscall.Stat_t
	if err := syscall.Stat(img, &before); err != nil {
		t.Fatal(err)
	}
	r := clitest.Run(t, f.root, "run", "--rm", "--policy-dir", pol, "--name", f.name(t, "quota"), "-v", "q:/v", "busybox:1", "sh", "-c",
		`df -k /v | tail -1 | awk '{print $2 <= 10240}'; dd if=/dev/zero of=/v/f bs=1M count=20 2>&1 | grep -o "No space left on device" | head -1; s=$(stat -c %s /v/f); echo $((s > 0 && s <= 10485760)); rm /v/f; echo again > /v/small && cat /v/small`)
	if want := "1\nNo space left on device\n1\nagain\n"; r.Code != 0 || r.Stdout != want {
		t.Errorf("filling the volume: exit %d, stdout %q, want %q; stderr %s", r.Code, r.Stdout, want, r.Stderr)
	}
	var after syscall.Stat_t
	if err := syscall.Stat(img, &after); err != nil || after.Blocks != before.Blocks || after.Size != 10<<20 {
		t.Errorf("the volume image's blocks on the host changed: %d → %d blocks, size %d (%v)", before.Blocks, after.Blocks, after.Size, err)
	}

	// A volume that -v creates gets the tenant's default size (and is filled from the image like
	// any other); without one, a limited tenant's run is refused with the reason.
	r = clitest.Run(t, f.root, "run", "--rm", "--policy-dir", pol, "--name", f.name(t, "quota"), "-v", "auto:/v", "busybox:1", "true")
	if r.Code == 0 || !strings.Contains(r.Stderr, "VOLUME_SIZE_REQUIRED") {
		t.Errorf("-v auto without a default size: exit %d, stderr %s", r.Code, r.Stderr)
	}
	clitest.Must(t, f.root, "volume", "rm", "q2")
	withDefault := quotaPolicy(t, `"max_volume_size": 16777216, "default_volume_size": 5242880`)
	r = clitest.Run(t, f.root, "run", "--rm", "--policy-dir", withDefault, "--name", f.name(t, "quota"), "-v", "auto:/etc", "busybox:1", "sh", "-c",
		`df -k /etc | tail -1 | awk '{print $2 <= 5120}'; head -1 /etc/passwd | cut -d: -f1; ls -A /etc | grep -c lost; true`)
	if r.Code != 0 || r.Stdout != "1\nroot\n0\n" {
		t.Errorf("-v auto with a default size: exit %d, stdout %q, stderr %s", r.Code, r.Stdout, r.Stderr)
	}

	for _, v := range []string{"q", "auto"} {
		clitest.Must(t, f.root, "volume", "rm", v)
	}
	if ents, _ := os.ReadDir(filepath.Join(f.root, "volumes", "default")); len(ents) != 0 {
		t.Errorf("left in the volumes: %v", ents)
	}
	f.assertNothingLeft(t) // mounts and loop devices under the state root included
}

// TestVolumeCreateKilled (issue 12, hostile): `volume create --opt size=` SIGKILLed at 24 points
// (before, during and after making, mounting and publishing its filesystem) leaves no loop
// device and no mount of a half-made volume: either the volume is there whole (inspect shows it,
// rm removes it) or it is not, and the tenant's next volume command removes what the killed one
// left.
func TestVolumeCreateKilled(t *testing.T) {
	f := newFixture(t)
	pol := quotaPolicy(t, `"max_volume_size": 134217728`)
	whole := 0
	for i := 0; i < 24; i++ {
		cmd := exec.Command(clitest.Bin, "--root", f.root, "volume", "create", "--policy-dir", pol, "--opt", "size=64m", "k")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i*i) * time.Millisecond) // 0 … 529 ms: spread over the whole command
		cmd.Process.Kill()
		cmd.Wait()
		// The next command of the tenant collects what was left.
		clitest.Must(t, f.root, "volume", "create", "--policy-dir", pol, "--opt", "size=4m", "probe")
		if r := clitest.Run(t, f.root, "volume", "inspect", "k"); r.Code == 0 {
			whole++
			if !strings.Contains(r.Stdout, `"size": 67108864`) {
				t.Errorf("kill %d: the volume left is not whole: %s", i, r.Stdout)
			}
			clitest.Must(t, f.root, "volume", "rm", "k")
		}
		clitest.Must(t, f.root, "volume", "rm", "probe")
		ents, _ := os.ReadDir(filepath.Join(f.root, "volumes", "default"))
		if len(ents) != 0 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Fatalf("kill %d: left in the tenant's volumes: %v", i, names)
		}
		if l := f.leaks.Find(); len(l) != 0 {
			t.Fatalf("kill %d: left %v", i, l)
		}
	}
	t.Logf("%d of 24 killed creations had finished", whole)
	f.assertNothingLeft(t)
}

// TestSizedVolumeRacingRuns (issue 12, hostile): eight runs at once naming one new volume that
// gets the tenant's default size make it once, mount it once (one loop device, one mount: two
// filesystems over one image would corrupt it) and all write to it.
func TestSizedVolumeRacingRuns(t *testing.T) {
	f := newFixture(t)
	pol := quotaPolicy(t, `"default_volume_size": 8388608`)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := clitest.Run(t, f.root, "run", "--rm", "--policy-dir", pol, "--name", f.name(t, "race"), "-v", "shared:/v", "busybox:1", "sh", "-c", "echo x >> /v/log")
			if r.Code != 0 {
				t.Errorf("run %d: exit %d, %s", i, r.Code, r.Stderr)
			}
		}()
	}
	wg.Wait()
	img := filepath.Join(f.root, "volumes", "default", "shared", "disk.img")
	loops, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	n := 0
	for _, l := range loops {
		if b, _ := os.ReadFile(l); strings.TrimSpace(string(b)) == img {
			n++
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if m := strings.Count(string(mi), " "+filepath.Dir(img)+"/_data "); n != 1 || m != 1 {
		t.Errorf("the volume is on %d loop devices and mounted %d times, want 1 and 1", n, m)
	}
	r := clitest.Run(t, f.root, "run", "--rm", "--policy-dir", pol, "--name", f.name(t, "race"), "-v", "shared:/v", "busybox:1", "sh", "-c", "wc -l < /v/log")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "8" {
		t.Errorf("lines written: %q, exit %d, %s", r.Stdout, r.Code, r.Stderr)
	}
	clitest.Must(t, f.root, "volume", "rm", "shared")
	f.assertNothingLeft(t)
}
