package sandbox

// BuildID is this binary's build stamp (empty when unstamped): the helpers a runtime executes
// (bulwark-init, bulwark-policy) serve only a runtime of their own build.
func BuildID() string { return buildID }
