package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/crispec"
	"github.com/hardened-dev/hardened/internal/decide"
	"github.com/hardened-dev/hardened/internal/hostfacts"
	"github.com/hardened-dev/hardened/internal/hostprobe"
	"github.com/hardened-dev/hardened/internal/policy"
	"github.com/hardened-dev/hardened/internal/resolve"
	"github.com/hardened-dev/hardened/profiles"
)

// cmdExplain decides a spec the way the shim's Create does (package
// decide) and prints what the shim would write: config.json (or, with
// --diff, the changes by rule) and, with --report, hardening-report.json.
// By default the host facts are this host's, gathered as the shim gathers
// them: the policy's runtimes (runc's path, the runsc wrapper's, computed,
// not installed), the runc gate's verdict, AppArmor, whether the spec's
// namespace paths are the host's, the spec's host paths opened without
// following symlinks. --offline assumes the runtimes are installed and
// pass the gate and skips what only the node can answer, and says so.
func explainCmd() *cobra.Command {
	o := &explainOptions{annotations: kvFlag{}, imageLabels: kvFlag{}, labels: kvFlag{}, namespaceLabels: kvFlag{}}
	po := &podOptions{}
	var apparmor string
	c := &cobra.Command{
		Use:   "explain [flags] SPEC.json|- | explain -f POD.yaml|-",
		Short: "Decide a spec, or a Pod manifest's containers, as the shim's Create does",
		Long: "explain decides an OCI spec as the shim's Create does (package decide) and prints the config.json " +
			"the shim would write (or, with --diff, the changes by rule; with -o json|yaml, the spec and the report). " +
			"Host facts are this host's unless --offline. A spec that would be refused exits 3.\n\n" +
			"With -f, explain reads Kubernetes manifests (Pods, and the pod templates of Deployments, StatefulSets, " +
			"DaemonSets, ReplicaSets, Jobs and CronJobs), builds each pod's sandbox and container specs as the kubelet " +
			"and containerd's CRI would (image configs from containerd's store at --address when the images are there), " +
			"and prints per container whether it runs, under which profile and runtime, and how many fields change; " +
			"-o json|yaml adds each report and config. Exit 3 if any container would be refused. docs/explain-pods.md " +
			"says what is modelled.",
		Args: func(c *cobra.Command, a []string) error {
			if po.file != "" {
				return args(0, 0, "no spec file with -f")(c, a)
			}
			return args(1, 1, "one spec file (or - for stdin), or -f with manifests")(c, a)
		},
		RunE: func(c *cobra.Command, a []string) error {
			switch apparmor {
			case "auto":
				o.appArmor = hostprobe.AppArmorEnabled()
			case "yes":
				o.appArmor = true
			case "no":
			default:
				return fmt.Errorf("%w: --apparmor takes auto, yes or no", errUsage)
			}
			if po.file != "" {
				if o.diff || o.reportFile != "" || o.profile != "" || len(o.annotations)+len(o.labels)+len(o.imageLabels) > 0 || o.containerID != "" || o.sandboxRuntime != "" {
					return fmt.Errorf("%w: with -f, the pods say their profile, annotations and labels: --diff, --report, --profile, --annotation, --label, --image-label, --container-id and --sandbox-runtime do not apply", errUsage)
				}
				return runExplainPods(o, po, c.InOrStdin(), c.OutOrStdout(), c.ErrOrStderr())
			}
			o.specFile = a[0]
			return runExplain(o, c.InOrStdin(), c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	fl := c.Flags()
	fl.StringVar(&o.profile, "profile", "", "profile to apply (as the annotation "+resolve.AnnotationProfile+" would)")
	policyFlag(c, &o.policyFile)
	fl.StringVar(&apparmor, "apparmor", "auto", "whether the host enforces AppArmor: auto (probe this host), yes, no")
	fl.BoolVar(&o.diff, "diff", false, "print the changes grouped by rule instead of the hardened spec")
	fl.StringVar(&o.reportFile, "report", "", "also write the hardening report (hardening-report.json) to this file")
	fl.BoolVar(&o.offline, "offline", false, "do not look at this host: assume the policy's runtimes are installed and pass the runc gate; skip the namespace and host path checks")
	fl.StringVar(&o.containerID, "container-id", "", "the container's ID, as the shim gets it from containerd ({container-id} host paths, the cgroupsPath rule, staging paths); default: the last element of the spec's linux.cgroupsPath, where containerd names it")
	fl.StringVar(&o.namespace, "namespace", "default", "the containerd namespace (staging paths)")
	fl.StringVar(&o.runDir, "run-dir", hostfacts.RunDir(), "the shim's runtime directory (staging paths, the runsc wrapper)")
	fl.StringVar(&o.sandboxRuntime, "sandbox-runtime", "", "the runtime the pod's sandbox runs on (runc or gvisor), for a spec that joins a pod")
	fl.StringVar(&o.sandboxCgroups, "sandbox-cgroups-path", "", "the cgroupsPath of the pod sandbox the container joins (an app container's cgroup must sit next to it)")
	fl.Var(o.annotations, "annotation", "a spec annotation k=v (repeatable)")
	fl.Var(o.imageLabels, "image-label", "an image config label k=v (repeatable)")
	fl.Var(o.labels, "label", "a container or pod label k=v (repeatable)")
	fl.Var(o.namespaceLabels, "namespace-label", "a label of the containerd namespace k=v, the operator's (repeatable)")
	fl.StringVarP(&po.file, "filename", "f", "", "Kubernetes manifests (YAML or JSON, - for stdin): explain each pod's containers")
	fl.StringVar(&po.address, "address", "/run/containerd/containerd.sock", "with -f: containerd's socket, to read image configs from its store (namespace k8s.io)")
	fl.StringVar(&po.criRoot, "cri-root", crispec.DefaultNode().RootDir, "with -f: containerd's CRI root directory (sandbox files)")
	fl.StringVar(&po.criState, "cri-state", crispec.DefaultNode().StateDir, "with -f: containerd's CRI state directory (the pods' /dev/shm)")
	fl.StringVar(&po.pauseImage, "pause-image", crispec.PauseImage().Name, "with -f: containerd's sandbox image (its config from the store when it is there)")
	fl.StringVar(&po.kubeletRoot, "kubelet-root", "/var/lib/kubelet", "with -f: the kubelet's root directory (the pods' volumes)")
	fl.StringVar(&po.cgroupParent, "cgroup-parent", "", "with -f: the pods' cgroup parent, as the kubelet passes it (default: none)")
	fl.StringSliceVar(&po.handlers, "handler", []string{"hardened"}, "with -f: the runtime handlers that run the shim with --policy (a pod on another handler is not decided; for hardened-gvisor: --handler hardened-gvisor --policy /etc/hardened/policy-gvisor.toml)")
	outputFlag(c, &o.output, "spec", "json", "yaml")
	return c
}

// runExplain decides the spec and prints the plan (see explainCmd). By
// default the host facts are this host's, gathered as the shim gathers
// them: the policy's runtimes (runc's path, the runsc wrapper's, computed,
// not installed), the runc gate's verdict, AppArmor, whether the spec's
// namespace paths are the host's, the spec's host paths opened without
// following symlinks. --offline assumes the runtimes are installed and
// pass the gate and skips what only the node can answer, and says so.
func runExplain(o *explainOptions, stdin io.Reader, stdout, stderr io.Writer) error {
	spec, err := readSpec(o.specFile, stdin)
	if err != nil {
		return err
	}
	f, notes, err := o.facts(spec)
	if err != nil {
		return err
	}
	plan, err := decide.Decide(f)
	if err == nil && plan.Pins != nil {
		if o.offline {
			notes = append(notes, "offline: host paths not opened (the shim refuses a symlink in one and judges each by its real path)")
		} else {
			opened, openErr := hostfacts.Open(plan.Pins.Items)
			err = plan.JudgeSources(opened.Resolved(), openErr)
			opened.Close()
		}
	}
	if err != nil {
		return err
	}
	return printPlan(plan, spec, notes, o, stdout, stderr)
}

// explainOptions are explain's command line.
type explainOptions struct {
	specFile, profile, policyFile, reportFile string
	containerID, namespace, runDir            string
	sandboxRuntime, sandboxCgroups            string
	output                                    string
	diff, offline, appArmor                   bool
	annotations, imageLabels, labels          kvFlag
	namespaceLabels                           kvFlag
}

// facts gathers the decision's facts: the spec with the flags'
// annotations, what the shim would read from containerd (the flags), the
// policy, and the host (this one, or assumed with --offline). The notes
// say what was assumed.
func (o *explainOptions) facts(spec *specs.Spec) (decide.Facts, []string, error) {
	// Flags come on top of the spec's own annotations, the way containerd
	// would merge pod annotations into the spec.
	if spec.Annotations == nil {
		spec.Annotations = map[string]string{}
	}
	for k, v := range o.annotations {
		spec.Annotations[k] = v
	}
	if o.profile != "" {
		spec.Annotations[resolve.AnnotationProfile] = o.profile
	}
	var notes []string
	id := o.containerID
	if id == "" {
		id = idFromCgroupsPath(spec)
		notes = append(notes, fmt.Sprintf("container id %q (--container-id; default: from linux.cgroupsPath)", id))
	}
	f := decide.Facts{
		ID: id, Namespace: o.namespace, Spec: spec,
		Containerd: decide.Containerd{Asked: true, Labels: o.labels, ImageLabels: o.imageLabels, NamespaceLabels: o.namespaceLabels},
		Sandbox:    decide.Sandbox{Runtime: profiles.Runtime(o.sandboxRuntime), CgroupsPath: o.sandboxCgroups},
	}
	if o.sandboxRuntime == "" {
		f.Sandbox.Err = errors.New("the spec joins a pod: pass --sandbox-runtime (and --sandbox-cgroups-path) as the pod's sandbox recorded them")
	}
	pol, set, err := loadPolicy(o.policyFile)
	if err != nil {
		return f, nil, err
	}
	f.Policy = decide.Policy{Policy: pol, Profiles: set, Source: policySource(o.policyFile)}
	if o.offline {
		var more []string
		f.Host, more = offlineHost(pol, o.runDir, o.appArmor)
		notes = append(notes, more...)
	} else {
		f.Host = hostFacts(pol, spec, o.runDir, o.appArmor)
	}
	return f, notes, nil
}

// idFromCgroupsPath is the container ID containerd put at the end of the
// spec's cgroupsPath ("/<namespace>/<id>" with cgroupfs,
// "<slice>:cri-containerd:<id>" with systemd), or "explain" without one.
func idFromCgroupsPath(s *specs.Spec) string {
	if s.Linux == nil || s.Linux.CgroupsPath == "" {
		return "explain"
	}
	p := s.Linux.CgroupsPath
	if i := strings.LastIndexAny(p, ":/"); i >= 0 {
		p = p[i+1:]
	}
	if p == "" {
		return "explain"
	}
	return p
}

// policySource names the policy as the shim's reports do.
func policySource(file string) string {
	if file == "" || file == builtinPolicy {
		return "built-in default"
	}
	return file
}

// hostFacts gathers this host's facts as the shim does, except that the
// runsc wrapper's directory is computed, not installed, and the runc gate
// keeps no cache.
func hostFacts(pol *policy.Policy, spec *specs.Spec, runDir string, appArmor bool) decide.Host {
	var w hostfacts.Wrapper
	w.Path, w.Err = hostfacts.LocateRunscWrapper()
	h := decide.Host{AppArmor: appArmor, RunDir: runDir, Runtimes: hostfacts.Runtimes(pol, runDir, w, false)}
	if rc := h.Runtimes[profiles.RuntimeRunc]; rc.Err == nil {
		_, h.RuncGate = hostprobe.Prober{}.GateRunc(context.Background(), rc.Binary, "")
	}
	h.HostNamespaces, h.HostNamespacesErr = hostfacts.HostNamespaces(spec, "/proc")
	return h
}

// offlineHost assumes every runtime of the policy is installed where it
// says and passes the gate.
func offlineHost(pol *policy.Policy, runDir string, appArmor bool) (decide.Host, []string) {
	h := decide.Host{AppArmor: appArmor, RunDir: runDir, Runtimes: map[profiles.Runtime]decide.Runtime{}}
	for _, name := range pol.RuntimeNames() {
		rt := pol.Runtimes[name]
		bin := rt.Path
		if name == profiles.RuntimeGVisor {
			bin = "(the runsc wrapper for " + rt.Path + ")"
		}
		h.Runtimes[name] = decide.Runtime{Binary: bin, Root: rt.Root}
	}
	return h, []string{"offline: the policy's runtimes assumed installed and runc assumed to pass the gate; namespace paths not compared with the host's"}
}

// printPlan prints the summary and notes on stderr, the config.json the
// shim would write (or the changes) on stdout, and the report to
// reportFile. orig is the spec as containerd wrote it.
func printPlan(plan *decide.Plan, orig *specs.Spec, notes []string, o *explainOptions, stdout, stderr io.Writer) error {
	rep := plan.Report
	fmt.Fprintf(stderr, "profile %s (%s), runtime %s (%s), mode %s, %d changes\n",
		rep.Profile, rep.ProfileSource, rep.Runtime, rep.RuntimeSource, rep.Mode, len(rep.Changes))
	for _, n := range append(rep.Notes, notes...) {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	if rep.Refused != "" {
		fmt.Fprintf(stderr, "audit: enforce mode would refuse it: %s\n", rep.Refused)
	}
	if a := rep.Audit; a != nil {
		if a.Refused != "" {
			fmt.Fprintf(stderr, "audited profile %s (%s), not applied: would refuse it: %s\n", a.Profile, a.ProfileSource, a.Refused)
		} else {
			fmt.Fprintf(stderr, "audited profile %s (%s), not applied: would change %d fields\n", a.Profile, a.ProfileSource, len(a.Changes))
		}
	}
	if o.reportFile != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.reportFile, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	if o.diff {
		writeDiff(stdout, &hardening.Report{Changes: rep.Changes, NotEnforced: rep.NotEnforced})
		return nil
	}
	// What config.json holds: the hardened spec with its host paths staged;
	// in audit mode the spec as containerd wrote it.
	out := plan.Spec
	if out == nil {
		out = orig
		fmt.Fprintln(stderr, "note: audit mode: config.json is left as containerd wrote it (--diff shows what enforce would change)")
	}
	format := o.output
	if format == "spec" {
		format = "json"
		return emit(stdout, format, out, nil)
	}
	return emit(stdout, format, struct {
		Config *specs.Spec    `json:"config"`
		Report *decide.Report `json:"report"`
	}{out, rep}, nil)
}

func readSpec(name string, stdin io.Reader) (*specs.Spec, error) {
	var (
		data []byte
		err  error
	)
	if name == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read spec: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%w: malformed spec %s: %w", errInvalid, name, err)
	}
	return &s, nil
}

// writeDiff prints the report's changes grouped by rule, rules in the order
// the engine applied them, then what is not enforced.
func writeDiff(w io.Writer, r *hardening.Report) {
	var order []string
	byRule := map[string][]hardening.Change{}
	for _, c := range r.Changes {
		if _, ok := byRule[c.Rule]; !ok {
			order = append(order, c.Rule)
		}
		byRule[c.Rule] = append(byRule[c.Rule], c)
	}
	if len(order) == 0 {
		fmt.Fprintln(w, "no changes: the spec already satisfies the profile")
	}
	for _, rule := range order {
		fmt.Fprintf(w, "[%s]\n", rule)
		for _, c := range byRule[rule] {
			fmt.Fprintf(w, "  %s\n", c.Field)
			if c.Before != "" {
				fmt.Fprintf(w, "    - %s\n", c.Before)
			}
			if c.After != "" {
				fmt.Fprintf(w, "    + %s\n", c.After)
			}
		}
	}
	if len(r.NotEnforced) > 0 {
		gaps := append([]hardening.Gap(nil), r.NotEnforced...)
		sort.SliceStable(gaps, func(i, j int) bool { return gaps[i].Rule < gaps[j].Rule })
		fmt.Fprintln(w, "[not enforced]")
		for _, g := range gaps {
			fmt.Fprintf(w, "  %s: %s\n", g.Rule, strings.TrimSpace(g.Reason))
		}
	}
}
