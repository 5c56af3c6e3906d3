package shim

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/policy"
)

// Mount sources pinned. runc opens a bind mount's source by path, as root,
// when it creates the container. A host path checked before that (the
// engine's host path rule, hardening.CheckMountSources) can change in
// between: whoever can write a parent directory of the source (another
// container given that directory as a volume) swaps the checked directory
// for a symlink to / and the container mounts the host's root. So the
// shim makes the checked inode the mounted one:
//
//  1. decide (no I/O) lists the host paths of the hardened spec (every
//     bind mount's source, every absolute mount source, an absolute
//     root.path) and writes config.json with each replaced by a staging
//     path, RunDir/staging/<namespace>/<container-id>/<n> (n: the mount's
//     index, or "root");
//  2. Create opens each path with openat2(2), RESOLVE_NO_SYMLINKS (no
//     symlink in any element, the last one included) and O_PATH: a path
//     with a symlink in it, or one that does not exist, is refused;
//  3. each opened inode is judged by its real path (readlink of
//     /proc/self/fd/N) with the engine's host path rule;
//  4. each is bind-mounted from /proc/self/fd/N (recursively for rbind and
//     root.path) onto its staging path, in the shim's mount namespace
//     (containerd's and runc's): runc mounts the staging path, which only
//     root can change. (runc cannot take /proc/<pid>/fd/N itself: it mounts
//     from the container's new mount namespace, EINVAL.) The kubelet stages
//     subPath volumes the same way since CVE-2017-1002101;
//  5. the staging mounts are removed once the runtime no longer opens the
//     sources: when the stock Create returns (success or failure), or, for
//     a gVisor pod's app container, when its Start returns (see
//     holdUntilStart); Delete (and the shim binary's delete) sweep the
//     container's staging directory again.
//
// A staging mount keeps the source's propagation (a bind of a shared mount
// joins its peer group), so a container's mount with rslave or rshared
// options still receives the host's later mounts, as it would from the
// source itself. It is made private (recursively) right before it is
// unmounted: the unmount of a staged rbind would otherwise propagate into
// the source's peer group and detach the host's own submounts (and the
// container's copies of them).
//
// In audit mode config.json is not rewritten, so nothing is staged: the
// paths are opened and judged the same way, and what enforce mode would
// refuse is reported.

// stagingSubdir is the staging tree under RunDir.
const stagingSubdir = "staging"

// pinPlan is what a decided Create pins (decided without I/O; done by
// plan.pin).
type pinPlan struct {
	// dir is the container's staging directory; "" in audit mode, where
	// nothing is staged.
	dir   string
	items []pinItem
	// check is the hardened spec with its sources as written: what the
	// engine's host path rule judges, with the opened inodes' real paths.
	check *specs.Spec
	cfg   hardening.Config
	// holdUntilStart keeps the staging mounts until the container's Start
	// returns, not its Create.
	holdUntilStart bool
}

// pinItem is one host path of the spec.
type pinItem struct {
	field  string // "mounts[i].source" or "root.path"
	index  int    // the mount's index; -1 for root.path
	source string // as the spec writes it
	staged string // its staging path ("" in audit mode)
	rec    bool   // staged with its submounts (rbind, root.path)
}

// hostSourced reports whether m's source is a host path, as the engine
// decides it (hardening's hostSourced): a bind mount's, or an absolute
// one. A path the engine counts and this misses is not pinned, and
// CheckMountSources refuses it as unresolved: a mismatch fails closed.
func hostSourced(m specs.Mount) bool {
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
func holdUntilStart(backend string, s *specs.Spec) bool {
	return backend == policy.RuntimeGVisor && s.Annotations[annContainerType] == containerTypeContainer
}

// stagingDir is the staging directory of container id in namespace ns.
func stagingDir(runDir, ns, id string) (string, error) {
	if !identifierRE.MatchString(ns) || !identifierRE.MatchString(id) {
		return "", fmt.Errorf("namespace %q or container id %q cannot name a staging directory", ns, id)
	}
	return filepath.Join(runDir, stagingSubdir, ns, id), nil
}

// planPins lists the host paths of s (the hardened spec) in a pinPlan and
// returns the spec to write: with dir set, a copy whose sources are their
// staging paths under dir; with dir "" (audit mode), s itself.
func planPins(s *specs.Spec, dir string) (*pinPlan, *specs.Spec) {
	pp := &pinPlan{dir: dir, check: s}
	add := func(field string, index int, src, name string, rec bool) {
		it := pinItem{field: field, index: index, source: src, rec: rec}
		if dir != "" {
			it.staged = filepath.Join(dir, name)
		}
		pp.items = append(pp.items, it)
	}
	if s.Root != nil && filepath.IsAbs(s.Root.Path) {
		// runc binds root.path onto itself recursively.
		add("root.path", -1, s.Root.Path, "root", true)
	}
	for i, m := range s.Mounts {
		if hostSourced(m) {
			add(fmt.Sprintf("mounts[%d].source", i), i, m.Source, strconv.Itoa(i), slices.Contains(m.Options, "rbind"))
		}
	}
	if dir == "" || len(pp.items) == 0 {
		return pp, s
	}
	out := *s
	out.Mounts = slices.Clone(s.Mounts)
	for _, it := range pp.items {
		if it.index < 0 {
			root := *s.Root
			root.Path = it.staged
			out.Root = &root
		} else {
			out.Mounts[it.index].Source = it.staged
		}
	}
	return pp, &out
}

// pinsFor sets the plan's pins for the hardened spec, which runs on
// backend: in enforce mode the spec to write becomes the staged one. The
// report lists the pinned paths.
func (s *Service) pinsFor(ctx context.Context, id string, p *plan, hardened *specs.Spec, audit bool, backend string) error {
	pp, out := planPins(hardened, "")
	if len(pp.items) == 0 {
		return nil
	}
	if audit {
		p.report.Notes = append(p.report.Notes, "audit mode: host paths are opened without following symlinks and judged, not staged (config.json is not rewritten; runc opens them by path)")
	} else {
		ns, ok := namespaces.Namespace(ctx)
		if !ok {
			ns = s.namespace
		}
		dir, err := stagingDir(s.runDir, ns, id)
		if err != nil {
			return invalidf("container %s: %v", id, err)
		}
		pp, out = planPins(hardened, dir)
		p.spec = out
	}
	pp.cfg = p.state.cfg
	pp.holdUntilStart = holdUntilStart(backend, hardened)
	p.pins = pp
	for _, it := range pp.items {
		p.report.Pinned = append(p.report.Pinned, PinnedSource{Field: it.field, Source: it.source, Staged: it.staged})
	}
	return nil
}

// pin opens the plan's host paths without following symlinks, judges the
// opened inodes by their real paths and, in enforce mode, stages them. It
// returns the staging directory ("" when nothing was staged). Every
// refusal comes before anything is staged; a failure to stage removes
// what was staged. In audit mode a refusal is recorded in the report.
func (p *plan) pin() (string, error) {
	pp := p.pins
	if pp == nil {
		return "", nil
	}
	pins, err := openPins(pp.items)
	defer pins.close()
	if err == nil {
		err = checkPinned(pp.check, pp.cfg, pins.resolved())
	}
	rep := p.report
	if err != nil {
		msg := fmt.Sprintf("container %s refused by profile %s (%s): %v", rep.ContainerID, rep.Profile, rep.ProfileSource, err)
		if pp.dir != "" {
			return "", refusedf("%s", msg)
		}
		if rep.Refused == "" {
			rep.Refused = "hardened: " + msg
			p.dropReport()
		}
		return "", nil
	}
	if pp.dir == "" {
		return "", nil
	}
	if err := stageAll(pp, pins); err != nil {
		return "", fmt.Errorf("failed to stage the mount sources: %w", err)
	}
	return pp.dir, nil
}

// checkPinned is the engine's host path rule over the pinned paths: the
// one call to hardening.CheckMountSources (resolved maps each source as
// written to its opened inode's real path).
func checkPinned(s *specs.Spec, cfg hardening.Config, resolved map[string]string) error {
	return hardening.CheckMountSources(s, cfg, resolved)
}

// pinned is one host path opened with O_PATH, without following symlinks.
type pinned struct {
	fd   int
	real string // readlink /proc/self/fd/N
	dir  bool
	dev  uint64
	ino  uint64
}

// pinSet is the opened paths by source as written: one open per distinct
// source, so that every mount naming it is staged from the inode judged.
type pinSet map[string]*pinned

func (ps pinSet) close() {
	for _, p := range ps {
		unix.Close(p.fd)
	}
}

func (ps pinSet) resolved() map[string]string {
	out := make(map[string]string, len(ps))
	for src, p := range ps {
		out[src] = p.real
	}
	return out
}

// openPins opens every item's source once. A refusal is a
// *hardening.RefusalError naming the item's field.
func openPins(items []pinItem) (pinSet, error) {
	ps := pinSet{}
	for _, it := range items {
		if _, ok := ps[it.source]; ok {
			continue
		}
		p, reason := openPinned(it.source)
		if reason != "" {
			return ps, &hardening.RefusalError{Rule: hardening.RuleMounts, Field: it.field, Reason: reason}
		}
		ps[it.source] = p
	}
	return ps, nil
}

// openPinned opens the host path p with openat2(2): O_PATH (files and
// directories alike), RESOLVE_NO_SYMLINKS (no symlink in any element; the
// last one is not followed either: ELOOP) and RESOLVE_NO_MAGICLINKS. It
// returns the opened path, or why it is refused.
func openPinned(p string) (*pinned, string) {
	if !filepath.IsAbs(p) {
		// runc would resolve it against its working directory.
		return nil, fmt.Sprintf("host path %q is not absolute", p)
	}
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	var fd int
	var err error
	for range 8 {
		if fd, err = unix.Openat2(unix.AT_FDCWD, p, how); !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			break
		}
	}
	switch {
	case errors.Is(err, unix.ELOOP):
		// A symlink can be swapped between this check and runc's mount.
		return nil, symlinkReason(p)
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		// runc would fail on it, or mount whatever appears there later.
		return nil, fmt.Sprintf("host path %q does not exist", p)
	case errors.Is(err, unix.ENOSYS):
		// Without openat2 the path cannot be opened without symlinks.
		return nil, fmt.Sprintf("host path %q cannot be pinned: this kernel has no openat2(2) (Linux 5.6 or later)", p)
	case err != nil:
		return nil, fmt.Sprintf("failed to open host path %q: %v", p, err)
	}
	pn, reason := inspectPinned(fd, p)
	if reason != "" {
		unix.Close(fd)
		return nil, reason
	}
	return pn, ""
}

// inspectPinned reads what fd (opened from p) is and where it is.
func inspectPinned(fd int, p string) (*pinned, string) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Sprintf("failed to stat host path %q: %v", p, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		// Never mount through a symlink (openat2 does not return one here).
		return nil, symlinkReason(p)
	}
	real, err := os.Readlink(procFD(fd))
	if err != nil {
		return nil, fmt.Sprintf("failed to read the path of host path %q: %v", p, err)
	}
	if strings.HasSuffix(real, " (deleted)") {
		// Removed while being checked: judge nothing by a stale name.
		return nil, fmt.Sprintf("host path %q was removed while being checked", p)
	}
	return &pinned{fd: fd, real: real, dir: st.Mode&unix.S_IFMT == unix.S_IFDIR, dev: st.Dev, ino: st.Ino}, ""
}

// symlinkReason says which element of p is a symlink (looked up again for
// the message only) and why that is refused.
func symlinkReason(p string) string {
	what := "has a symlink in it"
	elems := strings.Split(strings.TrimPrefix(filepath.Clean(p), "/"), "/")
	for i := range elems {
		cur := "/" + filepath.Join(elems[:i+1]...)
		fi, err := os.Lstat(cur)
		if err != nil {
			break
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(cur)
			what = fmt.Sprintf("has a symlink in it (%s -> %s)", cur, target)
			break
		}
	}
	return fmt.Sprintf("host path %q %s: a symlink in a host path can be swapped between the check and runc's mount; resolve it in the pod spec", p, what)
}

func procFD(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }
