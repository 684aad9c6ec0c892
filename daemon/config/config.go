// Package config is bulwarkd's configuration: where it listens and keeps state, which uids and
// gids are which tenant, who is an operator, and the limits it serves under. A file is JSON,
// read strictly (an unknown key is an error), and every error names the file and line.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// Duration is a time.Duration written as "10s" in the file.
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads "10s", "2m", ...
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("want a duration such as \"10s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Errorf("bad duration %q (want e.g. \"10s\")", s)
	}
	d.Duration = v
	return nil
}

// Tenant says which connections act for a tenant: a peer whose uid is in UIDs, or (failing
// that) whose primary gid is in GIDs; on the TCP listener, a client whose verified certificate
// names one of CertNames (its subject CN, or a DNS, email or URI SAN).
type Tenant struct {
	UIDs      []int    `json:"uids,omitempty"`
	GIDs      []int    `json:"gids,omitempty"`
	CertNames []string `json:"cert_names,omitempty"`
}

// TCP is the optional TCP listener: mutual TLS only. A client must present a certificate
// issued by ClientCA, or the TLS handshake fails; its certificate's names map it to a tenant (or
// to an operator) as Tenant.CertNames and Config.OperatorCertNames say.
type TCP struct {
	Address  string `json:"address"`
	Cert     string `json:"cert"`
	Key      string `json:"key"`
	ClientCA string `json:"client_ca"`
}

// Limits bound what one client can make the daemon hold.
type Limits struct {
	// MaxBodyBytes caps a request body (a larger one is refused with 413).
	MaxBodyBytes int64 `json:"max_body_bytes"`
	// ReadHeaderTimeout, ReadTimeout and IdleTimeout bound a slow or idle client. Streams
	// (attach, logs -f, wait) are not bounded by a write timeout.
	ReadHeaderTimeout Duration `json:"read_header_timeout"`
	ReadTimeout       Duration `json:"read_timeout"`
	IdleTimeout       Duration `json:"idle_timeout"`
	// ShutdownTimeout is how long a graceful shutdown waits for requests in flight.
	ShutdownTimeout Duration `json:"shutdown_timeout"`
}

// Config is the whole configuration.
type Config struct {
	// Socket is the unix socket the API is served on; made mode 0660, owned by root and by
	// SocketGroup (a group name or number; empty: root's group).
	Socket      string `json:"socket"`
	SocketGroup string `json:"socket_group,omitempty"`
	// MetricsSocket, if set, serves Prometheus metrics on their own unix socket (mode 0660,
	// root and MetricsSocketGroup; "": root's group only). Off by default: the counts name
	// tenants, and a socket nobody asked for is surface nobody watches.
	MetricsSocket      string `json:"metrics_socket,omitempty"`
	MetricsSocketGroup string `json:"metrics_socket_group,omitempty"`
	// StateRoot is the engine's state root; the daemon keeps its own records below it.
	StateRoot string `json:"state_root"`
	// Run policy (as bulwark run's --policy-dir, --policy-bundle, --policy-key) and the API
	// policy directory (its rules, or only data.json for the embedded rules).
	PolicyDir    string `json:"policy_dir,omitempty"`
	PolicyBundle string `json:"policy_bundle,omitempty"`
	PolicyKey    string `json:"policy_key,omitempty"`
	APIPolicyDir string `json:"api_policy_dir,omitempty"`
	// Tenants maps tenant names to the uids and gids that act for them.
	Tenants map[string]Tenant `json:"tenants,omitempty"`
	// OperatorUIDs and OperatorGIDs are operators besides root (uid 0, always one).
	OperatorUIDs []int `json:"operator_uids,omitempty"`
	OperatorGIDs []int `json:"operator_gids,omitempty"`
	// OperatorCertNames are certificate names (TCP listener) that are operators.
	OperatorCertNames []string `json:"operator_cert_names,omitempty"`
	// TCP, if set, serves the API on TCP too, with mutual TLS only.
	TCP *TCP `json:"tcp,omitempty"`
	// OperatorTenant is the tenant an operator's own containers run for.
	OperatorTenant string `json:"operator_tenant"`
	Limits         Limits `json:"limits"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `json:"log_level"`
}

// DefaultSocket is where bulwarkd serves unless configured otherwise.
const DefaultSocket = "/run/bulwark/bulwark.sock"

// Default is the configuration without a file.
func Default() Config {
	return Config{
		Socket:         DefaultSocket,
		StateRoot:      "/var/lib/bulwark",
		OperatorTenant: "default",
		LogLevel:       "info",
		Limits: Limits{
			MaxBodyBytes:      1 << 20,
			ReadHeaderTimeout: Duration{10 * time.Second},
			ReadTimeout:       Duration{30 * time.Second},
			IdleTimeout:       Duration{2 * time.Minute},
			ShutdownTimeout:   Duration{10 * time.Second},
		},
	}
}

// Error is a configuration error at a place in a file (line 0: the file as a whole).
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Load reads path over the defaults and validates the result.
func Load(path string) (Config, error) {
	c := Default()
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, decodeError(path, b, dec, err)
	}
	if dec.More() {
		return c, &Error{File: path, Line: lineAt(b, dec.InputOffset()), Msg: "more than one JSON document"}
	}
	if err := c.validate(); err != nil {
		return c, &Error{File: path, Line: keyLine(b, err.key), Msg: err.msg}
	}
	return c, nil
}

// decodeError places a JSON error on its line.
func decodeError(path string, b []byte, dec *json.Decoder, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return &Error{File: path, Line: lineAt(b, se.Offset), Msg: err.Error()}
	case errors.As(err, &te):
		return &Error{File: path, Line: lineAt(b, te.Offset), Msg: fmt.Sprintf("%s: want %s, not %s", te.Field, te.Type, te.Value)}
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		key := strings.Trim(f, `"`)
		return &Error{File: path, Line: keyLine(b, key), Msg: "unknown key " + f}
	}
	// Errors of a field's own decoder (a bad duration) carry no offset: the decoder's position
	// is just past the value.
	return &Error{File: path, Line: lineAt(b, dec.InputOffset()), Msg: msg}
}

func lineAt(b []byte, off int64) int {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	return bytes.Count(b[:off], []byte("\n")) + 1
}

// keyLine is the line of the first occurrence of "key": (0 when absent).
func keyLine(b []byte, key string) int {
	if key == "" {
		return 0
	}
	i := bytes.Index(b, []byte(`"`+key+`"`))
	if i < 0 {
		return 0
	}
	return lineAt(b, int64(i))
}

type fieldError struct{ key, msg string }

// tenantRE is a tenant name's alphabet; validTenant checks its length apart, as the engine does
// (a counted repetition compiles to a large program at every bulwark start).
var tenantRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// validTenant reports whether name is [a-z0-9][a-z0-9-]{0,62}.
func validTenant(name string) bool { return len(name) <= 63 && tenantRE.MatchString(name) }

// Validate checks a configuration built without a file (flags over the defaults).
func (c *Config) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("config: %s: %s", err.key, err.msg)
	}
	return nil
}

func (c *Config) validate() *fieldError {
	switch {
	case c.Socket == "" || !strings.HasPrefix(c.Socket, "/"):
		return &fieldError{"socket", fmt.Sprintf("socket %q: want an absolute path", c.Socket)}
	case len(c.Socket) > 107:
		return &fieldError{"socket", fmt.Sprintf("socket %q: longer than a unix socket address (107 bytes)", c.Socket)}
	case c.MetricsSocket != "" && !strings.HasPrefix(c.MetricsSocket, "/"):
		return &fieldError{"metrics_socket", fmt.Sprintf("metrics_socket %q: want an absolute path", c.MetricsSocket)}
	case len(c.MetricsSocket) > 107:
		return &fieldError{"metrics_socket", fmt.Sprintf("metrics_socket %q: longer than a unix socket address (107 bytes)", c.MetricsSocket)}
	case c.MetricsSocket != "" && c.MetricsSocket == c.Socket:
		return &fieldError{"metrics_socket", "metrics_socket is the API socket: metrics are served apart"}
	case c.MetricsSocketGroup != "" && c.MetricsSocket == "":
		return &fieldError{"metrics_socket_group", "metrics_socket_group without metrics_socket"}
	case c.StateRoot == "" || !strings.HasPrefix(c.StateRoot, "/"):
		return &fieldError{"state_root", fmt.Sprintf("state_root %q: want an absolute path", c.StateRoot)}
	case c.PolicyDir != "" && c.PolicyBundle != "":
		return &fieldError{"policy_bundle", "policy_dir and policy_bundle: name one"}
	case c.PolicyBundle != "" && c.PolicyKey == "":
		return &fieldError{"policy_bundle", "policy_bundle needs policy_key (the bundle's signing key)"}
	case !validTenant(c.OperatorTenant):
		return &fieldError{"operator_tenant", fmt.Sprintf("operator_tenant %q: want [a-z0-9][a-z0-9-]{0,62}", c.OperatorTenant)}
	case c.Limits.MaxBodyBytes <= 0:
		return &fieldError{"max_body_bytes", "max_body_bytes: want a positive number of bytes"}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return &fieldError{"log_level", fmt.Sprintf("log_level %q: want debug, info, warn or error", c.LogLevel)}
	}
	if err := c.TCP.validate(); err != nil {
		return err
	}
	uids, gids, certs := map[int]string{}, map[int]string{}, map[string]string{}
	for _, n := range c.OperatorCertNames {
		if n == "" {
			return &fieldError{"operator_cert_names", "operator_cert_names: an empty name"}
		}
		certs[n] = "the operators"
	}
	for _, name := range c.tenantNames() {
		t := c.Tenants[name]
		if !validTenant(name) {
			return &fieldError{name, fmt.Sprintf("tenant %q: want [a-z0-9][a-z0-9-]{0,62}", name)}
		}
		if len(t.UIDs) == 0 && len(t.GIDs) == 0 && len(t.CertNames) == 0 {
			return &fieldError{name, fmt.Sprintf("tenant %q: no uids, gids or certificate names act for it", name)}
		}
		for _, n := range t.CertNames {
			if n == "" {
				return &fieldError{name, fmt.Sprintf("tenant %q: an empty certificate name", name)}
			}
			if o, dup := certs[n]; dup {
				return &fieldError{name, fmt.Sprintf("certificate name %q is in %q and %q", n, o, name)}
			}
			certs[n] = name
		}
		for _, u := range t.UIDs {
			if u == 0 {
				return &fieldError{name, fmt.Sprintf("tenant %q: uid 0 is the operator, not a tenant", name)}
			}
			if o, dup := uids[u]; dup {
				return &fieldError{name, fmt.Sprintf("uid %d is in tenants %q and %q", u, o, name)}
			}
			uids[u] = name
		}
		for _, g := range t.GIDs {
			if o, dup := gids[g]; dup {
				return &fieldError{name, fmt.Sprintf("gid %d is in tenants %q and %q", g, o, name)}
			}
			gids[g] = name
		}
	}
	return nil
}

func (t *TCP) validate() *fieldError {
	if t == nil {
		return nil
	}
	if _, _, err := net.SplitHostPort(t.Address); err != nil {
		return &fieldError{"address", fmt.Sprintf("tcp address %q: want host:port (%v)", t.Address, err)}
	}
	// No TCP without mutual TLS: a TCP peer has no credentials but its certificate.
	for _, f := range []struct{ key, v string }{{"cert", t.Cert}, {"key", t.Key}, {"client_ca", t.ClientCA}} {
		if !strings.HasPrefix(f.v, "/") {
			key := f.key
			if f.v == "" {
				key = "tcp" // a missing key has no line of its own
			}
			return &fieldError{key, fmt.Sprintf("tcp %s %q: want an absolute path (the TCP listener is mutual TLS only: cert, key and client_ca are required)", f.key, f.v)}
		}
	}
	return nil
}

func (c *Config) tenantNames() []string {
	names := make([]string, 0, len(c.Tenants))
	for n := range c.Tenants {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Principal is who a connection is, resolved from its peer credentials.
type Principal struct {
	UID, GID int
	// Tenant is the tenant the caller acts for ("" : none; an operator acts for OperatorTenant).
	Tenant   string
	Operator bool
	// Cert is the certificate name that identified a TCP client ("" on the unix socket).
	Cert string
}

// Resolve maps peer credentials to a principal: root and the operator uids and gids are
// operators; otherwise the tenant whose uids hold uid, else whose gids hold gid; else none.
func (c *Config) Resolve(uid, gid int) Principal {
	p := Principal{UID: uid, GID: gid}
	if uid == 0 || contains(c.OperatorUIDs, uid) || contains(c.OperatorGIDs, gid) {
		p.Operator, p.Tenant = true, c.OperatorTenant
		return p
	}
	for _, name := range c.tenantNames() {
		if contains(c.Tenants[name].UIDs, uid) {
			p.Tenant = name
			return p
		}
	}
	for _, name := range c.tenantNames() {
		if contains(c.Tenants[name].GIDs, gid) {
			p.Tenant = name
			return p
		}
	}
	return p
}

// ResolveCert maps a verified client certificate's names to a principal: an operator if any
// name is an operator's; else the tenant whose CertNames hold one of them; none when no tenant
// does, or when the names point at two tenants (never guess). Such a caller has no uid or gid
// (-1).
func (c *Config) ResolveCert(names []string) Principal {
	p := Principal{UID: -1, GID: -1}
	for _, n := range names {
		if slices.Contains(c.OperatorCertNames, n) {
			p.Operator, p.Tenant, p.Cert = true, c.OperatorTenant, n
			return p
		}
	}
	for _, name := range c.tenantNames() {
		for _, n := range names {
			if slices.Contains(c.Tenants[name].CertNames, n) {
				if p.Tenant != "" && p.Tenant != name {
					return Principal{UID: -1, GID: -1}
				}
				p.Tenant, p.Cert = name, n
			}
		}
	}
	return p
}

func contains(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// JSON is the configuration as a file would say it (--print-config).
func (c *Config) JSON() ([]byte, error) { return json.MarshalIndent(c, "", "  ") }
