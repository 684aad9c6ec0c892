package bench

// The probe registry: every probe a control of controls.json may name, by name (never a shell
// string). A control naming another is refused when the catalog loads.

// hostProbe checks something of the host (or the engine's state) once.
type hostProbe func(e *Env, c *Control) Outcome

// containerProbe checks one running container through the kernel.
type containerProbe func(e *Env, c *Control, ct *Container) Outcome

// hostProbes and containerProbes are every probe a control may name.
var (
	hostProbes      map[string]hostProbe
	containerProbes map[string]containerProbe
)

func init() {
	hostProbes = map[string]hostProbe{
		"host.userns":          probeUserNamespaces,
		"host.seccomp":         probeSeccomp,
		"host.landlock":        probeLandlock,
		"host.mac":             probeMAC,
		"host.cgroup":          probeCgroup,
		"host.stateroot.fs":    probeStateRootFS,
		"host.audit.rules":     probeAuditRules,
		"engine.policy":        probePolicy,
		"engine.policy.signed": probePolicySigned,
		"engine.policy.bundle": probePolicyRevision,
		"engine.policy.limits": probePolicyLimits,
		"engine.trust.pinned":  probeTrustPinned,
		"engine.daemon.socket": probeDaemonSocket,
		"files.mode":           probeFileModes,
		"images.signed":        probeImagesSigned,
		"images.user":          probeImagesUser,
		"images.setid":         probeImagesSetID,
		"images.count":         probeImagesCount,
		"ops.audit.verify":     probeAuditVerify,
		"ops.audit.checkpoint": probeAuditCheckpoint,
		"ops.trust.expiry":     probeTrustExpiry,
		"ops.containers.count": probeContainersCount,
		"runtime.discovery":    probeDiscovery,
	}
	containerProbes = map[string]containerProbe{
		"runtime.userns":      probeContainerUserns,
		"runtime.namespaces":  probeContainerNamespaces,
		"runtime.caps.eff":    probeCapsEffective,
		"runtime.caps.bnd":    probeCapsBounding,
		"runtime.nnp":         probeNoNewPrivs,
		"runtime.seccomp":     probeContainerSeccomp,
		"runtime.rootfs.ro":   probeRootReadOnly,
		"runtime.masked":      probeMaskedPaths,
		"runtime.readonly":    probeReadonlyPaths,
		"runtime.propagation": probePropagation,
		"runtime.sockets":     probeEngineSockets,
		"runtime.memory":      probeMemoryLimit,
		"runtime.pids":        probePidsLimit,
		"runtime.rlimits":     probeRlimits,
		"runtime.mac":         probeContainerMAC,
	}
}
