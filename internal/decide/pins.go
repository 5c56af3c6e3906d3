package decide

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/profiles"
)

// Mount sources pinned. runc opens a bind mount's source by path, as root,
// when it creates the container; a host path checked before that can be
// swapped for a symlink in between. So the decision lists the host paths
// of the hardened spec (every bind mount's source, every absolute mount
// source, an absolute root.path) and, in enforce mode, writes config.json
// with each replaced by a staging path,
// RunDir/staging/<namespace>/<container-id>/<n> (n: the mount's index, or
// "root"). The shim then opens each path without following symlinks, has
// the opened inodes judged by their real paths (Plan.JudgeSources) and
// bind-mounts them onto their staging paths (shim/pin.go).

// StagingSubdir is the staging tree under the shim's RunDir.
const StagingSubdir = "staging"

// Pins is what a decided Create pins.
type Pins struct {
	// Dir is the container's staging directory; "" in audit mode, where
	// nothing is staged.
	Dir   string
	Items []PinItem
	// Check is the hardened spec with its sources as written: what the
	// engine's host path rule judges, with the opened inodes' real paths.
	Check *specs.Spec
	// HoldUntilStart keeps the staging mounts until the container's Start
	// returns, not its Create.
	HoldUntilStart bool
}

// PinItem is one host path of the spec.
type PinItem struct {
	Field  string // "mounts[i].source" or "root.path"
	Index  int    // the mount's index; -1 for root.path
	Source string // as the spec writes it
	Staged string // its staging path ("" in audit mode)
	Rec    bool   // staged with its submounts (rbind, root.path)
}

// HostSourced reports whether m's source is a host path, as the engine
// decides it: a bind mount's, or an absolute one. A path the engine counts
// and this misses is not pinned, and CheckMountSources refuses it as
// unresolved: a mismatch fails closed.
func HostSourced(m specs.Mount) bool {
	return isBindMount(m) || strings.HasPrefix(m.Source, "/")
}

func isBindMount(m specs.Mount) bool {
	return m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

// holdUntilStart reports whether a container's staged sources must outlive
// its Create. runsc opens mount sources in its gofer, by path (runsc/cmd/
// gofer.go: sandboxsetup.SetupRootFS bind-mounts each spec source into the
// gofer's root). For a sandbox's root container (a pod's sandbox, a
// standalone container) the gofer starts in `runsc create`
// (container.createRoot -> createGoferProcess), and create returns after
// the sandbox has read the gofer's resolved mount list, so after those
// mounts. For a pod's app container (a subcontainer: runsc's
// specutils.IsRootContainer is false when io.kubernetes.cri.container-type
// is "container"), `runsc create` only registers it; its gofer is started
// by `runsc start` (Container.startImpl -> createGoferProcess, then reads
// the mounts file). Checked in gvisor.dev/gvisor@v0.0.0-20260905035102-
// 160fafc42237. runc mounts everything in `runc create`.
func holdUntilStart(runtime profiles.Runtime, s *specs.Spec) bool {
	return runtime == profiles.RuntimeGVisor && s.Annotations[AnnContainerType] == ContainerTypeContainer
}

// StagingDir is the staging directory of container id in namespace ns.
func StagingDir(runDir, ns, id string) (string, error) {
	if !IdentifierRE.MatchString(ns) || !IdentifierRE.MatchString(id) {
		return "", fmt.Errorf("namespace %q or container id %q cannot name a staging directory", ns, id)
	}
	return filepath.Join(runDir, StagingSubdir, ns, id), nil
}

// planPins lists the host paths of s (the hardened spec) and returns the
// spec to write: with dir set, a copy whose sources are their staging
// paths under dir; with dir "" (audit mode), s itself.
func planPins(s *specs.Spec, dir string) (*Pins, *specs.Spec) {
	pp := &Pins{Dir: dir, Check: s}
	add := func(field string, index int, src, name string, rec bool) {
		it := PinItem{Field: field, Index: index, Source: src, Rec: rec}
		if dir != "" {
			it.Staged = filepath.Join(dir, name)
		}
		pp.Items = append(pp.Items, it)
	}
	if s.Root != nil && filepath.IsAbs(s.Root.Path) {
		// runc binds root.path onto itself recursively.
		add("root.path", -1, s.Root.Path, "root", true)
	}
	for i, m := range s.Mounts {
		if HostSourced(m) {
			add(fmt.Sprintf("mounts[%d].source", i), i, m.Source, strconv.Itoa(i), slices.Contains(m.Options, "rbind"))
		}
	}
	if dir == "" || len(pp.Items) == 0 {
		return pp, s
	}
	out := *s
	out.Mounts = slices.Clone(s.Mounts)
	for _, it := range pp.Items {
		if it.Index < 0 {
			root := *s.Root
			root.Path = it.Staged
			out.Root = &root
		} else {
			out.Mounts[it.Index].Source = it.Staged
		}
	}
	return pp, &out
}

// JudgeSources judges the plan's host paths as the host resolved them when
// they were opened without following symlinks: resolved maps each source
// as written to its opened inode's real path; openErr is why one could not
// be opened (a symlink in it, missing), or nil. In enforce mode a refusal
// is returned; in audit mode it is recorded in the report (and nil
// returned). A plan without pins has nothing to judge.
func (p *Plan) JudgeSources(resolved map[string]string, openErr error) error {
	pp := p.Pins
	if pp == nil {
		return nil
	}
	err := openErr
	if err == nil {
		err = hardening.CheckMountSources(pp.Check, p.Config, resolved)
	}
	if err == nil {
		return nil
	}
	rep := p.Report
	refusal := Refusedf("container %s refused by profile %s (%s): %v", rep.ContainerID, rep.Profile, rep.ProfileSource, err)
	if pp.Dir != "" {
		return refusal
	}
	if rep.Refused == "" {
		rep.Refused = refusal.Error()
	}
	return nil
}
