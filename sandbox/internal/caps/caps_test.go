package caps

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	got, err := Parse([]string{"CAP_CHOWN", "kill", "cap_net_bind_service", " SYS_ADMIN "})
	if err != nil {
		t.Fatal(err)
	}
	if want := Of(CHOWN, KILL, NET_BIND_SERVICE, SYS_ADMIN); got != want {
		t.Fatalf("Parse = %v, want %v", got, want)
	}
	for _, bad := range []string{"CAP_FOO", "", "CAP_", "ALL", "CAP_CHOWN2", "41"} {
		if _, err := Parse([]string{"CAP_KILL", bad}); err == nil {
			t.Errorf("Parse(%q) succeeded, want error", bad)
		}
	}
	if s, err := Parse(nil); err != nil || s != 0 {
		t.Fatalf("Parse(nil) = %v, %v; want empty set", s, err)
	}
}

func TestNamesRoundTrip(t *testing.T) {
	if len(names) != 41 || Last != CHECKPOINT_RESTORE {
		t.Fatalf("table has %d names, Last=%v", len(names), Last)
	}
	var all Set
	for c := Cap(0); c <= Last; c++ {
		all |= Of(c)
	}
	back, err := Parse(all.Names())
	if err != nil || back != all {
		t.Fatalf("round trip = %v, %v", back, err)
	}
	if s := Of(KILL, CHOWN).String(); s != "CAP_CHOWN,CAP_KILL" {
		t.Fatalf("String = %q", s)
	}
}

func TestTables(t *testing.T) {
	if Forbidden&Grantable != 0 {
		t.Fatalf("forbidden and grantable overlap: %v", Forbidden&Grantable)
	}
	for _, c := range Forbidden.Caps() {
		if Reason(c) == "" {
			t.Errorf("%v is forbidden without a reason", c)
		}
	}
	if len(reasons) != len(Forbidden.Caps()) {
		t.Errorf("%d reasons for %d forbidden capabilities", len(reasons), len(Forbidden.Caps()))
	}
	// The brief's minimum forbidden list.
	must, _ := Parse(strings.Fields("SYS_ADMIN SYS_PTRACE SYS_MODULE DAC_READ_SEARCH NET_ADMIN SYS_RAWIO " +
		"BPF PERFMON SYS_BOOT SYS_TIME MAC_ADMIN MAC_OVERRIDE SYSLOG"))
	if must&^Forbidden != 0 {
		t.Errorf("not forbidden: %v", must&^Forbidden)
	}
	grant, _ := Parse(strings.Fields("CHOWN DAC_OVERRIDE FOWNER FSETID SETUID SETGID KILL NET_BIND_SERVICE"))
	if grant != Grantable {
		t.Errorf("Grantable = %v, want %v", Grantable, grant)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name                     string
		req                      []string
		kept, forbidden, dropped Set
	}{
		{"nothing requested gets nothing", nil, 0, 0, 0},
		{"runc spec default", []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
			Of(KILL, NET_BIND_SERVICE), 0, Of(AUDIT_WRITE)},
		// Docker's default set must not be refused, only trimmed.
		{"docker default", []string{"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
			"SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"},
			Grantable, 0, Of(MKNOD, NET_RAW, SETFCAP, SETPCAP, SYS_CHROOT, AUDIT_WRITE)},
		{"shocker", []string{"CAP_DAC_READ_SEARCH", "CAP_CHOWN"}, Of(CHOWN), Of(DAC_READ_SEARCH), 0},
		{"privileged-ish", []string{"SYS_ADMIN", "NET_ADMIN", "SYS_NICE", "KILL"},
			Of(KILL), Of(SYS_ADMIN, NET_ADMIN), Of(SYS_NICE)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := Parse(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			k, f, d := Classify(req)
			if k != tc.kept || f != tc.forbidden || d != tc.dropped {
				t.Fatalf("Classify = kept %v / forbidden %v / dropped %v; want %v / %v / %v",
					k, f, d, tc.kept, tc.forbidden, tc.dropped)
			}
			if k|f|d != req || k&f != 0 || k&d != 0 || f&d != 0 {
				t.Fatalf("classes do not partition the request")
			}
			err = Check(req)
			if (f != 0) != (err != nil) {
				t.Fatalf("Check = %v with forbidden %v", err, f)
			}
			if err != nil {
				if !errors.Is(err, ErrForbidden) {
					t.Fatalf("Check error %v does not wrap ErrForbidden", err)
				}
				for _, c := range f.Caps() {
					if !strings.Contains(err.Error(), c.String()+": "+Reason(c)) {
						t.Errorf("Check error %q lacks %v and its reason", err, c)
					}
				}
			}
		})
	}
}
