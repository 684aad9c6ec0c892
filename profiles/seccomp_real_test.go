package profiles

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// realProfiles lists seccomp profiles in Docker's format that real projects ship and that happen
// to be on this machine: Docker's own default (moby/profiles in the Go module cache) and
// containers/common's (Podman, /usr/share/containers). They are read where they are, not copied.
func realProfiles() []string {
	var out []string
	modcache := os.Getenv("GOMODCACHE")
	if modcache == "" {
		if gp := os.Getenv("GOPATH"); gp != "" {
			modcache = filepath.Join(gp, "pkg", "mod")
		} else if home, err := os.UserHomeDir(); err == nil {
			modcache = filepath.Join(home, "go", "pkg", "mod")
		}
	}
	m, _ := filepath.Glob(filepath.Join(modcache, "github.com", "moby", "profiles", "seccomp@*", "default.json"))
	out = append(out, m...)
	if _, err := os.Stat("/usr/share/containers/seccomp.json"); err == nil {
		out = append(out, "/usr/share/containers/seccomp.json")
	}
	return out
}

func TestParserealProfiles(t *testing.T) {
	files := realProfiles()
	if len(files) == 0 {
		t.Skip("no Docker or containers/common seccomp profile on this machine")
	}
	for _, f := range files {
		t.Run(filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p, err := ParseDockerSeccompWith(data, ParseOptions{GOARCH: "amd64", Kernel: "6.18"})
			if err != nil {
				t.Fatal(err)
			}
			if p.DefaultAction != specs.ActErrno || !slices.Contains(p.Architectures, specs.ArchX86_64) || len(p.Syscalls) < 5 {
				t.Fatalf("unexpected resolution: default %s, arches %v, %d rules", p.DefaultAction, p.Architectures, len(p.Syscalls))
			}
			allowed := 0
			for _, r := range p.Syscalls {
				if r.Action == specs.ActAllow && len(r.Args) == 0 {
					allowed += len(r.Names)
				}
				// Without capabilities the real profiles never allow these. (They do allow others
				// Bulwark's floor refuses: Docker ptrace on kernels >= 4.8, Podman mount, umount and setns.)
				for _, n := range []string{"bpf", "kexec_load", "open_by_handle_at", "init_module"} {
					if r.Action == specs.ActAllow && slices.Contains(r.Names, n) {
						t.Errorf("%s allowed without capabilities", n)
					}
				}
			}
			withAdmin, err := ParseDockerSeccompWith(data, ParseOptions{Caps: []string{"CAP_SYS_ADMIN"}, GOARCH: "amd64", Kernel: "6.18"})
			if err != nil {
				t.Fatal(err)
			}
			if len(withAdmin.Syscalls) <= len(p.Syscalls)-2 {
				t.Errorf("CAP_SYS_ADMIN resolution kept %d rules, without caps %d", len(withAdmin.Syscalls), len(p.Syscalls))
			}
			t.Logf("%d rules, %d unconditionally allowed names", len(p.Syscalls), allowed)
		})
	}
}

func TestParseSymbolicErrno(t *testing.T) {
	p, err := ParseDockerSeccomp([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","defaultErrno":"ENOSYS","syscalls":[
		{"names":["ptrace"],"action":"SCMP_ACT_ERRNO","errno":"EPERM","errnoRet":1},
		{"names":["bpf"],"action":"SCMP_ACT_ERRNO","errno":"ENOTSUP"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if *p.DefaultErrnoRet != 38 || *p.Syscalls[0].ErrnoRet != 1 || *p.Syscalls[1].ErrnoRet != 95 {
		t.Fatalf("errnos %d %d %d", *p.DefaultErrnoRet, *p.Syscalls[0].ErrnoRet, *p.Syscalls[1].ErrnoRet)
	}
	for _, bad := range []string{
		`{"defaultAction":"SCMP_ACT_ERRNO","defaultErrno":"ENOSYS","defaultErrnoRet":1}`,
		`{"defaultAction":"SCMP_ACT_ERRNO","defaultErrno":"EWHATEVER"}`,
	} {
		if _, err := ParseDockerSeccomp([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
