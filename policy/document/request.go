// Package document is the part of the policy that evaluates nothing: the request document
// (bulwark.dev/run/v1) built from an effective spec, the decision returned on it, its digest, the
// accepted bundle revision and the decision cache's lookup. Package policy evaluates Rego (OPA) on
// these types and re-exports them; a caller that only builds requests and serves cached decisions
// (bulwark-runc's start path) imports this package alone and does not link OPA.
package document

// APIVersion is the version of the request document the policy receives as input.
const APIVersion = "bulwark.dev/run/v1"

// Operation is what the caller wants to do.
type Operation string

// The operations a request can ask for.
const (
	OpCreate Operation = "create"
	OpRun    Operation = "run"
	OpExec   Operation = "exec"
)

// Request is the policy input document. It describes what will really run: the effective spec
// after the floor, plus who asks, for which tenant and with which image. The JSON Schema is
// policy/schema/run-v1.schema.json; keep both in step (TestSchemaMatchesTypes checks they agree), and
// regenerate its encoder after a change (TestEncoderGenerated: digest_gen.go).
type Request struct {
	APIVersion string    `json:"apiVersion"`
	Tenant     string    `json:"tenant"`
	Identity   Identity  `json:"identity"`
	Operation  Operation `json:"operation"`
	// StateRoot is the runtime's active persistent state root, resolved like bind sources: the
	// default policy never lets it (or anything below or above it) be bind-mounted.
	StateRoot string `json:"stateRoot"`
	// Privileged records that the caller asked for a privileged sandbox (always denied by the
	// default policy; the floor has no such mode).
	Privileged   bool                 `json:"privileged"`
	Image        *Image               `json:"image,omitempty"`
	Process      Process              `json:"process"`
	Capabilities []string             `json:"capabilities"`
	Mounts       []Mount              `json:"mounts"`
	Namespaces   map[string]Namespace `json:"namespaces"`
	Network      Network              `json:"network"`
	// Publish are the ports published on the host, through Network.Name.
	Publish []Publish `json:"publish,omitempty"`
	// Hooks are the spec's OCI hooks the runtime would run on the host (bulwark-runc), each
	// with the file it would execute and that file's digest.
	Hooks []Hook `json:"hooks,omitempty"`
	// Egress is what the sandbox asks to open connections to through Network.Name.
	Egress *Egress `json:"egress,omitempty"`
	// Bandwidth is the rate limit the request asks for on its network (nil: none asked).
	Bandwidth *Bandwidth `json:"bandwidth,omitempty"`
	// Pod is the Kubernetes pod the sandbox belongs to, as the runtime proved it; nil outside
	// a pod.
	Pod *Pod `json:"pod,omitempty"`
	// DockerVolumes are the binds whose source is a Docker named volume of the data root the
	// runtime was told dockerd keeps (bulwark-runc --docker-root), and what each holds.
	DockerVolumes []DockerVolume    `json:"dockerVolumes,omitempty"`
	Seccomp       Seccomp           `json:"seccomp"`
	MAC           MAC               `json:"mac"`
	Rootfs        Rootfs            `json:"rootfs"`
	Resources     Resources         `json:"resources"`
	Devices       []Device          `json:"devices"`
	DeviceRules   []DeviceRule      `json:"deviceRules"`
	Sysctls       map[string]string `json:"sysctls"`
	Rlimits       []Rlimit          `json:"rlimits"`
	Annotations   map[string]string `json:"annotations"`
	Raises        []Raise           `json:"raises"`
}

// Pod names a sandbox's pod: Sandbox is the id of its sandbox container (the runtime proved it:
// the sandbox itself, or the pod whose namespaces the container joins), UID the pod's uid as the
// CRI caller annotates it (empty if absent or malformed).
type Pod struct {
	Sandbox string `json:"sandbox"`
	UID     string `json:"uid,omitempty"`
}

// DockerVolume is a bind source that is exactly <docker data root>/volumes/NAME/_data. State is
// "empty" (no entries, not yet the storage range's), "filled" (entries dockerd or another
// runtime put there) or "adopted" (already owned by the storage range); the runtime moves an
// allowed writable one into the storage range before the container is created.
type DockerVolume struct {
	Source string `json:"source"`
	Name   string `json:"name"`
	State  string `json:"state"`
}

// Identity is who asks: a host uid/gid now, the daemon's authenticated principal later.
type Identity struct {
	UID       uint32 `json:"uid"`
	GID       uint32 `json:"gid"`
	Principal string `json:"principal,omitempty"`
}

// Image describes the image the rootfs comes from, when there is one.
type Image struct {
	Reference  string `json:"reference"`
	Digest     string `json:"digest"`
	Verified   bool   `json:"verified"`
	SignerRole string `json:"signerRole,omitempty"`
}

// Process is the process to run. Env holds variable NAMES only: values may be secrets and
// must never reach policy input, logs or audit records.
type Process struct {
	Args            []string `json:"args"`
	User            User     `json:"user"`
	Cwd             string   `json:"cwd"`
	Env             []string `json:"env"`
	Terminal        bool     `json:"terminal"`
	NoNewPrivileges bool     `json:"noNewPrivileges"`
}

// User is the process user inside the sandbox.
type User struct {
	UID            uint32   `json:"uid"`
	GID            uint32   `json:"gid"`
	AdditionalGids []uint32 `json:"additionalGids,omitempty"`
}

// Mount is one mount. For binds, Source is the host path after symlinks and ".." were
// resolved, so policy judges what will really be mounted. Bind and ReadOnly summarise
// Type and Options (the default policy re-derives them and does not trust these).
type Mount struct {
	Type        string   `json:"type"`
	Source      string   `json:"source"`
	Destination string   `json:"destination"`
	Options     []string `json:"options"`
	ReadOnly    bool     `json:"readOnly"`
	Bind        bool     `json:"bind"`
}

// Namespace describes one namespace type (the key in Request.Namespaces: "pid", "network", …).
// Shared means the sandbox would not get a new one: absent from the spec (the host's) or
// joined by Path.
type Namespace struct {
	Shared bool   `json:"shared"`
	Path   string `json:"path,omitempty"`
	// Join is what the runtime's floor proved a joined namespace is (Join.Kind): "pod" or
	// "netns"; empty for any other (refused by the floor whatever policy says).
	Join string `json:"join,omitempty"`
	Pod  string `json:"pod,omitempty"`
}

// Network is the network mode: "private" (new namespace), "host" or "joined"; Name is the
// tenant's network a private namespace is attached to (empty: none, loopback only).
type Network struct {
	Mode string `json:"mode"`
	Name string `json:"name,omitempty"`
}

// Publish is one port the request publishes on the host (`-p`), the host address always
// explicit (the engine's default is 127.0.0.1).
type Publish struct {
	HostIP        string `json:"hostIP"`
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
}

// Hook is one OCI hook the runtime would run on the host, as the caller, before or after the
// container's process. Path is as the spec names it (Docker's is /proc/<dockerd pid>/exe);
// Resolved is the real path of the file opened there and SHA256 the digest of its content,
// which is what runs: the runtime executes the very descriptor it hashed.
type Hook struct {
	// Phase is the hook's place in the lifecycle: prestart, createRuntime or poststart, poststop.
	Phase    string   `json:"phase"`
	Path     string   `json:"path"`
	Resolved string   `json:"resolved"`
	SHA256   string   `json:"sha256"`
	Args     []string `json:"args"`
}

// Egress is the egress a request asks for: Mode "default" (it names none: the tenant's, which
// the decision's constraints carry), "none", "network", "allowlist" (to Allow) or "any".
type Egress struct {
	Mode  string       `json:"mode"`
	Allow []EgressRule `json:"allow,omitempty"`
}

// Bandwidth is a container's network rate limits in bits per second, each direction as seen
// from the container (ingress: what it receives); 0 means no limit asked in that direction.
type Bandwidth struct {
	IngressRate uint64 `json:"ingressRate"`
	EgressRate  uint64 `json:"egressRate"`
}

// EgressRule is one allowlisted destination: an IPv4 prefix, a protocol ("any", "tcp", "udp")
// and a port range (1-65535 for every port).
type EgressRule struct {
	CIDR     string `json:"cidr"`
	Protocol string `json:"protocol"`
	FromPort int    `json:"fromPort"`
	ToPort   int    `json:"toPort"`
}

// Seccomp names the profile loaded in addition to the floor's. Profile is "unconfined" when
// the spec has none.
type Seccomp struct {
	Profile       string `json:"profile"`
	Digest        string `json:"digest"`
	DefaultAction string `json:"defaultAction"`
}

// MAC is the mandatory access control layer and its label or profile.
type MAC struct {
	Layer   string `json:"layer"`
	Label   string `json:"label,omitempty"`
	Profile string `json:"profile,omitempty"`
}

// Rootfs describes the root filesystem.
type Rootfs struct {
	ReadOnly bool `json:"readOnly"`
}

// Resources are the cgroup limits; nil means not set.
type Resources struct {
	MemoryLimit *int64  `json:"memoryLimit,omitempty"`
	PidsLimit   *int64  `json:"pidsLimit,omitempty"`
	CPUShares   *uint64 `json:"cpuShares,omitempty"`
	CPUQuota    *int64  `json:"cpuQuota,omitempty"`
	CPUPeriod   *uint64 `json:"cpuPeriod,omitempty"`
}

// Device is a device node created in the sandbox.
type Device struct {
	Type  string `json:"type"`
	Path  string `json:"path"`
	Major int64  `json:"major"`
	Minor int64  `json:"minor"`
}

// DeviceRule is a device cgroup rule; Major/Minor -1 mean any.
type DeviceRule struct {
	Allow  bool   `json:"allow"`
	Type   string `json:"type"`
	Major  int64  `json:"major"`
	Minor  int64  `json:"minor"`
	Access string `json:"access"`
}

// Rlimit is one POSIX resource limit.
type Rlimit struct {
	Type string `json:"type"`
	Hard uint64 `json:"hard"`
	Soft uint64 `json:"soft"`
}

// Raise records where the floor changed what the spec asked for (same shape as sandbox.Raise,
// kept separate so policy does not import the runtime).
type Raise struct {
	Field string `json:"field"`
	From  string `json:"from"`
	To    string `json:"to"`
}
