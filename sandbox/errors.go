package sandbox

import "bulwark.dev/bulwark/sandbox/setup"

// InitError is a failure inside the container's init or exec process (see setup.InitError).
type InitError = setup.InitError

// Exit statuses for a command that could not be run (see setup.StatusCannotExecute).
const (
	StatusCannotExecute = setup.StatusCannotExecute
	StatusNotFound      = setup.StatusNotFound
)

// CommandStatus returns the exit status for err when it is the failure to find or execute the
// process's command (StatusNotFound or StatusCannotExecute), and false for any other error.
func CommandStatus(err error) (int, bool) { return setup.CommandStatus(err) }
