package mac

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"text/template"

	"bulwark.dev/bulwark/profiles"
	"bulwark.dev/bulwark/sandbox/internal/caps"
	"bulwark.dev/bulwark/sandbox/internal/mac/macexec"
)

// appArmorTmpl is parsed on first use, not at start-up: every runtime process and every
// container's setup child starts this package.
var appArmorTmpl = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("apparmor").Parse(profiles.AppArmorTemplate))
})

// profileName limits profile names to characters that cannot break out of the profile text
// (no spaces, braces, commas, quotes or newlines): the name comes from the container id.
// (Its length, at most 200, is checked apart: a counted repetition compiled to 199 copies took
// ≈ 0.6 ms of every process start.) Compiled on first use, like the template.
var profileName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]*$`)
})

// AppArmorProfileName is the name of container id's profile.
func AppArmorProfileName(id string) string { return "bulwark-" + id }

// AppArmorProfile generates the profile text for a container's profile called name.
func AppArmorProfile(name string) ([]byte, error) {
	if len(name) > 200 || !profileName().MatchString(name) {
		return nil, fmt.Errorf("apparmor profile name %q: only letters, digits and _.+- allowed", name)
	}
	var deny []string
	for _, c := range caps.Forbidden.Caps() {
		deny = append(deny, strings.ToLower(strings.TrimPrefix(c.String(), "CAP_")))
	}
	var b bytes.Buffer
	err := appArmorTmpl().Execute(&b, struct {
		Name             string
		DenyCapabilities []string
	}{name, deny})
	if err != nil {
		return nil, fmt.Errorf("generate apparmor profile %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// parser is the AppArmor profile compiler and loader.
const parser = "apparmor_parser"

// LoadAppArmor compiles and loads (or replaces) a profile: apparmor_parser -Kr, text on stdin.
// -K skips the binary cache, which a per-container profile would only fill up.
func LoadAppArmor(profile []byte) error {
	if !macexec.AppArmorEnabled() {
		return fmt.Errorf("load apparmor profile: %w", ErrNotEnabled)
	}
	return runParser(profile, "-Kr")
}

// UnloadAppArmor removes profile name if it is loaded (apparmor_parser -R). Unloading a profile
// that is not loaded is not an error, so container deletion stays idempotent after a crash.
func UnloadAppArmor(name string) error {
	if !macexec.AppArmorEnabled() {
		return fmt.Errorf("unload apparmor profile: %w", ErrNotEnabled)
	}
	loaded, err := appArmorLoaded(name)
	if err != nil || !loaded {
		return err
	}
	profile, err := AppArmorProfile(name)
	if err != nil {
		return err
	}
	return runParser(profile, "-R")
}

// appArmorLoaded reports whether the kernel has a profile called name ("name (mode)" lines).
func appArmorLoaded(name string) (bool, error) {
	b, err := os.ReadFile("/sys/kernel/security/apparmor/profiles")
	if err != nil {
		return false, fmt.Errorf("list apparmor profiles: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if n, _, _ := strings.Cut(line, " ("); n == name {
			return true, nil
		}
	}
	return false, nil
}

func runParser(profile []byte, args ...string) error {
	cmd := exec.Command(parser, args...)
	cmd.Stdin = bytes.NewReader(profile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", parser, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
