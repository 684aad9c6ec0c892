package seccomp

// libseccomp is the version of the libseccomp the compiler helper bulwark-seccomp is linked
// against, stamped by `make build` from the same libseccomp-dev it links (-ldflags -X
// bulwark.dev/bulwark/sandbox/internal/seccomp.libseccomp=..., pkg-config --modversion), so that
// a binary that does not link libseccomp knows it: it is part of every cache entry's key (another
// libseccomp may compile a profile to another program) and what `bulwark-runc features` reports.
// The helper refuses to compile when the library it links is not that version, and Helper
// refuses a program whose entry names another: the key never names a library that did not
// compile the program. Empty when unstamped (go build, go test): such a build's keys name no
// version, and its helper's answers are taken whatever library they name.
var libseccomp string

// LibseccompVersion is the libseccomp version this build's compiler links ("" when unstamped).
func LibseccompVersion() string { return libseccomp }
