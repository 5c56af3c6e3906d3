package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hardened-dev/hardened/internal/hostprobe"
	"github.com/hardened-dev/hardened/internal/policy"
	"github.com/hardened-dev/hardened/profiles"
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
	host := hostprobe.Probe(ctx, hostprobe.Prober{}, pol.Runtimes[profiles.RuntimeRunc].Path, pol.Runtimes[profiles.RuntimeGVisor].Path)

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tRESULT")
	for _, f := range host.Facts() {
		fmt.Fprintf(tw, "%s\t%s\n", f.Name, f.Value)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	problems := hostProblems(host, pol)
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
