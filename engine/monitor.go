package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// The monitor of a detached container is this same binary re-executed (argv, given by the
// caller: the hidden subcommand that calls ServeMonitor). It gets the plan on stdin, a status
// pipe as descriptor 3 and the plan's bind sources from descriptor 4 on; it reports once the
// workload runs (or creation failed) and then supervises it (RunDetached).
const (
	monitorStatusFD = 3
	monitorBindFD   = 4
)

// monitorStatus is what the monitor reports to the process that started it.
type monitorStatus struct {
	ID    string `json:"id,omitempty"`
	Error string `json:"error,omitempty"`
	Code  int    `json:"code,omitempty"`
}

// MonitorError is a failure the monitor reported: the container was not started.
type MonitorError struct {
	Msg  string
	Code int // the exit status ExitStatus gave the failure in the monitor
}

func (e *MonitorError) Error() string { return e.Msg }

// SpawnMonitor starts the monitor of an allowed plan (argv: the command that runs
// ServeMonitor, in its own session so that it outlives the caller and its terminal), hands it
// the plan and returns once the workload runs, with the container id; a failure to create is a
// *MonitorError.
func SpawnMonitor(plan *Plan, argv []string) (string, error) {
	b, binds, err := EncodePlan(plan)
	if err != nil {
		return "", err
	}
	defer func() {
		for _, f := range binds {
			f.Close()
		}
	}()
	planR, planW, err := os.Pipe()
	if err != nil {
		return "", err
	}
	defer planW.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		planR.Close()
		return "", err
	}
	defer statusR.Close()
	m := exec.Command(argv[0], argv[1:]...)
	m.Stdin = planR
	m.ExtraFiles = append([]*os.File{statusW}, binds...)
	m.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = m.Start()
	planR.Close()
	statusW.Close()
	if err != nil {
		return "", fmt.Errorf("start monitor: %w", err)
	}
	go func() {
		planW.Write(b)
		planW.Close()
	}()
	var st monitorStatus
	if err := json.NewDecoder(statusR).Decode(&st); err != nil {
		m.Wait()
		return "", fmt.Errorf("monitor exited without starting the container: %w", err)
	}
	m.Process.Release()
	if st.Error != "" {
		return "", &MonitorError{Msg: st.Error, Code: st.Code}
	}
	return st.ID, nil
}

// ServeMonitor is the monitor's body (see SpawnMonitor): it opens the engine, reads the plan,
// starts the container, reports, and supervises it until it exits.
func ServeMonitor(open func() (*Engine, error), planIn io.Reader) error {
	status := os.NewFile(monitorStatusFD, "status")
	report := func(st monitorStatus) {
		if status != nil {
			json.NewEncoder(status).Encode(st)
			status.Close()
			status = nil
		}
	}
	fail := func(err error) error {
		report(monitorStatus{Error: err.Error(), Code: ExitStatus(err)})
		return err
	}
	if status == nil {
		return errors.New("monitor: no status descriptor")
	}
	b, err := io.ReadAll(planIn)
	if err != nil {
		return fail(err)
	}
	e, err := open()
	if err != nil {
		return fail(err)
	}
	defer e.Close()
	plan, err := e.DecodePlan(b, func(i int) *os.File {
		return os.NewFile(uintptr(monitorBindFD+i), "bind source")
	})
	if err != nil {
		return fail(err)
	}
	// The monitor outlives the terminal and the CLI that started it.
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE)
	_, err = e.RunDetached(plan, func(r *Running, err error) {
		if err != nil {
			fail(err)
			return
		}
		report(monitorStatus{ID: r.ID()})
	})
	return err
}
