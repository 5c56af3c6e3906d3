package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/hardened-dev/hardened/internal/hostprobe"
	"github.com/hardened-dev/hardened/internal/policy"
)

// cmdCheckHost prints what this node can enforce and fails when the policy
// cannot be honoured here.
func cmdCheckHost(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("check-host", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	policyFile := fs.String("policy", "", "node policy file (default: the built-in policy)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: check-host takes no argument", errUsage)
	}
	pol := policy.Default()
	if *policyFile != "" {
		var err error
		if pol, err = policy.Load(*policyFile); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	host := hostprobe.Probe(ctx, pol)

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tRESULT")
	for _, f := range host.Facts() {
		fmt.Fprintf(tw, "%s\t%s\n", f.Name, f.Value)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	problems := host.Problems(pol)
	if len(problems) == 0 {
		fmt.Fprintln(stdout, "\nok: this host can honour the policy")
		return nil
	}
	fmt.Fprintln(stdout, "\nthe policy cannot be honoured on this host:")
	for _, p := range problems {
		fmt.Fprintf(stdout, "  - %s\n", p)
	}
	return fmt.Errorf("%d problem(s) on this host", len(problems))
}
