// Command kctl is the command-line client of the portal's control API: log in once, then create, list,
// show, update and delete endpoints, rotate access keys and manage instances. Output is a human-readable
// table by default and JSON with -o json.
//
//	kctl login --api https://127.0.0.1:8444 --token TOKEN --ca ca.pem
//	kctl login --dev-json state/dev.json
//	kctl endpoints create --name web --type https --upstream 127.0.0.1:8080 --upstream 127.0.0.1:8081
//	kctl endpoints list -o json
//
// Connection settings come from flags (--api, --token, --ca), then the environment (KCTL_API, KCTL_TOKEN,
// KCTL_CA), then the config file that login writes ($KCTL_CONFIG, else ~/.config/kctl/config.json).
// Errors from the API print as "kctl: <message> (HTTP <status>)" and exit 1; usage errors exit 2.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := runContext(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the API or the system failed
	exitUsage = 2 // the command line is wrong
)

// usageError marks command-line mistakes; run prints the message and the command's usage and exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// run is kctl's main logic without signal handling (tests call it): it parses args, does the work
// and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdout, stderr)
}

func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	k := &kctl{ctx: ctx, stdout: stdout, stderr: stderr}
	err := k.main(args)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "kctl: %s\nRun 'kctl help' for usage.\n", ue.msg)
		return exitUsage
	}
	fmt.Fprintf(stderr, "kctl: %s\n", strings.TrimPrefix(err.Error(), "client: "))
	return exitError
}

const usageText = `kctl: the Kinesis Portal command-line client.

Usage: kctl [global flags] <command> [flags] [args]

Commands:
  login --api URL --token TOKEN [--ca FILE]    save connection settings (verifies them with whoami)
  login --dev-json PATH                         take them from portal dev's dev.json
  whoami                                        show the token's tenant
  version                                       show kctl's version

  endpoints create --name N [--type https|tcp|ip] [--upstream HOST:PORT]... [settings]
  endpoints list
  endpoints show ID
  endpoints update ID [settings] [--name N] [--upstream HOST:PORT]... [--clear-upstreams] [--clear-firewall]
  endpoints delete ID
  endpoints rotate-key ID [--grace 1h]

  instances list ID
  instances add ID HOST:PORT
  instances remove ID INSTANCE_ID

  tenants create --name N [--id ID]            (admin)
  tenants list                                  (admin)
  tokens create TENANT_ID [--name N] [--admin]  (admin)
  tokens delete TOKEN_ID                        (admin)

Endpoint settings:
  --sticky[=false] --sticky-ttl 3600|1h          sticky sessions
  --allow CIDR --deny CIDR (repeatable)         source firewall (--dest-allow/--dest-deny for ip endpoints)
  --rps N --burst N                             rate limit per access key
  --balance p2c|round_robin|source_ip
  --tls-mode plain|tls|tls+plain|mtls|passthrough --client-ca FILE    (tcp, ip)
  --proxy-protocol[=false]                      (tcp, ip)
  --max-conns N --max-conns-per-ip N            connection limits (tcp, ip; 0: unlimited)

Global flags (also accepted after the command):
  --api URL      API base URL      (env KCTL_API)
  --token TOKEN  API token         (env KCTL_TOKEN)
  --ca FILE      CA bundle (PEM)   (env KCTL_CA)
  --config FILE  config file       (env KCTL_CONFIG; default ~/.config/kctl/config.json)
  -o table|json  output format
`

// kctl holds one invocation's state.
type kctl struct {
	ctx            context.Context
	stdout, stderr io.Writer
	g              globals
}

// globals are the flags every command accepts.
type globals struct {
	api, token, ca, config, output string
}

// newFlagSet returns a flag set for a command with the global flags registered.
func (k *kctl) newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&k.g.api, "api", k.g.api, "API base URL")
	fs.StringVar(&k.g.token, "token", k.g.token, "API token")
	fs.StringVar(&k.g.ca, "ca", k.g.ca, "CA bundle file (PEM)")
	fs.StringVar(&k.g.config, "config", k.g.config, "config file")
	fs.StringVar(&k.g.output, "o", k.g.output, "output: table or json")
	fs.StringVar(&k.g.output, "output", k.g.output, "output: table or json")
	return fs
}

// parse parses args with fs, allowing flags after positional arguments, and returns the positional
// arguments. It checks that there are exactly want of them (want < 0: any number).
func (k *kctl) parse(fs *flag.FlagSet, args []string, want int, names string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(k.stdout, usageText)
				return nil, err
			}
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if k.g.output != "" && k.g.output != "table" && k.g.output != "json" {
		return nil, usagef("-o %s: want table or json", k.g.output)
	}
	if want >= 0 && len(pos) != want {
		if want == 0 {
			return nil, usagef("%s takes no arguments (got %q)", fs.Name(), pos)
		}
		return nil, usagef("usage: kctl %s %s", fs.Name(), names)
	}
	return pos, nil
}

func (k *kctl) json() bool { return k.g.output == "json" }

// main dispatches to a command.
func (k *kctl) main(args []string) error {
	fs := k.newFlagSet("kctl")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(k.stdout, usageText)
			return err
		}
		return usagef("%v", err)
	}
	args = fs.Args()
	if len(args) == 0 {
		fmt.Fprint(k.stderr, usageText)
		return usagef("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "--help":
		fmt.Fprint(k.stdout, usageText)
		return nil
	case "version":
		return k.version(rest)
	case "login":
		return k.login(rest)
	case "whoami":
		return k.whoami(rest)
	case "endpoints", "endpoint", "ep":
		return k.group("endpoints", rest, map[string]func([]string) error{
			"create": k.endpointCreate, "list": k.endpointList, "ls": k.endpointList,
			"show": k.endpointShow, "get": k.endpointShow, "update": k.endpointUpdate,
			"delete": k.endpointDelete, "rm": k.endpointDelete, "rotate-key": k.endpointRotate,
		})
	case "instances", "instance":
		return k.group("instances", rest, map[string]func([]string) error{
			"list": k.instanceList, "ls": k.instanceList, "add": k.instanceAdd,
			"remove": k.instanceRemove, "rm": k.instanceRemove,
		})
	case "tenants", "tenant":
		return k.group("tenants", rest, map[string]func([]string) error{
			"create": k.tenantCreate, "list": k.tenantList, "ls": k.tenantList,
		})
	case "tokens", "token":
		return k.group("tokens", rest, map[string]func([]string) error{
			"create": k.tokenCreate, "delete": k.tokenDelete, "rm": k.tokenDelete,
		})
	}
	return usagef("unknown command %q", cmd)
}

// group dispatches a command's subcommand.
func (k *kctl) group(name string, args []string, subs map[string]func([]string) error) error {
	if len(args) == 0 {
		return usagef("%s: missing subcommand", name)
	}
	fn, ok := subs[args[0]]
	if !ok {
		return usagef("%s: unknown subcommand %q", name, args[0])
	}
	return fn(args[1:])
}
