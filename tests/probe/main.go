// Command bulwark-probe reports, as one JSON document on stdout, what a process sees of its own
// confinement from inside a sandbox: ids and id maps, capability sets, no_new_privs, seccomp,
// namespaces, mounts, open file descriptors, rlimits, cgroup, Landlock, writable paths and the errno
// of operations the floor forbids. Integration tests run it inside real sandboxes and assert on it.
//
// It is static (CGO_ENABLED=0) so it runs in a busybox rootfs. Usage:
//
//	probe [section ...]      sections: all (default), ids, caps, status, ns, net, mounts, fds, cwd,
//	                         host, rlimits, cgroup, landlock, writable, masked, dev, etc, forbidden, abi, owners, env
//	probe shocker            Shocker (open_by_handle_at) breakout attempt
//	probe exe-watch SECONDS  CVE-2019-5736: watch for foreign processes and try to open their exe for write
//	probe exec-from DIR...   copy this binary into each DIR and try to execute the copy (W^X)
//	probe memfd-exec         copy this binary into a memfd and try to execute it (bytes not in the image)
//	probe tcp PORT...        bind (and listen on) then connect to each TCP port on 127.0.0.1
//	probe unix-listen NAME   listen on the abstract unix socket @NAME, accepting until killed
//	probe unix-connect NAME  connect to the abstract unix socket @NAME; print "ok" or the errno name
//	probe abi-child          (internal) one i386 system call, for the abi section
//	probe alloc MIB          touch MIB mebibytes of memory (for memory limit enforcement)
//	probe spawn N            start N sleeping children (for the pids limit), then kill them
//	probe sleep SECONDS      sleep, then report "all" (a long-running init for exec/pause tests)
//	probe exit CODE          exit with CODE
//
// Sections that write (writable, forbidden) only ever create and remove their own uniquely named
// files and never write into kernel control files: they are safe, but meant for sandboxes.
package main

import (
	"bulwark.dev/bulwark/tests/internal/report"

	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"
)

var sections = []string{"ids", "caps", "status", "ns", "net", "mounts", "fds", "cwd", "host",
	"rlimits", "cgroup", "landlock", "writable", "masked", "dev", "etc", "forbidden", "abi", "owners", "env"}

func main() {
	args := os.Args[1:]
	r := &report.Report{}
	if len(args) > 0 {
		switch args[0] {
		case "shocker":
			r.Sections = []string{"shocker"}
			r.Shocker = shocker()
			emit(r)
			return
		case "exe-watch":
			r.Sections = []string{"exeWatch"}
			r.ExeWatch = exeWatch(seconds(args))
			emit(r)
			return
		case "exec-from":
			if len(args) < 2 {
				fatalf("exec-from needs a directory")
			}
			r.Sections = []string{"execFrom"}
			for _, d := range args[1:] {
				r.ExecFrom = append(r.ExecFrom, *execFrom(d))
			}
			emit(r)
			return
		case "memfd-exec":
			r.Sections = []string{"memfdExec"}
			r.MemfdExec = memfdExec()
			emit(r)
			return
		case "tcp":
			r.Sections = []string{"tcp"}
			r.TCP = tcp(args[1:])
			emit(r)
			return
		case "unix-listen":
			if err := unixListen(arg(args, 1)); err != nil {
				fatalf("unix-listen: %v", err)
			}
			return
		case "unix-connect":
			if err := unixConnect(arg(args, 1)); err != nil {
				fmt.Println(errName(err))
				os.Exit(1)
			}
			fmt.Println("ok")
			return
		case "abi-child":
			// Run by the abi section in a child, since seccomp may kill the whole process.
			fmt.Print(foreignABI())
			return
		case "alloc":
			// Touch N MiB so the memory cgroup must account them; exits 0 if it survives.
			n, _ := strconv.Atoi(arg(args, 1))
			hold := make([][]byte, 0, n)
			for i := 0; i < n; i++ {
				b := make([]byte, 1<<20)
				for j := range b {
					b[j] = 1
				}
				hold = append(hold, b)
			}
			fmt.Println(len(hold))
			return
		case "spawn":
			r.Sections = []string{"spawn"}
			n, _ := strconv.Atoi(arg(args, 1))
			r.Spawn = spawn(n)
			emit(r)
			return
		case "sleep":
			time.Sleep(seconds(args))
			args = nil
		case "exit":
			code, _ := strconv.Atoi(arg(args, 1))
			os.Exit(code)
		case "true":
			return
		}
	}
	if len(args) == 0 || (len(args) == 1 && args[0] == "all") {
		args = sections
	}
	// The fd listing runs first so that no descriptor the probe (or the Go runtime's poller) opens
	// itself is counted.
	for _, s := range args {
		if s == "fds" {
			gather(r, s)
		}
	}
	for _, s := range args {
		if s != "fds" {
			gather(r, s)
		}
	}
	emit(r)
}

// gather fills one section.
func gather(r *report.Report, s string) {
	r.Sections = append(r.Sections, s)
	var err error
	switch s {
	case "ids":
		r.IDs, err = ids()
	case "caps":
		r.Caps, err = caps()
	case "status":
		r.Status, err = status()
	case "ns":
		r.NS, err = namespaces()
	case "net":
		r.Net, err = interfaces()
	case "mounts":
		r.Mounts, err = mounts()
	case "fds":
		r.FDs, err = fds()
	case "cwd":
		r.Cwd = cwd()
	case "host":
		r.Host, err = host()
	case "rlimits":
		r.Rlimits = rlimits()
	case "cgroup":
		r.Cgroup, err = cgroup()
	case "landlock":
		r.Landlock = landlock()
	case "writable":
		r.Writable = writable()
	case "masked":
		r.Masked = masked()
	case "dev":
		r.Dev, err = dev()
	case "etc":
		r.Etc = etc()
	case "forbidden":
		r.Forbidden = forbidden()
	case "abi":
		r.ABI = abi()
	case "owners":
		r.Owners = owners()
	case "env":
		r.Env = os.Environ()
	default:
		err = fmt.Errorf("unknown section %q (known: %v)", s, sections)
	}
	if err != nil {
		if r.Errors == nil {
			r.Errors = map[string]string{}
		}
		r.Errors[s] = err.Error()
	}
}

func emit(r *report.Report) {
	sort.Strings(r.Sections)
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(r); err != nil {
		fatalf("encode report: %v", err)
	}
}

func arg(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}

func seconds(args []string) time.Duration {
	f, err := strconv.ParseFloat(arg(args, 1), 64)
	if err != nil {
		fatalf("%s needs a number of seconds", args[0])
	}
	return time.Duration(f * float64(time.Second))
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "probe: "+format+"\n", a...)
	os.Exit(2)
}
