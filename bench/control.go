package bench

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Control is one check, as data (controls.json): what it checks, which probe (a named Go
// function, never a shell string) reads the value, what is expected and how to fix it.
type Control struct {
	ID      string `json:"id"`
	Title   string `json:"title"`
	Section string `json:"section"`
	// Level 1 controls are scored; level 2 are reported (warn) but do not change the score.
	Level int `json:"level"`
	// Type is "automated" (a probe decides) or "manual" (a person decides; the probe, if any,
	// gathers what they need).
	Type  string `json:"type"`
	Probe string `json:"probe,omitempty"`
	// Params configure the probe (paths and mode masks, thresholds); the floor's values are
	// never here: probes read them from sandbox.FloorExpected.
	Params      json.RawMessage `json:"params,omitempty"`
	Expected    string          `json:"expected"`
	Remediation string          `json:"remediation"`
	References  []string        `json:"references,omitempty"`
	// CIS maps a CIS Docker Benchmark version to the recommendation ids this control covers.
	CIS map[string][]string `json:"cis,omitempty"`
	// NeedsRoot says the probe reads what only root may read (other processes' /proc entries,
	// private keys' directories); run as another user it is skipped and says so.
	NeedsRoot bool `json:"needsRoot,omitempty"`
}

// Scored reports whether the control counts in the score: an automated level-1 control.
func (c *Control) Scored() bool { return c.Type == "automated" && c.Level == 1 }

// CISCheck is one recommendation of the CIS Docker Benchmark; NotApplicable, when set, is why no
// Bulwark control covers it.
type CISCheck struct {
	ID            string `json:"id"`
	Title         string `json:"title"`
	Automated     bool   `json:"automated"`
	NotApplicable string `json:"notApplicable,omitempty"`
}

// Benchmark is a CIS benchmark's list of recommendations.
type Benchmark struct {
	Name    string     `json:"name"`
	Version string     `json:"version"`
	Source  string     `json:"source"`
	Checks  []CISCheck `json:"checks"`
}

// Catalog is controls.json: the sections, every control, and the CIS benchmarks they map to.
type Catalog struct {
	Sections   []Section   `json:"sections"`
	Controls   []Control   `json:"controls"`
	Benchmarks []Benchmark `json:"benchmarks"`
}

// Section is one group of controls.
type Section struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	// Bulwark sections describe the Bulwark engine itself and are scanned only with the
	// bulwark target; host and runtime apply to every target.
	Bulwark bool `json:"bulwark,omitempty"`
}

//go:embed controls.json
var controlsJSON []byte

// LoadCatalog parses and checks the embedded catalog: ids unique, every probe registered,
// sections known, every CIS recommendation either covered by a control or given a reason.
func LoadCatalog() (*Catalog, error) {
	return parseCatalog(controlsJSON)
}

func parseCatalog(b []byte) (*Catalog, error) {
	var c Catalog
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("controls: %w", err)
	}
	return &c, c.check()
}

func (c *Catalog) check() error {
	sections := map[string]bool{}
	for _, s := range c.Sections {
		sections[s.ID] = true
	}
	ids := map[string]bool{}
	covered := map[string]map[string]bool{}
	for _, ctl := range c.Controls {
		switch {
		case ctl.ID == "" || ids[ctl.ID]:
			return fmt.Errorf("controls: id %q empty or repeated", ctl.ID)
		case !sections[ctl.Section]:
			return fmt.Errorf("controls: %s: unknown section %q", ctl.ID, ctl.Section)
		case ctl.Level != 1 && ctl.Level != 2:
			return fmt.Errorf("controls: %s: level %d (want 1 or 2)", ctl.ID, ctl.Level)
		case ctl.Type != "automated" && ctl.Type != "manual":
			return fmt.Errorf("controls: %s: type %q (want automated or manual)", ctl.ID, ctl.Type)
		case ctl.Type == "automated" && ctl.Probe == "":
			return fmt.Errorf("controls: %s: automated without a probe", ctl.ID)
		case ctl.Expected == "" || ctl.Remediation == "" || ctl.Title == "":
			return fmt.Errorf("controls: %s: title, expected and remediation are required", ctl.ID)
		}
		if ctl.Probe != "" && hostProbes[ctl.Probe] == nil && containerProbes[ctl.Probe] == nil {
			return fmt.Errorf("controls: %s: no probe named %q", ctl.ID, ctl.Probe)
		}
		ids[ctl.ID] = true
		for v, list := range ctl.CIS {
			if covered[v] == nil {
				covered[v] = map[string]bool{}
			}
			for _, id := range list {
				covered[v][id] = true
			}
		}
	}
	for _, b := range c.Benchmarks {
		known := map[string]bool{}
		for _, chk := range b.Checks {
			known[chk.ID] = true
			switch {
			case covered[b.Version][chk.ID] && chk.NotApplicable != "":
				return fmt.Errorf("controls: CIS %s %s is covered by a control and also marked not applicable", b.Version, chk.ID)
			case !covered[b.Version][chk.ID] && chk.NotApplicable == "":
				return fmt.Errorf("controls: CIS %s %s is neither covered by a control nor given a reason", b.Version, chk.ID)
			}
		}
		for id := range covered[b.Version] {
			if !known[id] {
				return fmt.Errorf("controls: a control names CIS %s %s, which the benchmark does not have", b.Version, id)
			}
		}
	}
	return nil
}

// Section returns the section with id s.
func (c *Catalog) Section(id string) (Section, bool) {
	i := slices.IndexFunc(c.Sections, func(s Section) bool { return s.ID == id })
	if i < 0 {
		return Section{}, false
	}
	return c.Sections[i], true
}

// params decodes a control's parameters into v (strictly: an unknown key is an error in the
// catalog, not something to ignore).
func (c *Control) params(v any) error {
	if len(c.Params) == 0 {
		return fmt.Errorf("%s: probe %s needs params", c.ID, c.Probe)
	}
	dec := json.NewDecoder(strings.NewReader(string(c.Params)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: params: %w", c.ID, err)
	}
	return nil
}
