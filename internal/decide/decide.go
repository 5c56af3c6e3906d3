// Package decide is the Create decision: from everything the shim gathers
// about a container (its spec, the request's options, what containerd
// recorded, the node policy and profiles, the pod's sandbox, facts about
// the host), which profile and runtime it gets, the spec the runtime runs,
// the bundle files, the runc options, the host paths to pin, or the one
// reason it is refused. It does no I/O: the shim gathers the facts and
// carries the plan out, and `hardenctl explain` gathers the same facts
// from its flags and the host and prints the same plan.
package decide

import (
	"fmt"
	"slices"
	"strings"

	"github.com/containerd/containerd/api/types/runc/options"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/policy"
	"github.com/hardened-dev/hardened/internal/resolve"
	"github.com/hardened-dev/hardened/profiles"
)

// Facts are what a Create is decided from.
type Facts struct {
	// ID is the container's; Namespace the request's containerd namespace
	// (it names the staging directory).
	ID, Namespace string
	// Spec is config.json as containerd wrote it.
	Spec *specs.Spec
	// PolicyFromRequest is set when the request's options named the node
	// policy (runtimeoptions); Runc are its runc options when it sent those.
	PolicyFromRequest bool
	Runc              *options.Options
	Containerd        Containerd
	Policy            Policy
	// Sandbox is the pod's sandbox, for a container that joins one
	// (PodMember).
	Sandbox Sandbox
	Host    Host
}

// Containerd is what containerd recorded about the container.
type Containerd struct {
	// Asked is false when there is no containerd to ask (a standalone
	// shim): the decision then rests on the spec's annotations alone.
	Asked bool
	// Err is why containerd did not answer.
	Err error
	// Labels are the sandbox record's labels overlaid with the container
	// record's; ImageLabels the image config's.
	Labels, ImageLabels map[string]string
	// NamespaceLabels are the container's containerd namespace's labels
	// (the operator's: resolve.NamespaceAuditProfile, ...).
	NamespaceLabels map[string]string
	CRI             CRIRecord
}

// Policy is the node policy in force and the profiles it was checked
// against, or why it did not load.
type Policy struct {
	Policy   *policy.Policy
	Profiles *profiles.Set
	// Source names it in reports and errors.
	Source string
	// FromRecord: taken from the container record's runtime options
	// because the task carried runc options.
	FromRecord bool
	Err        error
}

// Sandbox is what the pod's sandbox recorded: the runtime it runs on and
// its cgroups path, or why that could not be read.
type Sandbox struct {
	Runtime     profiles.Runtime
	CgroupsPath string
	Err         error
}

// Host are facts about the node.
type Host struct {
	// AppArmor: the kernel enforces AppArmor.
	AppArmor bool
	// HostNamespaces are the spec's namespace paths that are the host's
	// own (compared by nsfs device and inode); HostNamespacesErr why they
	// could not be compared.
	HostNamespaces    []string
	HostNamespacesErr error
	// Runtimes are the policy's runtimes as prepared on this host, by name.
	Runtimes map[profiles.Runtime]Runtime
	// RuncGate is the verdict on the runc binary (nil: no known escape).
	RuncGate error
	// RunDir is the shim's node-wide directory (staging paths).
	RunDir string
}

// Runtime is one runtime as the runc shim code runs it.
type Runtime struct {
	// Binary is runc's path, or the runsc wrapper's; Root the runtime's
	// state root ("" for the stock default).
	Binary, Root string
	Err          error
}

// Plan is a decided Create.
type Plan struct {
	Report *Report
	Mode   policy.Mode
	// Config is the engine's configuration for this container (Exec and
	// Update harden with it); its Profile is nil when audit mode found no
	// profile to apply.
	Config hardening.Config
	// Hardened is the hardened spec (in audit mode: what enforce would have
	// run; the original when even that was refused).
	Hardened *specs.Spec
	// Spec replaces config.json: Hardened with its host paths staged; nil
	// in audit mode (config.json is left as containerd wrote it).
	Spec *specs.Spec
	Runc *options.Options
	// Pins are the host paths to pin; nil when none.
	Pins *Pins
	// Seccomp is how the shim listens to the container's seccomp denials;
	// nil when it does not.
	Seccomp *SeccompPlan
	// WrittenExclude, when Report.Written is set, are the paths left out
	// of it: what the profile that would make the rootfs read-only still
	// lets the container write, and the spec's mount destinations.
	WrittenExclude []string
	// AppArmorProfile must be loaded in the kernel before the runtime sees
	// the spec; "" when none needs to be.
	AppArmorProfile string
}

// State is the plan's hardening-state.json.
func (p *Plan) State() *State { return StateOf(p.Mode, p.Config) }

// Decide decides a Create from its facts. In enforce mode every refusal is
// the error; in audit mode the first one is recorded in the report and the
// container runs unchanged on runc.
func Decide(f Facts) (*Plan, error) {
	id := f.ID
	rep := &Report{ContainerID: id, Changes: []hardening.Change{}}
	c := f.Containerd
	if !c.Asked {
		rep.Notes = append(rep.Notes, "no containerd address: labels not read, decided from annotations only")
	} else if c.Err != nil && !f.PolicyFromRequest {
		return nil, Refusedf("container %s: cannot read its record from containerd, refusing rather than deciding without it: %v", id, c.Err)
	}
	if f.Spec == nil {
		return nil, Invalidf("container %s: no spec", id)
	}
	sandboxID, err := PodMember(id, f.Spec.Annotations)
	if err != nil {
		return nil, Invalidf("container %s: %v", id, err)
	}
	// The pod a container belongs to, as CRI recorded it: the annotations
	// that say it can be changed after CRI (NRI, CDI).
	if why := criIdentityProblem(id, f.Spec.Annotations, c.CRI); why != "" {
		return nil, Refusedf("container %s: %v", id, &hardening.RefusalError{Rule: hardening.RulePod, Field: "annotation " + AnnSandboxID, Reason: why})
	}
	if f.Policy.FromRecord {
		rep.Notes = append(rep.Notes, "policy taken from the container's runtime options (the task carried runc options)")
	}
	if f.Policy.Err != nil || f.Policy.Policy == nil {
		return nil, Invalidf("container %s: %v", id, errOr(f.Policy.Err, "no node policy"))
	}
	d := &decision{facts: f, rep: rep, pol: f.Policy.Policy}
	d.audit = d.pol.Mode == policy.ModeAudit
	rep.Policy, rep.Mode = f.Policy.Source, d.pol.Mode
	if c.Err != nil {
		msg := fmt.Sprintf("container %s: cannot read its labels from containerd, refusing rather than deciding without them: %v", id, c.Err)
		if !d.audit {
			return nil, Refusedf("%s", msg)
		}
		rep.Refused = "hardened: " + msg
		rep.Notes = append(rep.Notes, "audit mode: labels not read, decided from annotations only")
	}
	return d.run(sandboxID)
}

// decision is one Decide in progress.
type decision struct {
	facts Facts
	rep   *Report
	pol   *policy.Policy
	audit bool
}

// refuse returns the enforce-mode refusal, or records it in audit mode
// and returns nil.
func (d *decision) refuse(format string, args ...any) error {
	err := Refusedf(format, args...)
	if !d.audit {
		return err
	}
	if d.rep.Refused == "" {
		d.rep.Refused = err.Error()
	}
	return nil
}

func (d *decision) run(sandboxID string) (*Plan, error) {
	f, rep, id := d.facts, d.rep, d.facts.ID
	dec, use, err := d.profileAndRuntime(sandboxID)
	if err != nil {
		return nil, err
	}
	rt := f.Host.Runtimes[use]
	if rt.Err != nil || rt.Binary == "" {
		return nil, Refusedf("container %s: %v", id, &hardening.RefusalError{Rule: hardening.RuleRuntime, Field: "runtimes." + string(use),
			Reason: errOr(rt.Err, fmt.Sprintf("runtime %q is not prepared", use)), Err: rt.Err})
	}
	if use == profiles.RuntimeRunc && f.Host.RuncGate != nil {
		if err := d.refuse("container %s: %v", id, &hardening.RefusalError{Rule: hardening.RuleRuntime, Field: "runtimes.runc.path",
			Reason: fmt.Sprintf("runc %s refused: %v", rt.Binary, f.Host.RuncGate), Err: f.Host.RuncGate}); err != nil {
			return nil, err
		}
	}
	rep.Binary = rt.Binary

	p := &Plan{Report: rep, Mode: d.pol.Mode, Hardened: f.Spec}
	if dec != nil {
		if err := d.harden(p, dec, use, sandboxID); err != nil {
			return nil, err
		}
	}
	if use == profiles.RuntimeGVisor {
		rep.Notes = append(rep.Notes, "gvisor: runsc runs with --oci-seccomp, so the spec's seccomp filter applies inside the sandbox")
		rep.Notes = append(rep.Notes, GVisorStartNote)
	}
	opts, notes := RuncOptions(f.Runc, rt.Binary, rt.Root)
	rep.Notes = append(rep.Notes, notes...)
	p.Runc = opts
	return p, nil
}

// GVisorStartNote is the report's note on what gVisor guarantees instead of
// the shim's start-time descriptor check (shim/start.go).
const GVisorStartNote = "gvisor: no start-time descriptor check (the shim sees runsc's process, not the application's); " +
	"the application runs inside the Sentry, whose file table and root are its own: a host descriptor of runsc's is not one of the application's, " +
	"and the Sentry reaches host files only through its gofer, confined to the container's root"

// declaredScratch adds the scratch directories the operator (policy,
// route) and the image author (ScratchLabel) declare to the decided
// profile and the audited one (copies of the resolver's); they matter
// where the profile makes the rootfs read-only. An image label that
// cannot be honoured refuses the container.
func (d *decision) declaredScratch(dec *resolve.Decision) error {
	declared := slices.Clone(dec.Scratch)
	for i := range declared {
		declared[i].CopyUp = true // declared scratch holds the image's content
	}
	if v, ok := d.facts.Containerd.ImageLabels[profiles.ScratchLabel]; ok {
		fromImage, err := profiles.ParseScratchLabel(v)
		if err != nil {
			return d.refuse("container %s: %v", d.facts.ID, &hardening.RefusalError{Rule: hardening.RuleRootfs,
				Field: fmt.Sprintf("image label %s=%q", profiles.ScratchLabel, v), Reason: err.Error(), Err: err})
		}
		declared = append(declared, fromImage...)
	}
	if len(declared) == 0 {
		return nil
	}
	dec.Profile.WithScratch(declared)
	if dec.AuditProfile != nil {
		dec.AuditProfile.WithScratch(declared)
	}
	paths := make([]string, len(declared))
	for i, s := range declared {
		paths[i] = s.Path
	}
	d.rep.Notes = append(d.rep.Notes, "scratch declared (tmpfs with the image's content, on a read-only rootfs): "+strings.Join(paths, ", "))
	return nil
}

// profileAndRuntime resolves the profile and runtime, holds the runtime to
// the pod's and judges host namespace joins. dec is nil when audit mode
// found no profile; use is the runtime the container runs on.
func (d *decision) profileAndRuntime(sandboxID string) (*resolve.Decision, profiles.Runtime, error) {
	f, rep, id := d.facts, d.rep, d.facts.ID
	dec, err := resolve.Resolve(d.pol, f.Policy.Profiles, resolve.Inputs{
		Annotations: f.Spec.Annotations,
		ImageLabels: f.Containerd.ImageLabels,
		Labels:      f.Containerd.Labels,

		NamespaceLabels: f.Containerd.NamespaceLabels,
	})
	if err != nil {
		if err := d.refuse("container %s: %v (policy %s)", id, err, f.Policy.Source); err != nil {
			return nil, "", err
		}
		dec = nil
	}
	want := profiles.RuntimeRunc
	if dec != nil {
		if err := d.declaredScratch(dec); err != nil {
			return nil, "", err
		}
		rep.Profile, rep.ProfileSource = dec.Profile.Name, dec.ProfileSource
		rep.RuntimeSource = dec.RuntimeSource
		rep.Notes = append(rep.Notes, dec.Notes...)
		want = dec.Runtime
	}
	use := want
	if d.audit && want != profiles.RuntimeRunc {
		use = profiles.RuntimeRunc
		rep.Notes = append(rep.Notes, fmt.Sprintf("audit mode: enforce would run this container on %s (%s); it runs on runc", want, dec.RuntimeSource))
	}
	// One runtime per pod: the sandbox decided it and recorded it; a
	// container that would run elsewhere cannot join the pod.
	if sandboxID != "" {
		sb := f.Sandbox
		switch {
		case sb.Err != nil:
			if err := d.refuse("container %s: %v", id, &hardening.RefusalError{Rule: hardening.RulePod, Field: "annotation " + AnnSandboxID, Reason: sb.Err.Error(), Err: sb.Err}); err != nil {
				return nil, "", err
			}
		case sb.Runtime != use:
			if err := d.refuse("container %s: %v", id, &hardening.RefusalError{Rule: hardening.RulePod, Field: rep.RuntimeSource,
				Reason: fmt.Sprintf("pod sandbox %s runs on %s; container %s would run on %s: one runtime per pod", sandboxID, sb.Runtime, id, use)}); err != nil {
				return nil, "", err
			}
			rep.Notes = append(rep.Notes, fmt.Sprintf("audit mode: runs on %s, the runtime of pod sandbox %s", sb.Runtime, sandboxID))
			use = sb.Runtime
		}
	}
	rep.Runtime = use
	// Joining a host namespace by a path other than /proc/1/ns/* is only
	// visible to a stat: the engine compares paths.
	if dec != nil && dec.Profile.Namespaces.DenyHost {
		if f.Host.HostNamespacesErr != nil {
			return nil, "", Invalidf("container %s: %v", id, f.Host.HostNamespacesErr)
		}
		if host := f.Host.HostNamespaces; len(host) > 0 {
			if err := d.refuse("container %s refused by profile %s (%s): %v", id, dec.Profile.Name, dec.ProfileSource,
				&hardening.RefusalError{Rule: hardening.RuleNamespaces, Field: "linux.namespaces", Reason: strings.Join(host, "; ")}); err != nil {
				return nil, "", err
			}
		}
	}
	return dec, use, nil
}

// harden runs the engine on the spec and plans the pins.
func (d *decision) harden(p *Plan, dec *resolve.Decision, use profiles.Runtime, sandboxID string) error {
	f, rep, id := d.facts, d.rep, d.facts.ID
	want := dec.Runtime
	p.Config = hardening.Config{
		Profile:      dec.Profile,
		Host:         hardening.Host{AppArmor: f.Host.AppArmor},
		AppArmorMode: d.pol.AppArmor,
		AllowedHooks: d.pol.AllowedHooks,
		HostPaths:    d.pol.AllowHostPathPrefixes,
		ContainerID:  id,
		// An app container's cgroup sits next to its sandbox's.
		SandboxCgroupsPath: f.Sandbox.CgroupsPath,
		// In audit mode, report what enforce would do on its runtime.
		Runtime: want,
		// The runsc wrapper always passes --oci-seccomp.
		RunscOCISeccomp: true,
	}
	if sandboxID == "" {
		p.Config.SandboxCgroupsPath = ""
	}
	if !d.audit {
		p.Config.Runtime = use
	}
	out, hrep, err := hardening.Harden(f.Spec, p.Config)
	if err != nil {
		return d.refuse("container %s refused by profile %s (%s; runtime %s from %s; policy %s): %v", id, dec.Profile.Name, dec.ProfileSource, p.Config.Runtime, dec.RuntimeSource, f.Policy.Source, err)
	}
	p.Hardened = out
	rep.Changes = append(rep.Changes, hrep.Changes...)
	rep.NotEnforced = hrep.NotEnforced
	if dec.AuditProfile != nil {
		rep.Audit = audit(f.Spec, p.Config, dec)
	}
	if !d.audit && p.Config.Host.AppArmor && use == profiles.RuntimeRunc {
		if name := out.Process.ApparmorProfile; name != "" && name != "unconfined" {
			p.AppArmorProfile = name
		}
	}
	if err := d.seccompNotify(p, out, dec.SeccompNotify, use); err != nil {
		return err
	}
	d.watchWrites(p, out, dec, use)
	if !d.audit {
		p.Spec = out
	}
	// Host paths are judged as the host resolves them when they are
	// pinned (Plan.JudgeSources): the engine compares sources as written,
	// so a bind source that is a symlink to a denied path is only caught
	// there.
	return d.planPins(p, out, use)
}

// watchWrites plans the report of where the container writes on its
// rootfs when it runs writable while the profile audited alongside (or, in
// audit mode, the one enforce would apply) makes it read-only: the
// operator's question before rolling that profile out.
func (d *decision) watchWrites(p *Plan, out *specs.Spec, dec *resolve.Decision, use profiles.Runtime) {
	running := out
	if d.audit {
		running = d.facts.Spec
	}
	var ro *profiles.Profile
	switch {
	case dec.AuditProfile != nil && dec.AuditProfile.Rootfs.ReadOnly:
		ro = dec.AuditProfile
	case d.audit && dec.Profile.Rootfs.ReadOnly:
		ro = dec.Profile
	}
	if ro == nil || running.Root == nil || running.Root.Readonly {
		return
	}
	w := &WrittenReport{Profile: ro.Name, Paths: []string{}}
	d.rep.Written = w
	if use != profiles.RuntimeRunc {
		w.Unavailable = "on gVisor the container's writes stay in the sandbox's own overlay"
		return
	}
	for _, s := range ro.Rootfs.Scratch {
		p.WrittenExclude = append(p.WrittenExclude, s.Path)
	}
	for _, m := range running.Mounts {
		p.WrittenExclude = append(p.WrittenExclude, m.Destination)
	}
}

// audit runs the engine with the audited profile on the spec as containerd
// wrote it, for the report only.
func audit(spec *specs.Spec, cfg hardening.Config, dec *resolve.Decision) *AuditReport {
	cfg.Profile = dec.AuditProfile
	a := &AuditReport{Profile: dec.AuditProfile.Name, ProfileSource: dec.AuditProfileSource, Changes: []hardening.Change{}}
	if _, r, err := hardening.Harden(spec, cfg); err != nil {
		a.Refused = err.Error()
	} else {
		a.Changes = r.Changes
	}
	return a
}

// planPins sets the plan's pins for the hardened spec: in enforce mode the
// spec to write becomes the staged one. The report lists the pinned paths.
func (d *decision) planPins(p *Plan, hardened *specs.Spec, use profiles.Runtime) error {
	pp, _ := planPins(hardened, "")
	if len(pp.Items) == 0 {
		return nil
	}
	if d.audit {
		p.Report.Notes = append(p.Report.Notes, "audit mode: host paths are opened without following symlinks and judged, not staged (config.json is not rewritten; runc opens them by path)")
	} else {
		dir, err := StagingDir(d.facts.Host.RunDir, d.facts.Namespace, d.facts.ID)
		if err != nil {
			return Invalidf("container %s: %v", d.facts.ID, err)
		}
		pp, p.Spec = planPins(hardened, dir)
	}
	pp.HoldUntilStart = holdUntilStart(use, hardened)
	p.Pins = pp
	for _, it := range pp.Items {
		p.Report.Pinned = append(p.Report.Pinned, PinnedSource{Field: it.Field, Source: it.Source, Staged: it.Staged})
	}
	return nil
}

// RuncOptions builds the options the runc shim code reads: binary and root
// from the policy, the rest from the caller's runc options (if any).
// Settings dropped are returned as notes for the report.
func RuncOptions(caller *options.Options, binary, root string) (*options.Options, []string) {
	out := &options.Options{BinaryName: binary, Root: root}
	if caller == nil {
		return out, nil
	}
	var notes []string
	out.NoNewKeyring = caller.NoNewKeyring
	out.ShimCgroup = caller.ShimCgroup
	out.IoUid = caller.IoUid
	out.IoGid = caller.IoGid
	out.SystemdCgroup = caller.SystemdCgroup
	out.CriuImagePath = caller.CriuImagePath
	out.CriuWorkPath = caller.CriuWorkPath
	if caller.BinaryName != "" && caller.BinaryName != binary {
		notes = append(notes, fmt.Sprintf("caller's runc option BinaryName %q ignored: the policy picks the OCI binary", caller.BinaryName))
	}
	if caller.Root != "" && caller.Root != root {
		notes = append(notes, fmt.Sprintf("caller's runc option Root %q ignored: the policy sets the runtime root", caller.Root))
	}
	if caller.NoPivotRoot {
		// no_pivot_root makes runc chroot instead of pivot_root, which a
		// process with CAP_SYS_CHROOT can escape.
		notes = append(notes, "caller's runc option NoPivotRoot ignored: the rootfs is always pivoted")
	}
	return out, notes
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}
