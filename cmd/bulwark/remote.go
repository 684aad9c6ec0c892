package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"bulwark.dev/bulwark/client/op"
)

// With --host (or BULWARK_HOST) the CLI sends its commands to bulwarkd instead of acting on a
// state root: the daemon decides who the caller is from the connection. Only the commands marked
// remote go there, with only the flags they list; any other command or flag is refused while
// --host is set, never run locally or dropped. The client is bulwark-admin's (package client):
// bulwark hands it the command as it parsed it (package op) and bulwark-admin takes this
// process's place, so that bulwark — started for every run — links neither net/http nor the
// Moby API types.

// remoteAnnotation marks a command that goes through bulwarkd; its value lists the flags it
// carries there, comma-separated.
const remoteAnnotation = "bulwark.remote-flags"

// remote is the annotation of a command that goes through bulwarkd with flags.
func remote(flags ...string) map[string]string {
	return map[string]string{remoteAnnotation: strings.Join(flags, ",")}
}

type hostKey struct{}

// useHost checks that cmd and the flags given can go through bulwarkd at host and puts the host
// into the command's context.
func useHost(cmd *cobra.Command, host string) error {
	list, ok := cmd.Annotations[remoteAnnotation]
	if !ok {
		return fmt.Errorf("'%s' cannot go through bulwarkd (--host or %s is set): run it without them on the daemon's host", strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" "), op.HostEnv)
	}
	allowed := strings.Split(list, ",")
	var refused []string
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if f.Name != "host" && !slices.Contains(allowed, f.Name) {
			refused = append(refused, "--"+f.Name)
		}
	})
	if len(refused) > 0 {
		return fmt.Errorf("'%s': %s cannot go through bulwarkd (--host or %s is set; the daemon takes the tenant and the state root from its own configuration)",
			strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" "), strings.Join(refused, ", "), op.HostEnv)
	}
	if _, err := op.ParseHost(host); err != nil {
		return err
	}
	cmd.SetContext(context.WithValue(cmd.Context(), hostKey{}, host))
	return nil
}

// remoteOf is the daemon's address when the command goes through bulwarkd, else "".
func remoteOf(cmd *cobra.Command) string {
	host, _ := cmd.Context().Value(hostKey{}).(string)
	return host
}

// sendRemote has bulwark-admin send o to bulwarkd at host in this process's place (it returns
// only on failure): its exit status is the command's.
func sendRemote(host string, o op.Op) error {
	o.Host = host
	env, err := op.Hand(&o)
	if err != nil {
		return err
	}
	return execAdmin([]string{op.Command}, env)
}
