package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hardened-dev/hardened/internal/hostprobe"
	"github.com/hardened-dev/hardened/internal/policy"
	"github.com/hardened-dev/hardened/profiles"
)

func checkHostCmd() *cobra.Command {
	var policyFile, out string
	c := &cobra.Command{
		Use:   "check-host",
		Short: "Print what this node can enforce; exit 3 when the policy cannot be honoured here",
		Args:  args(0, 0, "no argument"),
		RunE: func(c *cobra.Command, _ []string) error {
			return checkHost(c.OutOrStdout(), policyFile, out)
		},
	}
	policyFlag(c, &policyFile)
	outputFlag(c, &out, "table", "json", "yaml")
	return c
}

// checkHost prints what this node can enforce and fails when the policy
// cannot be honoured here.
func checkHost(w io.Writer, policyFile, format string) error {
	pol := policy.Default()
	if policyFile != "" && policyFile != builtinPolicy {
		var err error
		if pol, err = policy.Load(policyFile); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	host := hostprobe.Probe(ctx, hostprobe.Prober{}, pol.Runtimes[profiles.RuntimeRunc].Path, pol.Runtimes[profiles.RuntimeGVisor].Path)
	problems := hostProblems(host, pol)
	type fact struct{ Name, Value string }
	var facts []fact
	for _, f := range host.Facts() {
		facts = append(facts, fact{f.Name, f.Value})
	}
	err := emit(w, format, struct {
		Facts    []fact   `json:"facts"`
		Problems []string `json:"problems"`
	}{facts, append([]string{}, problems...)}, func() error {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CHECK\tRESULT")
		for _, f := range facts {
			fmt.Fprintf(tw, "%s\t%s\n", f.Name, f.Value)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(problems) == 0 {
			fmt.Fprintln(w, "\nok: this host can honour the policy")
			return nil
		}
		fmt.Fprintln(w, "\nthe policy cannot be honoured on this host:")
		for _, p := range problems {
			fmt.Fprintf(w, "  - %s\n", p)
		}
		return nil
	})
	if err != nil || len(problems) == 0 {
		return err
	}
	return fmt.Errorf("%w: %d problem(s) on this host", errRefused, len(problems))
}

// hostProblems lists why the policy cannot be honoured on a host with
// the facts h: runc missing or vulnerable; AppArmor required but absent; no
// seccomp; no pids controller; runsc missing while the policy sends
// workloads to gVisor (strict_runtime or a route). Empty: nothing stands
// in the way.
func hostProblems(h *hostprobe.Host, p *policy.Policy) []string {
	var out []string
	if h.RuncErr != nil {
		out = append(out, "runc: "+h.RuncErr.Error())
	}
	if !h.Seccomp {
		out = append(out, "the kernel has no seccomp filter support: no syscall filter can be enforced")
	}
	if p.AppArmor == profiles.AppArmorRequired && !h.AppArmor {
		out = append(out, fmt.Sprintf("policy apparmor = %q, but AppArmor is not enabled on this host: every container will be refused", profiles.AppArmorRequired))
	}
	if !h.PidsController {
		out = append(out, fmt.Sprintf("no pids cgroup controller (cgroup v%d): pids limits cannot be enforced", h.CgroupVersion))
	}
	if _, configured := p.Runtimes[profiles.RuntimeGVisor]; configured && p.UsesRuntime(profiles.RuntimeGVisor) {
		if why := gvisorUsers(p); h.RunscErr != nil {
			out = append(out, fmt.Sprintf("runsc: %v (the policy sends workloads to gvisor: %s)", h.RunscErr, why))
		} else if h.Runsc == nil {
			out = append(out, fmt.Sprintf("runsc was not probed (the policy sends workloads to gvisor: %s)", why))
		}
	}
	return out
}

func gvisorUsers(p *policy.Policy) string {
	var why []string
	if p.StrictRuntime == profiles.RuntimeGVisor {
		why = append(why, "strict_runtime")
	}
	for i, r := range p.Routes {
		if r.Runtime == profiles.RuntimeGVisor {
			why = append(why, fmt.Sprintf("route #%d", i+1))
		}
	}
	return strings.Join(why, ", ")
}
