package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/hostprobe"
	"github.com/hardened-dev/hardened/internal/resolve"
)

func cmdExplain(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	profile := fs.String("profile", "", "profile to apply (as the annotation "+resolve.AnnotationProfile+" would)")
	policyFile := fs.String("policy", "", "node policy file (default: the built-in policy)")
	apparmor := fs.String("apparmor", "auto", "whether the host enforces AppArmor: auto (probe this host), yes, no")
	diff := fs.Bool("diff", false, "print the changes grouped by rule instead of the hardened spec")
	containerID := fs.String("container-id", "", "the container's ID, as the shim gets it from containerd ({container-id} host paths, the cgroupsPath rule)")
	sandboxCgroups := fs.String("sandbox-cgroups-path", "", "the cgroupsPath of the pod sandbox the container joins (an app container's cgroup must sit next to it)")
	annotations, imageLabels, labels := kvFlag{}, kvFlag{}, kvFlag{}
	fs.Var(annotations, "annotation", "a spec annotation k=v (repeatable)")
	fs.Var(imageLabels, "image-label", "an image config label k=v (repeatable)")
	fs.Var(labels, "label", "a container or pod label k=v (repeatable)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: explain takes one spec file (or - for stdin)", errUsage)
	}

	host := hardening.Host{}
	switch *apparmor {
	case "auto":
		host.AppArmor = hostprobe.AppArmorEnabled()
	case "yes":
		host.AppArmor = true
	case "no":
	default:
		return fmt.Errorf("%w: --apparmor takes auto, yes or no", errUsage)
	}

	spec, err := readSpec(fs.Arg(0), stdin)
	if err != nil {
		return err
	}
	pol, set, err := loadPolicy(*policyFile)
	if err != nil {
		return err
	}

	// Flags come on top of the spec's own annotations, the way containerd
	// would merge pod annotations into the spec.
	in := resolve.Inputs{Annotations: map[string]string{}, ImageLabels: imageLabels, Labels: labels}
	for k, v := range spec.Annotations {
		in.Annotations[k] = v
	}
	for k, v := range annotations {
		in.Annotations[k] = v
	}
	if *profile != "" {
		in.Annotations[resolve.AnnotationProfile] = *profile
	}
	dec, err := resolve.Resolve(pol, set, in)
	if err != nil {
		return err
	}

	out, report, err := hardening.Harden(spec, hardening.Config{
		Profile:      dec.Profile,
		Host:         host,
		AppArmorMode: pol.AppArmor,
		AllowedHooks: pol.AllowedHooks,
		HostPaths:    pol.AllowHostPathPrefixes,
		ContainerID:  *containerID,
		Backend:      dec.Runtime,
		// The shim's runsc wrapper always passes --oci-seccomp.
		RunscOCISeccomp:    true,
		SandboxCgroupsPath: *sandboxCgroups,
	})
	if err != nil {
		return fmt.Errorf("profile %q (%s): %w", dec.Profile.Name, dec.ProfileSource, err)
	}

	fmt.Fprintf(stderr, "profile %s (%s), backend %s (%s), mode %s, %d changes\n",
		dec.Profile.Name, dec.ProfileSource, dec.Runtime, dec.RuntimeSource, pol.Mode, len(report.Changes))
	for _, n := range dec.Notes {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	if *diff {
		writeDiff(stdout, report)
		return nil
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
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
		return nil, fmt.Errorf("malformed spec %s: %w", name, err)
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
