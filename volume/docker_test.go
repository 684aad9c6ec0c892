package volume

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/sandbox"
)

func TestDockerVolumeName(t *testing.T) {
	for path, want := range map[string]string{
		"/var/lib/docker/volumes/pgdata/_data":   "pgdata",
		"/srv/d/volumes/a.b_c-1/_data":           "a.b_c-1",
		"/var/lib/docker/volumes/pgdata":         "",
		"/var/lib/docker/volumes/pgdata/_data/x": "",
		"/var/lib/docker/volumes/../_data":       "",
		"/var/lib/docker/volumes/.x/_data":       "",
		"/var/lib/dockerx/volumes/pgdata/_data":  "",
	} {
		root := "/var/lib/docker"
		if strings.HasPrefix(path, "/srv") {
			root = "/srv/d/"
		}
		name, ok := DockerVolumeName(root, path)
		if name != want || ok != (want != "") {
			t.Errorf("%s: %q %v, want %q", path, name, ok, want)
		}
	}
}

// openPath opens dir as a bind source is resolved (O_PATH).
func openPath(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func owner(t *testing.T, p string) (uint32, uint32) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid, st.Gid
}

// TestAdoptDocker: an empty root-owned _data becomes the storage range's; a filled one is
// refused without the grant and shifted entry by entry with it (image id N → StorageIDBase+N),
// never following a symlink out of it; hard links, foreign ids and a second filesystem refuse
// it; a walk killed half way is finished by the next adoption.
func TestAdoptDocker(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown)")
	}
	base := sandbox.StorageIDBase
	root := t.TempDir()
	mk := func(name string) string {
		d := filepath.Join(root, "volumes", name, "_data")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}

	empty := mk("empty")
	fd := openPath(t, empty)
	if st, err := InspectDocker(fd); err != nil || st != DockerEmpty {
		t.Fatalf("inspect empty: %q %v", st, err)
	}
	if a, err := AdoptDocker(fd, false); err != nil || a.From != DockerEmpty || a.Changed != 1 {
		t.Fatalf("adopt empty: %+v %v", a, err)
	}
	if u, g := owner(t, empty); u != base || g != base {
		t.Errorf("adopted empty volume owned by %d:%d", u, g)
	}
	if st, _ := InspectDocker(fd); st != DockerAdopted {
		t.Errorf("after adoption: %q", st)
	}
	if a, err := AdoptDocker(fd, false); err != nil || a.Changed != 0 {
		t.Errorf("second adoption: %+v %v", a, err)
	}

	// A filled volume as dockerd leaves it: the image's ids (999 for a database user), a
	// symlink out of the volume, a setuid file.
	filled := mk("filled")
	outside := filepath.Join(root, "outside")
	must(t, os.WriteFile(outside, []byte("host"), 0o644))
	must(t, os.MkdirAll(filepath.Join(filled, "sub", "deep"), 0o700))
	must(t, os.WriteFile(filepath.Join(filled, "sub", "deep", "f"), []byte("x"), 0o4755))
	must(t, os.WriteFile(filepath.Join(filled, "sub", "s"), []byte("x"), 0o755))
	must(t, os.Symlink(outside, filepath.Join(filled, "link")))
	for _, p := range []string{"sub", "sub/deep", "sub/deep/f", "sub/s"} {
		must(t, os.Lchown(filepath.Join(filled, p), 999, 999))
	}
	must(t, os.Chmod(filepath.Join(filled, "sub", "s"), 0o6755))
	must(t, os.Chown(filled, 999, 999))
	ffd := openPath(t, filled)
	if st, err := InspectDocker(ffd); err != nil || st != DockerFilled {
		t.Fatalf("inspect filled: %q %v", st, err)
	}
	if _, err := AdoptDocker(ffd, false); err == nil || !strings.Contains(err.Error(), "adopt_docker_volume_contents") {
		t.Fatalf("filled without the grant: %v", err)
	}
	if u, _ := owner(t, filled); u != 999 {
		t.Fatalf("refused adoption changed the owner to %d", u)
	}
	// Half adopted already (a walk killed after sub/deep/f).
	must(t, os.Lchown(filepath.Join(filled, "sub", "deep", "f"), int(base+999), int(base+999)))
	a, err := AdoptDocker(ffd, true)
	if err != nil || a.From != DockerFilled || a.Changed != 5 {
		t.Fatalf("adopt filled: %+v %v", a, err)
	}
	for _, p := range []string{"", "sub", "sub/deep", "sub/deep/f", "sub/s"} {
		if u, g := owner(t, filepath.Join(filled, p)); u != base+999 || g != base+999 {
			t.Errorf("%s owned by %d:%d, want %d", p, u, g, base+999)
		}
	}
	if u, _ := owner(t, filepath.Join(filled, "link")); u != base {
		t.Errorf("the symlink itself owned by %d", u)
	}
	if u, _ := owner(t, outside); u != 0 {
		t.Errorf("the symlink's target outside the volume was changed to %d", u)
	}
	var st unix.Stat_t
	must(t, unix.Stat(filepath.Join(filled, "sub", "s"), &st))
	if st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
		t.Errorf("setuid file kept mode %o", st.Mode)
	}

	for name, setup := range map[string]func(d string){
		"hard link": func(d string) {
			must(t, os.Link(outside, filepath.Join(d, "hl")))
		},
		"foreign id": func(d string) {
			must(t, os.WriteFile(filepath.Join(d, "f"), nil, 0o644))
			must(t, os.Chown(filepath.Join(d, "f"), 200000, 0))
		},
		"mount": func(d string) {
			must(t, os.Mkdir(filepath.Join(d, "m"), 0o755))
			must(t, unix.Mount("tmpfs", filepath.Join(d, "m"), "tmpfs", 0, "size=64k"))
			t.Cleanup(func() { unix.Unmount(filepath.Join(d, "m"), unix.MNT_DETACH) })
		},
	} {
		d := mk(strings.ReplaceAll(name, " ", "-"))
		setup(d)
		if _, err := AdoptDocker(openPath(t, d), true); err == nil {
			t.Errorf("%s: adopted", name)
		} else if u, _ := owner(t, d); u != 0 {
			t.Errorf("%s: refused, but the volume is owned by %d now", name, u)
		}
	}
	if u, _ := owner(t, outside); u != 0 {
		t.Errorf("hard-linked file outside the volume owned by %d", u)
	}

	// A volume owned by a foreign id at the top is no Docker volume to adopt.
	foreign := mk("foreign")
	must(t, os.Chown(foreign, 200000, 200000))
	if _, err := InspectDocker(openPath(t, foreign)); err == nil {
		t.Error("inspect of a volume owned by a foreign id passed")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
