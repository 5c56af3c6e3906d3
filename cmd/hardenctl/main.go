// Command hardenctl runs the hardening engine without containerd: it
// explains what a profile does to a spec, lists and shows profiles,
// validates a node policy and checks what a host can enforce.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

const usage = `hardenctl: the hardened shim's engine, without containerd

Usage:
  hardenctl explain [--profile NAME] [--policy FILE] [--annotation k=v ...]
                    [--image-label k=v ...] [--label k=v ...] [--namespace-label k=v ...]
                    [--apparmor auto|yes|no]
                    [--container-id ID] [--namespace NS] [--run-dir DIR]
                    [--sandbox-runtime runc|gvisor] [--sandbox-cgroups-path P]
                    [--offline] [--report FILE] [--diff] SPEC.json|-
  hardenctl profiles list [--policy FILE]
  hardenctl profiles show [--policy FILE] NAME
  hardenctl policy validate FILE
  hardenctl report [--dir D] [--namespace NS] [-o table|json] CONTAINER
  hardenctl ` + seccompUsage + `
  hardenctl check-host [--policy FILE]
  hardenctl version
`

// errUsage is returned for a malformed command line: exit code 2.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code: 0 on success,
// 1 when the command ran and refused or failed, 2 on a usage error.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "explain":
		err = cmdExplain(args[1:], stdin, stdout, stderr)
	case "profiles":
		err = cmdProfiles(args[1:], stdout)
	case "policy":
		err = cmdPolicy(args[1:], stdout)
	case "report":
		err = cmdReport(args[1:], stdout)
	case "seccomp":
		err = cmdSeccomp(args[1:], stdout)
	case "check-host":
		err = cmdCheckHost(args[1:], stdout)
	case "version":
		err = cmdVersion(stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "hardenctl: %v\n\n%s", err, usage)
		return 2
	default:
		fmt.Fprintf(stderr, "hardenctl: %v\n", err)
		return 1
	}
}

// kvFlag collects repeated k=v flags into a map.
type kvFlag map[string]string

func (f kvFlag) String() string { return fmt.Sprint(map[string]string(f)) }

func (f kvFlag) Set(s string) error {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			if i == 0 {
				return fmt.Errorf("empty key in %q", s)
			}
			f[s[:i]] = s[i+1:]
			return nil
		}
	}
	return fmt.Errorf("want key=value, got %q", s)
}
