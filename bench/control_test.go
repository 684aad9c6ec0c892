package bench

import (
	"os"
	"strings"
	"testing"
)

func TestCatalogLoads(t *testing.T) {
	cat, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cat.Benchmarks[0].Checks); n != 117 {
		t.Errorf("CIS Docker 1.6.0 has 117 recommendations, the catalog %d", n)
	}
	for _, c := range cat.Controls {
		if !strings.HasPrefix(c.ID, "BW-") {
			t.Errorf("%s: Bulwark control ids start BW-", c.ID)
		}
	}
}

func TestCatalogRefusesInconsistencies(t *testing.T) {
	base := `{"sections":[{"id":"host","title":"h"}],"benchmarks":[{"name":"CIS","version":"1","checks":[{"id":"1.1","title":"t","automated":true}]}],"controls":[%s]}`
	for name, ctl := range map[string]string{
		"unknown probe":        `{"id":"BW-1.1","title":"t","section":"host","level":1,"type":"automated","probe":"nope","expected":"e","remediation":"r","cis":{"1":["1.1"]}}`,
		"automated, no probe":  `{"id":"BW-1.1","title":"t","section":"host","level":1,"type":"automated","expected":"e","remediation":"r","cis":{"1":["1.1"]}}`,
		"CIS check not mapped": `{"id":"BW-1.1","title":"t","section":"host","level":1,"type":"manual","expected":"e","remediation":"r"}`,
		"unknown CIS id":       `{"id":"BW-1.1","title":"t","section":"host","level":1,"type":"manual","expected":"e","remediation":"r","cis":{"1":["1.1","9.9"]}}`,
		"unknown section":      `{"id":"BW-1.1","title":"t","section":"x","level":1,"type":"manual","expected":"e","remediation":"r","cis":{"1":["1.1"]}}`,
		"unknown field":        `{"id":"BW-1.1","title":"t","section":"host","level":1,"type":"manual","expected":"e","remediation":"r","cis":{"1":["1.1"]},"shell":"grep x"}`,
	} {
		if _, err := parseCatalog([]byte(strings.Replace(base, "%s", ctl, 1))); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	ok := `{"id":"BW-1.1","title":"t","section":"host","level":1,"type":"manual","expected":"e","remediation":"r","cis":{"1":["1.1"]}}`
	if _, err := parseCatalog([]byte(strings.Replace(base, "%s", ok, 1))); err != nil {
		t.Fatal(err)
	}
}

// docs/bench.md has a row for every CIS recommendation and names every control.
func TestDocsTableCoversTheCatalog(t *testing.T) {
	b, err := os.ReadFile("../docs/bench.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	cat, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, chk := range cat.Benchmarks[0].Checks {
		if !strings.Contains(doc, "\n| "+chk.ID+" |") {
			t.Errorf("docs/bench.md has no row for CIS %s", chk.ID)
		}
	}
	for _, c := range cat.Controls {
		if !strings.Contains(doc, "| "+c.ID+" |") {
			t.Errorf("docs/bench.md has no row for %s", c.ID)
		}
	}
}

func TestSelectedByIDOrSection(t *testing.T) {
	c := &Control{ID: "BW-5.4", Section: "runtime"}
	for _, tc := range []struct {
		check, exclude []string
		want           bool
	}{
		{nil, nil, true},
		{[]string{"runtime"}, nil, true},
		{[]string{"bw-5.4"}, nil, true},
		{[]string{"host"}, nil, false},
		{nil, []string{"BW-5.4"}, false},
		{[]string{"runtime"}, []string{"BW-5.4"}, false},
	} {
		if got := selected(c, tc.check, tc.exclude); got != tc.want {
			t.Errorf("check %v exclude %v: %v", tc.check, tc.exclude, got)
		}
	}
}

func TestSummaryScore(t *testing.T) {
	s := summarize([]Result{
		{Scored: true, Status: Pass}, {Scored: true, Status: Pass}, {Scored: true, Status: Pass},
		{Scored: true, Status: Fail}, {Scored: false, Status: Warn}, {Scored: true, Status: Skip}, {Status: Manual},
	})
	if s.Pass != 3 || s.Fail != 1 || s.Warn != 1 || s.Skip != 1 || s.Manual != 1 || s.Scored != 4 || s.Score != 2 || s.Percent != 75 {
		t.Fatalf("%+v", s)
	}
}

// An unscored control that fails is a warning; a manual one is manual whatever its probe says.
func TestEvaluateStatusMapping(t *testing.T) {
	e := testEnv(t)
	e.Etc = t.TempDir()
	r := e.evaluate(&Control{ID: "BW-1.7", Level: 2, Type: "automated", Probe: "host.audit.rules", Params: []byte(`{"paths":["{root}"]}`)})
	if r.Status != Warn {
		t.Fatalf("level 2 failing: %s", r.Status)
	}
	r = e.evaluate(&Control{ID: "BW-6.4", Level: 1, Type: "manual", Probe: "ops.containers.count"})
	if r.Status != Manual || r.Actual == "" {
		t.Fatalf("manual: %s %q", r.Status, r.Actual)
	}
}

func TestUnknownSelectionRefused(t *testing.T) {
	if _, err := Run(t.Context(), Options{Root: t.TempDir(), Check: []string{"BW-9.9"}}); err == nil || !strings.Contains(err.Error(), "BW-9.9") {
		t.Fatalf("--check BW-9.9: %v", err)
	}
	if _, err := Run(t.Context(), Options{Root: t.TempDir(), Exclude: []string{"runtim"}}); err == nil {
		t.Fatal("--exclude runtim accepted")
	}
}
