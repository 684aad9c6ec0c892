package daemon

import (
	"context"
	"net"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/daemon/config"
)

// The caller's identity comes from the connection only: SO_PEERCRED of the unix socket, read
// once when the connection is accepted, mapped to a tenant by the daemon's configuration. Nothing
// in a request (headers, body, query) can change it.

type principalKey struct{}

// peer is what a connection's credentials say, or why they could not be read.
type peer struct {
	p   config.Principal
	err error
}

// connContext stores the peer's credentials in the connection's context.
func (s *Server) connContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return context.WithValue(ctx, principalKey{}, peer{err: errNoPeer})
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return context.WithValue(ctx, principalKey{}, peer{err: err})
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		cerr = err
	}
	if cerr != nil {
		return context.WithValue(ctx, principalKey{}, peer{err: cerr})
	}
	return context.WithValue(ctx, principalKey{}, peer{p: s.cfg.Resolve(int(cred.Uid), int(cred.Gid))})
}

var errNoPeer = unavailable("the connection's peer credentials could not be read")

// principal is the caller of a request; an error when its connection had no credentials.
func principal(ctx context.Context) (config.Principal, error) {
	p, ok := ctx.Value(principalKey{}).(peer)
	if !ok {
		return config.Principal{}, errNoPeer
	}
	return p.p, p.err
}
