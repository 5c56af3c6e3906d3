package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/atomicfile"
	"github.com/hardened-dev/hardened/internal/reports"
	"github.com/hardened-dev/hardened/profiles"
)

// seccompCmd works with the seccomp profiles learn mode records
// (seccomp_notify = "learn"): merge several recordings into one, show what
// one allows that another does not, and install what containers were seen
// to need as a custom profile's seccomp.allow.
func seccompCmd() *cobra.Command {
	c := groupCmd("seccomp", "Merge, compare and install the seccomp profiles learn mode records", "merge, diff or install")
	var out string
	merge := &cobra.Command{
		Use:   "merge [-o FILE] PROFILE.json...",
		Short: "Merge recordings of one filter (replicas, runs) into one profile",
		Args:  args(1, -1, "one or more OCI seccomp profiles"),
		RunE:  func(c *cobra.Command, a []string) error { return seccompMerge(a, out, c.OutOrStdout()) },
	}
	merge.Flags().StringVarP(&out, "output", "o", "", "write the merged profile to this file (default: standard output)")
	diff := &cobra.Command{
		Use:   "diff BASE.json PROFILE.json",
		Short: "Print the syscalls one profile allows and the other does not (+ PROFILE only, - BASE only)",
		Args:  args(2, 2, "two OCI seccomp profiles"),
		RunE:  func(c *cobra.Command, a []string) error { return seccompDiff(a, c.OutOrStdout()) },
	}
	var in installOptions
	install := &cobra.Command{
		Use:   "install --name NAME --extends PROFILE CONTAINER...",
		Short: "Write a profile extending another with the syscalls the containers needed in learn mode",
		Args:  args(1, -1, "one or more container IDs recorded in learn mode"),
		RunE: func(c *cobra.Command, a []string) error {
			if in.name == "" || in.extends == "" {
				return fmt.Errorf("%w: seccomp install needs --name and --extends", errUsage)
			}
			return seccompInstall(in, a, c.OutOrStdout())
		},
	}
	fl := install.Flags()
	fl.StringVar(&in.name, "name", "", "the profile to write")
	fl.StringVar(&in.extends, "extends", "", "the profile it extends (its seccomp base must be \"default\")")
	fl.IntVar(&in.rank, "rank", 0, "its rank (default: the extended profile's minus one)")
	fl.StringVar(&in.dir, "profiles-dir", "/etc/hardened/profiles", "the operator profiles directory (the policy's profiles_dir)")
	fl.StringVar(&in.reportsDir, "dir", reports.Dir(), "the reports directory")
	fl.StringVar(&in.ns, "namespace", "", "the containers' containerd namespace (default: the one that holds each report)")
	c.AddCommand(merge, diff, install)
	return c
}

// installOptions are seccomp install's flags.
type installOptions struct {
	name, extends, dir, reportsDir, ns string
	rank                               int
}

func readFilter(path string) (*specs.LinuxSeccomp, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var sc specs.LinuxSeccomp
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return nil, fmt.Errorf("%w: %s: not an OCI seccomp profile: %w", errInvalid, path, err)
	}
	if sc.DefaultAction == "" {
		return nil, fmt.Errorf("%s: no defaultAction", path)
	}
	return &sc, nil
}

// allowedNames are the names sc allows unconditionally.
func allowedNames(sc *specs.LinuxSeccomp) map[string]bool {
	m := map[string]bool{}
	for _, r := range sc.Syscalls {
		if r.Action == specs.ActAllow && len(r.Args) == 0 {
			for _, n := range r.Names {
				m[n] = true
			}
		}
	}
	return m
}

// onlyIn are the names allowed unconditionally by b and not by a, sorted.
func onlyIn(a, b *specs.LinuxSeccomp) []string {
	in := allowedNames(a)
	var out []string
	for n := range allowedNames(b) {
		if !in[n] {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// sameFrame reports why two profiles are not recordings of one filter.
func sameFrame(a, b *specs.LinuxSeccomp) string {
	switch {
	case a.DefaultAction != b.DefaultAction:
		return fmt.Sprintf("default action %s, not %s", b.DefaultAction, a.DefaultAction)
	case !slices.Equal(a.Architectures, b.Architectures):
		return fmt.Sprintf("architectures %v, not %v", b.Architectures, a.Architectures)
	case (a.DefaultErrnoRet == nil) != (b.DefaultErrnoRet == nil) || a.DefaultErrnoRet != nil && *a.DefaultErrnoRet != *b.DefaultErrnoRet:
		return "another default errno"
	}
	return ""
}

// seccompMerge merges recordings of one workload (replicas, runs): the
// first file with every syscall another allows unconditionally allowed.
func seccompMerge(files []string, out string, stdout io.Writer) error {
	merged, err := readFilter(files[0])
	if err != nil {
		return err
	}
	for _, p := range files[1:] {
		sc, err := readFilter(p)
		if err != nil {
			return err
		}
		if why := sameFrame(merged, sc); why != "" {
			return fmt.Errorf("%w: %s is not a recording of the same filter as %s: %s", errInvalid, p, files[0], why)
		}
		merged = hardening.AllowNames(merged, onlyIn(merged, sc))
	}
	data, err := json.MarshalIndent(merged, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if out == "" {
		_, err = stdout.Write(data)
		return err
	}
	return atomicfile.Write(out, data, 0o644)
}

// seccompDiff prints the syscalls one profile allows unconditionally and
// the other does not: + for PROFILE only, - for BASE only.
func seccompDiff(args []string, stdout io.Writer) error {
	base, err := readFilter(args[0])
	if err != nil {
		return err
	}
	sc, err := readFilter(args[1])
	if err != nil {
		return err
	}
	if why := sameFrame(base, sc); why != "" {
		fmt.Fprintf(stdout, "! %s\n", why)
	}
	for _, n := range onlyIn(base, sc) {
		fmt.Fprintf(stdout, "+ %s\n", n)
	}
	for _, n := range onlyIn(sc, base) {
		fmt.Fprintf(stdout, "- %s\n", n)
	}
	return nil
}

// seccompInstall writes a custom profile that extends a profile with the
// syscalls the containers were seen to need in learn mode (their kept
// reports' denials answered "allowed"), ranked just below it (allowing
// more is looser), and checks it loads with the profiles beside it.
func seccompInstall(o installOptions, ids []string, stdout io.Writer) error {
	names, from, err := learnedFromReports(o.reportsDir, o.ns, ids)
	if err != nil {
		return err
	}
	set, err := hardening.LoadProfiles(o.dir)
	if err != nil {
		return err
	}
	base, err := set.Get(o.extends)
	if err != nil {
		return err
	}
	if base.Seccomp.Base != profiles.SeccompBaseDefault {
		return fmt.Errorf("profile %s has seccomp base %q: seccomp.allow needs %q", o.extends, base.Seccomp.Base, profiles.SeccompBaseDefault)
	}
	for _, n := range base.Seccomp.Allow {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	if o.rank == 0 {
		o.rank = base.Rank - 1
	}
	path := filepath.Join(o.dir, o.name+".toml")
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s exists: remove it or choose another --name", path)
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = strconv.Quote(n)
	}
	body := fmt.Sprintf("# Written by hardenctl seccomp install from the learn-mode records of\n# %s.\nname = %q\nextends = %q\nrank = %d\ndescription = %q\n\n[seccomp]\nbase = %q\nallow = [%s]\n",
		strings.Join(from, ", "), o.name, o.extends, o.rank,
		fmt.Sprintf("%s with the syscalls its workload was seen to need: %s", o.extends, strings.Join(names, ", ")),
		profiles.SeccompBaseDefault, strings.Join(quoted, ", "))
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	if err := atomicfile.Write(path, []byte(body), 0o644); err != nil {
		return err
	}
	if _, err := hardening.LoadProfiles(o.dir); err != nil {
		return errors.Join(fmt.Errorf("the profile written does not load, removed: %w", err), os.Remove(path))
	}
	fmt.Fprintf(stdout, "wrote %s: %s extended with %s (rank %d)\n", path, o.extends, strings.Join(names, ", "), o.rank)
	return nil
}

// learnedFromReports are the syscalls learn mode let run in the
// containers, from their kept reports, and the containers read.
func learnedFromReports(dir, ns string, ids []string) (names, from []string, err error) {
	for _, id := range ids {
		n, err := reportNamespace(dir, ns, id)
		if err != nil {
			return nil, nil, err
		}
		r, err := reports.Read(dir, n, id)
		if err != nil {
			return nil, nil, err
		}
		if r.Seccomp == nil || r.Seccomp.Mode != "learn" {
			return nil, nil, fmt.Errorf("%w: container %s/%s was not recorded in learn mode (seccomp_notify = \"learn\")", errInvalid, n, id)
		}
		for _, d := range r.Seccomp.Denials {
			if !slices.Contains(names, d.Syscall) {
				names = append(names, d.Syscall)
			}
		}
		from = append(from, n+"/"+id)
	}
	if len(names) == 0 {
		return nil, nil, fmt.Errorf("the containers %s needed no syscall beyond their filter: nothing to install", strings.Join(from, ", "))
	}
	return names, from, nil
}
