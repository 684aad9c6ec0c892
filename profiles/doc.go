// Package profiles holds the confinement profiles Bulwark ships (embedded data files) and the
// parsers that turn operator-supplied profiles into runtime-spec structures. It does no kernel work:
// compiling and loading a profile is the job of sandbox/internal packages.
//
// Files by owner: seccomp*.go and seccomp/*.json are the seccomp floor and the Docker-format parser;
// the LSM files (AppArmor template, Landlock defaults) live beside them in their own files.
package profiles
