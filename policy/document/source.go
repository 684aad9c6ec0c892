package document

// Source kinds reported by Info.
const (
	SourceEmbedded  = "embedded"
	SourceDirectory = "directory"
	SourceBundle    = "bundle"
)

// Info says which policy is active.
type Info struct {
	Source   string `json:"source"`
	Location string `json:"location,omitempty"`
	// Revision is the bundle's manifest revision, or a content digest for the embedded and
	// directory sources.
	Revision string `json:"revision"`
}

// SourceOptions select the policy source: a directory, a signed bundle, or (neither set) the
// embedded default.
type SourceOptions struct {
	Dir                 string
	Bundle              string
	VerificationKeyFile string
	// StateRoot is the --root state directory (its policy/ holds the bundle revision record).
	StateRoot string
}
