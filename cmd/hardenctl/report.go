package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hardened-dev/hardened/internal/decide"
	"github.com/hardened-dev/hardened/internal/reports"
)

func reportCmd() *cobra.Command {
	var dir, ns, out string
	c := &cobra.Command{
		Use:   "report CONTAINER",
		Short: "Print a container's kept hardening report (after the container is gone)",
		Long: "report prints what the shim decided and changed for a container, or why it refused it, " +
			"with its seccomp denials and where it wrote, from the reports the shim keeps.",
		Args: args(1, 1, "one container ID"),
		RunE: func(c *cobra.Command, a []string) error {
			id := a[0]
			n, err := reportNamespace(dir, ns, id)
			if err != nil {
				return err
			}
			r, err := reports.Read(dir, n, id)
			if err != nil {
				return err
			}
			return emit(c.OutOrStdout(), out, r, func() error { return writeReport(c.OutOrStdout(), n, r) })
		},
	}
	c.Flags().StringVar(&dir, "dir", reports.Dir(), "the reports directory")
	c.Flags().StringVar(&ns, "namespace", "", "the container's containerd namespace (default: the one that holds its report)")
	outputFlag(c, &out, "table", "json", "yaml")
	return c
}

// reportNamespace is ns, or when "" the namespace that holds container
// id's kept report.
func reportNamespace(dir, ns, id string) (string, error) {
	if ns != "" {
		return ns, nil
	}
	found, err := filepath.Glob(filepath.Join(dir, "*", id+".json"))
	if err != nil {
		return "", err
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no kept report of container %s under %s", id, dir)
	case 1:
		return filepath.Base(filepath.Dir(found[0])), nil
	}
	return "", fmt.Errorf("container %s has reports in several namespaces (%s): pass --namespace", id, strings.Join(found, ", "))
}

func writeReport(w io.Writer, ns string, r *decide.Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("container", ns+"/"+r.ContainerID)
	if r.Refused != "" && r.Profile == "" {
		row("refused", r.Refused)
		return tw.Flush()
	}
	row("profile", fmt.Sprintf("%s (%s)", r.Profile, r.ProfileSource))
	row("runtime", fmt.Sprintf("%s (%s)", r.Runtime, r.RuntimeSource))
	row("mode", string(r.Mode))
	row("policy", r.Policy)
	row("refused", r.Refused)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d changes\n", len(r.Changes))
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tFIELD\tBEFORE\tAFTER")
	for _, c := range r.Changes {
		before, after := c.Before, c.After
		if strings.HasPrefix(c.Field, "process.env") {
			before, after = "(hidden)", "(hidden)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Rule, c.Field, before, after)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, g := range r.NotEnforced {
		fmt.Fprintf(w, "not enforced: %s: %s\n", g.Rule, g.Reason)
	}
	for _, p := range r.Pinned {
		fmt.Fprintf(w, "pinned: %s %s\n", p.Field, p.Source)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	writeSeccomp(w, r.Seccomp)
	if wr := r.Written; wr != nil {
		switch {
		case wr.Unavailable != "":
			fmt.Fprintf(w, "\nwritten outside %s's scratch: not known: %s\n", wr.Profile, wr.Unavailable)
		case len(wr.Paths) == 0:
			fmt.Fprintf(w, "\nwritten outside %s's scratch: nothing (it runs with %s's read-only rootfs as it is)\n", wr.Profile, wr.Profile)
		default:
			more := ""
			if wr.Truncated {
				more = " (and more)"
			}
			fmt.Fprintf(w, "\nwritten outside %s's scratch, read-only under it%s: %s\n  declare them: image label hardened.dev/scratch=%q, or the policy's scratch\n",
				wr.Profile, more, strings.Join(wr.Paths, ", "), strings.Join(wr.Paths, ","))
		}
	}
	if a := r.Audit; a != nil {
		fmt.Fprintf(w, "\naudited, not applied: profile %s (%s)\n", a.Profile, a.ProfileSource)
		if a.Refused != "" {
			fmt.Fprintf(w, "it would refuse the container: %s\n", a.Refused)
		} else {
			fmt.Fprintf(w, "it would change %d fields:\n", len(a.Changes))
			for _, c := range a.Changes {
				fmt.Fprintf(w, "  %s %s\n", c.Rule, c.Field)
			}
		}
	}
	return nil
}

// writeSeccomp prints the report's seccomp denials.
func writeSeccomp(w io.Writer, sr *decide.SeccompReport) {
	if sr == nil {
		return
	}
	fmt.Fprintf(w, "\nseccomp denials (seccomp_notify %s)", sr.Mode)
	if sr.Unavailable != "" {
		fmt.Fprintf(w, ": not reported: %s\n", sr.Unavailable)
		return
	}
	fmt.Fprintf(w, ": %d syscalls denied", len(sr.Denials))
	if sr.Dropped > 0 {
		fmt.Fprintf(w, ", %d more denials not recorded", sr.Dropped)
	}
	fmt.Fprintln(w)
	if len(sr.Denials) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SYSCALL\tNR\tARCH\tCOUNT\tANSWER\tFIRST\tLAST\tEXECUTABLE")
		for _, d := range sr.Denials {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%s\t%s\n", d.Syscall, d.Number, d.Arch, d.Count, d.Answer,
				d.First.UTC().Format(time.RFC3339), d.Last.UTC().Format(time.RFC3339), d.Executable)
		}
		_ = tw.Flush()
	}
	if sr.Learned != "" {
		fmt.Fprintf(w, "learned profile: %s\n", sr.Learned)
	}
}
