package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/hardened-dev/hardened/profiles"
)

func profilesCmd() *cobra.Command {
	c := groupCmd("profiles", "List and show the profiles (built-in and the policy's profiles_dir)", "list or show")
	var listPolicy, listOut string
	list := &cobra.Command{
		Use:   "list",
		Short: "List the profiles, least strict first",
		Args:  args(0, 0, "no argument"),
		RunE: func(c *cobra.Command, _ []string) error {
			return listProfiles(c.OutOrStdout(), listPolicy, listOut)
		},
	}
	policyFlag(list, &listPolicy)
	outputFlag(list, &listOut, "table", "json", "yaml")
	var showPolicy, showOut string
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Say what a profile does, and how it meets each Pod Security Standards control",
		Args:  args(1, 1, "one profile name"),
		RunE: func(c *cobra.Command, a []string) error {
			pol, set, err := loadPolicy(showPolicy)
			if err != nil {
				return err
			}
			p, err := set.Get(a[0])
			if err != nil {
				return err
			}
			return emit(c.OutOrStdout(), showOut, struct {
				*profiles.Profile
				PodSecurity []profiles.PSAControl `json:"podSecurity"`
			}{p, profiles.PodSecurity(p)}, func() error {
				describeProfile(c.OutOrStdout(), p, pol.StrictRuntime)
				return nil
			})
		},
	}
	policyFlag(show, &showPolicy)
	outputFlag(show, &showOut, "table", "json", "yaml")
	c.AddCommand(list, show)
	return c
}

func listProfiles(w io.Writer, policyFile, format string) error {
	pol, set, err := loadPolicy(policyFile)
	if err != nil {
		return err
	}
	var all []*profiles.Profile
	for _, name := range set.Names() {
		p, err := set.Get(name)
		if err != nil {
			return err
		}
		all = append(all, p)
	}
	return emit(w, format, all, func() error {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tRANK\tBASE\tNODE\tDESCRIPTION")
		for _, p := range all {
			var node []string
			if p.Name == pol.DefaultProfile {
				node = append(node, "default")
			}
			if p.Name == pol.MinimumProfile {
				node = append(node, "minimum")
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", p.Name, p.Rank, dash(p.Extends), dash(strings.Join(node, ",")), p.Description)
		}
		return tw.Flush()
	})
}

// describeProfile says in words what a profile does to a container, one
// line per concern, naming the fields it sets.
// (Long on purpose: one block per concern in the order `profiles show`
// prints them, each a few lines; helpers printing one line each would
// scatter the output's order over the file.)
func describeProfile(w io.Writer, p *profiles.Profile, strictRuntime profiles.Runtime) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	title := fmt.Sprintf("%s (rank %d", p.Name, p.Rank)
	if p.Extends != "" {
		title += ", extends " + p.Extends
	}
	fmt.Fprintf(w, "%s)\n  %s\n\n", title, p.Description)

	caps := "none: every capability set is emptied"
	if len(p.Capabilities.Allowed) > 0 {
		caps = "at most " + strings.Join(p.Capabilities.Allowed, ", ")
	}
	if p.Capabilities.Ambient {
		caps += "; ambient kept within that"
	} else {
		caps += "; ambient cleared"
	}
	row(tw, "capabilities", caps, "process.capabilities.*")
	row(tw, "no_new_privileges", "always set", "process.noNewPrivileges")

	rootfs := "left as the spec has it"
	if p.Rootfs.ReadOnly {
		rootfs = "read-only"
		var scratch []string
		for _, s := range p.Rootfs.Scratch {
			d := s.Path
			var opts []string
			if s.Size != "" {
				opts = append(opts, "size "+s.Size)
			}
			if s.NoExec {
				opts = append(opts, "noexec")
			}
			if len(opts) > 0 {
				d += " (" + strings.Join(opts, ", ") + ")"
			}
			scratch = append(scratch, d)
		}
		if len(scratch) > 0 {
			rootfs += "; writable tmpfs (nosuid, nodev) at " + strings.Join(scratch, ", ")
		}
	}
	row(tw, "rootfs", rootfs, "root.readonly, mounts")

	pids := "no limit set by the profile"
	if p.Pids.Limit > 0 {
		pids = fmt.Sprintf("at most %d tasks (a lower limit in the spec is kept)", p.Pids.Limit)
	}
	row(tw, "pids", pids, "linux.resources.pids.limit")

	seccomp := "the spec's own filter is kept"
	if p.Seccomp.Base == "default" {
		seccomp = "containerd's default filter, generated after the capability drop; a spec's own filter is merged with it, never loosened (what it blocks stays blocked)"
	}
	if len(p.Seccomp.Deny) > 0 {
		seccomp += fmt.Sprintf("; also denied: %s", strings.Join(p.Seccomp.Deny, " "))
	}
	if p.Seccomp.NativeArchOnly {
		seccomp += "; native architecture only (other ABIs killed)"
	}
	row(tw, "seccomp", seccomp, "linux.seccomp")

	aa := "none set"
	if p.AppArmor.Profile != "" {
		aa = p.AppArmor.Profile + " where the host has AppArmor (else the policy's apparmor setting decides)"
	}
	row(tw, "apparmor", aa, "process.apparmorProfile")

	paths := "containerd's default masked and read-only paths"
	if n := len(p.Paths.Masked) + len(p.Paths.ReadOnly); n > 0 {
		paths += fmt.Sprintf(", plus masked %v, read-only %v", p.Paths.Masked, p.Paths.ReadOnly)
	}
	row(tw, "paths", paths, "linux.maskedPaths, linux.readonlyPaths")

	var ns []string
	if p.Namespaces.DenyHost {
		ns = append(ns, "host pid/ipc/network namespaces refused")
	}
	if p.Namespaces.DenyPrivileged {
		ns = append(ns, "privileged (full capability set, devices beyond the allowed ones) refused")
	}
	row(tw, "namespaces", dash(strings.Join(ns, "; ")), "linux.namespaces, process.capabilities")

	mounts := "host paths only under: " + dash(strings.Join(p.Mounts.AllowHostPathPrefixes, " ")) +
		", or the node policy's allow_host_path_prefixes; mounted nosuid,nodev (read-only rbinds also rro on runc)"
	if len(p.Mounts.DenyHostPaths) > 0 {
		mounts += "; never, even with the policy's consent (as, under or above): " + strings.Join(p.Mounts.DenyHostPaths, " ")
	}
	mounts += "; options by allowlist (no remount"
	if p.Namespaces.DenyPrivileged {
		mounts += ", no shared propagation"
	} else {
		mounts += ", shared propagation made slave"
	}
	mounts += "); proc/sysfs/cgroup/mqueue/devpts only at their standard place, sysfs and cgroup read-only"
	if p.Mounts.StandardFilesystemsOnly {
		mounts += "; no filesystem but bind mounts, tmpfs and those"
	}
	row(tw, "mounts", mounts, "mounts, root.path")

	devices := "containerd's defaults"
	if len(p.Devices.Allowed) > 0 {
		devices += " plus " + strings.Join(p.Devices.Allowed, ", ")
	}
	if p.Namespaces.DenyPrivileged {
		devices += "; a spec asking for more (all devices, a class, a disk) is refused"
	} else {
		devices += "; more (all devices, a class, a disk) is removed: a privileged spec is de-privileged"
	}
	row(tw, "devices", devices, "linux.resources.devices, linux.devices")

	sysctls := "namespaced ones only, in a namespace of the container's own"
	if p.Sysctls.Restrict {
		sysctls += "; of those only: " + dash(strings.Join(p.Sysctls.Allowed, " "))
	}
	row(tw, "sysctls", sysctls, "linux.sysctl")

	selinux := "any type but spc_t and unconfined_t"
	if len(p.SELinux.ProcessTypes) > 0 {
		selinux = "process types " + strings.Join(p.SELinux.ProcessTypes, " ")
	}
	if len(p.SELinux.MountTypes) > 0 {
		selinux += "; mount types " + strings.Join(p.SELinux.MountTypes, " ")
	}
	row(tw, "selinux", selinux, "process.selinuxLabel, linux.mountLabel")

	var bounds []string
	for _, k := range slices.Sorted(maps.Keys(p.Rlimits.Max)) {
		bounds = append(bounds, fmt.Sprintf("%s %d", k, p.Rlimits.Max[k]))
	}
	row(tw, "rlimits", "at most: "+dash(strings.Join(bounds, ", "))+"; unknown types refused; oomScoreAdj at least -998", "process.rlimits, process.oomScoreAdj")

	row(tw, "scheduler", "real-time policies and negative nice need CAP_SYS_NICE, the real-time I/O class CAP_SYS_ADMIN", "process.scheduler, process.ioPriority, process.rlimits")

	var proc []string
	if p.Process.RunAsNonRoot {
		proc = append(proc, "uid 0 refused")
	}
	if p.Process.DenyExec {
		proc = append(proc, "exec into the container refused")
	}
	if p.Process.NoCoreDumps {
		proc = append(proc, "core dumps off (RLIMIT_CORE 0)")
	}
	proc = append(proc, "exec'd processes pinned to the init process (capabilities, labels, groups, rlimits, OOM score)")
	row(tw, "process", strings.Join(proc, "; "), "process.user, process.rlimits, exec")

	runtime := "chosen by the policy's routes and annotations (runc by default)"
	if p.Runtime == profiles.RuntimeGVisor {
		runtime = "gVisor (runsc)"
		if strictRuntime != "" && strictRuntime != profiles.RuntimeGVisor {
			runtime += ", but this node's policy sets strict_runtime = " + string(strictRuntime)
		}
	}
	row(tw, "runtime", runtime, "")
	tw.Flush()
	writePodSecurity(w, p)
}

// writePodSecurity prints how the profile meets each Pod Security
// Standards control (profiles.PodSecurity), and what it adds beyond them.
func writePodSecurity(w io.Writer, p *profiles.Profile) {
	fmt.Fprintf(w, "\nPod Security Standards (docs/pod-security.md)\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  LEVEL\tCONTROL\tSTATUS\tHOW")
	for _, c := range profiles.PodSecurity(p) {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Level, c.Control, c.Status, c.Detail)
	}
	tw.Flush()
	fmt.Fprintf(w, "  beyond Pod Security: %s\n", strings.Join(profiles.BeyondPodSecurity(p), "; "))
}

func row(tw *tabwriter.Writer, what, words, fields string) {
	if fields != "" {
		words += "  [" + fields + "]"
	}
	fmt.Fprintf(tw, "  %s\t%s\n", what, words)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
