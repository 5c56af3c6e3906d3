// Command hardenctl runs the hardening engine without containerd: it
// explains what a profile does to a spec, lists and shows profiles,
// validates a node policy, prints kept reports, works with learned seccomp
// profiles and checks what a host can enforce.
//
// The command line is cobra's (as kubectl's and crictl's peers): flags may
// come anywhere, every command has --help (exit 0), and `hardenctl
// completion bash|zsh|fish|powershell` prints shell completion. Exit codes
// let CI gate on the outcome: 0 done, 1 an internal error (the command
// could not do its work), 2 invalid input (the command line, a spec, a
// policy or a profile), 3 refused (the spec will not run; the host cannot
// honour the policy).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/hardened-dev/hardened/internal/policy"
	"github.com/hardened-dev/hardened/profiles"
)

// Exit codes.
const (
	exitOK       = 0
	exitInternal = 1
	exitInvalid  = 2
	exitRefused  = 3
)

var (
	// errUsage is a malformed command line; errInvalid other input that
	// cannot be used (both exit 2).
	errUsage   = errors.New("usage")
	errInvalid = errors.New("invalid input")
	// errRefused is an outcome the command reports as a refusal (exit 3).
	errRefused = errors.New("refused")
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	code := exitCode(err)
	if err != nil {
		fmt.Fprintf(stderr, "hardenctl: %v\n", err)
		if errors.Is(err, errUsage) {
			fmt.Fprintln(stderr, "(hardenctl --help, or hardenctl COMMAND --help, says what it takes)")
		}
	}
	return code
}

// exitCode classifies an error: invalid input, a refusal, or an internal
// error.
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errUsage), errors.Is(err, errInvalid), errors.Is(err, policy.ErrInvalidPolicy), errors.Is(err, profiles.ErrInvalidProfile),
		errors.Is(err, profiles.ErrUnknownProfile), errors.Is(err, errdefs.ErrInvalidArgument):
		return exitInvalid
	case errors.Is(err, errRefused), errors.Is(err, errdefs.ErrFailedPrecondition):
		return exitRefused
	}
	return exitInternal
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "hardenctl",
		Short: "The hardened shim's engine, without containerd",
		Long: "hardenctl runs containerd-shim-hardened-v2's decision without containerd.\n\n" +
			"Exit codes: 0 done, 1 internal error, 2 invalid input, 3 refused.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error {
			_ = c.Help()
			return fmt.Errorf("%w: a command is required", errUsage)
		},
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return fmt.Errorf("%w: %v", errUsage, err) })
	root.AddCommand(explainCmd(), profilesCmd(), policyCmd(), reportCmd(), seccompCmd(), checkHostCmd(), nodeCmd(), versionCmd())
	return root
}

// groupCmd is a command that only holds subcommands: alone, it prints its
// help and is a usage error.
func groupCmd(use, short, subs string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args(0, 0, "a subcommand: "+subs),
		RunE: func(c *cobra.Command, _ []string) error {
			_ = c.Help()
			return fmt.Errorf("%w: %s takes %s", errUsage, use, subs)
		},
	}
}

// args returns a validator requiring between min and max (-1: any)
// positional arguments, named in the error.
func args(min, max int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, a []string) error {
		if len(a) < min || max >= 0 && len(a) > max {
			return fmt.Errorf("%w: %s takes %s", errUsage, c.CommandPath(), what)
		}
		return nil
	}
}

// policyFlag adds --policy, defaulting to the node's policy file as the
// shim reads it ($HARDENED_POLICY or /etc/hardened/policy.toml, when it
// exists); "builtin" is the built-in policy.
func policyFlag(c *cobra.Command, p *string) {
	c.Flags().StringVar(p, "policy", policy.NodeFile(),
		"node policy file; \"builtin\" for the built-in policy (default: the shim's, "+policy.NodePath+" or $"+policy.NodePathEnv+", when it exists)")
}

// outputFlag adds -o with the formats given, the first the default.
func outputFlag(c *cobra.Command, p *string, formats ...string) {
	c.Flags().StringVarP(p, "output", "o", formats[0], "output format: "+strings.Join(formats, ", "))
	c.PreRunE = chain(c.PreRunE, func(*cobra.Command, []string) error {
		for _, f := range formats {
			if *p == f {
				return nil
			}
		}
		return fmt.Errorf("%w: -o %q is not one of %s", errUsage, *p, strings.Join(formats, ", "))
	})
}

func chain(a, b func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
	if a == nil {
		return b
	}
	return func(c *cobra.Command, args []string) error {
		if err := a(c, args); err != nil {
			return err
		}
		return b(c, args)
	}
}

// emit writes v as JSON or YAML, or calls table.
func emit(w io.Writer, format string, v any, table func() error) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		data, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	return table()
}

// kvFlag collects repeated k=v flags into a map.
type kvFlag map[string]string

func (f kvFlag) String() string { return fmt.Sprint(map[string]string(f)) }

func (f kvFlag) Type() string { return "key=value" }

func (f kvFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	switch {
	case !ok:
		return fmt.Errorf("want key=value, got %q", s)
	case k == "":
		return fmt.Errorf("empty key in %q", s)
	}
	f[k] = v
	return nil
}
