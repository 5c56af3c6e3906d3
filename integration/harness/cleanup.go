package harness

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

const ownerFile = "owner.pid"

// Namespace returns a new containerd namespace name, unique to this run
// ("hd-<random>-<tag>"), and records it so that Stop reaps it and removes
// its cgroups.
func (d *Daemon) Namespace(tag string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	tag = sanitize(tag)
	if len(tag) > 40 {
		tag = tag[:40]
	}
	ns := "hd-" + hex.EncodeToString(b[:])
	if tag != "" {
		ns += "-" + tag
	}
	d.mu.Lock()
	d.nss[ns] = true
	d.mu.Unlock()
	return ns
}

// Context returns ctx bound to containerd namespace ns.
func Context(ctx context.Context, ns string) context.Context {
	return namespaces.WithNamespace(ctx, ns)
}

func sanitize(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimRight(b.String(), "-")
}

// Reap deletes every container of namespace ns: kill, wait, delete the
// task, delete the container and its snapshot. It is cleanup, not a test:
// what it had to delete is a leak the caller may report first (Leftovers).
func (d *Daemon) Reap(ctx context.Context, ns string) error {
	ctx = Context(ctx, ns)
	list, err := d.Client.Containers(ctx)
	if err != nil {
		return fmt.Errorf("failed to list containers of %s: %w", ns, err)
	}
	var errs []error
	for _, c := range list {
		if err := deleteContainer(ctx, c); err != nil {
			errs = append(errs, fmt.Errorf("failed to reap %s/%s: %w", ns, c.ID(), err))
		}
	}
	return errors.Join(errs...)
}

func deleteContainer(ctx context.Context, c client.Container) error {
	if task, err := c.Task(ctx, nil); err == nil {
		if st, err := task.Status(ctx); err == nil && st.Status != client.Stopped {
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			ch, werr := task.Wait(wctx)
			if err := task.Kill(ctx, syscall.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
				cancel()
				return err
			}
			if werr == nil {
				select {
				case <-ch:
				case <-wctx.Done():
				}
			}
			cancel()
		}
		if _, err := task.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
			if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
				return err
			}
		}
	} else if !errdefs.IsNotFound(err) {
		return err
	}
	if err := c.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return nil
}

// Leftovers lists what containerd namespace ns left behind: containers
// still recorded, mounts under the temp dir belonging to the namespace (in
// this process's and in the daemon's mount namespace), cgroups of the
// namespace that still have children, processes (other than containerd)
// whose command line names the namespace's state or whose cgroup is one of
// the namespace's. Empty when the namespace is clean.
func (d *Daemon) Leftovers(ctx context.Context, ns string) []string {
	var out []string
	if d.Client != nil && d.Alive() {
		if list, err := d.Client.Containers(Context(ctx, ns)); err != nil {
			out = append(out, fmt.Sprintf("cannot list containers: %v", err))
		} else {
			for _, c := range list {
				out = append(out, "container "+c.ID())
			}
		}
	}
	nsMark := "/" + ns + "/"
	for _, mi := range []string{"/proc/self/mountinfo", fmt.Sprintf("/proc/%d/mountinfo", d.Pid())} {
		for _, m := range MountsUnder(d.Dir, mi) {
			if strings.Contains(m+"/", nsMark) {
				out = append(out, fmt.Sprintf("mount %s (in %s)", m, mi))
			}
		}
	}
	// In the daemon's mount namespace the temp tree's run/ is /run: the
	// shim's staging mounts (RunDir/staging/<ns>/...) show there, under
	// /run, and die with the namespace when containerd stops.
	for _, m := range MountsUnder("/run/containerd-hardened/staging", fmt.Sprintf("/proc/%d/mountinfo", d.Pid())) {
		if strings.Contains(m+"/", nsMark) {
			out = append(out, fmt.Sprintf("mount %s (in containerd's mount namespace)", m))
		}
	}
	if ents, err := os.ReadDir(d.StagingDir(ns)); err == nil {
		for _, e := range ents {
			out = append(out, "staging directory "+filepath.Join(d.StagingDir(ns), e.Name()))
		}
	}
	for _, cg := range cgroupChildren(ns) {
		out = append(out, "cgroup "+cg)
	}
	for _, p := range processes() {
		if p.pid == d.Pid() || p.pid == os.Getpid() {
			continue
		}
		if p.names(d.Dir, ns) {
			out = append(out, fmt.Sprintf("process %d: %s", p.pid, p.cmdline()))
		}
	}
	for _, pid := range cgroupProcs(ns) {
		if pid != d.Pid() {
			out = append(out, fmt.Sprintf("process %d in a cgroup of %s: %s", pid, ns, readCmdline(pid)))
		}
	}
	sort.Strings(out)
	return dedup(out)
}

func dedup(s []string) []string {
	var out []string
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

type proc struct {
	pid, ppid int
	args      []string
	cwd       string
}

func (p proc) cmdline() string { return strings.Join(p.args, " ") }

// names reports whether the process belongs to the harness's dir (when ns
// is "") or to namespace ns of it: a shim names its namespace after
// -namespace; runc, runsc and the shim name bundle and state paths.
func (p proc) names(dir, ns string) bool {
	if ns == "" {
		if strings.HasPrefix(p.cwd, dir+"/") || p.cwd == dir {
			return true
		}
		for _, a := range p.args {
			if strings.Contains(a, dir) {
				return true
			}
		}
		return false
	}
	for i, a := range p.args {
		if (a == "-namespace" || a == "--namespace") && i+1 < len(p.args) && p.args[i+1] == ns {
			return true
		}
		if strings.Contains(a, dir) && (strings.Contains(a, "/"+ns+"/") || strings.HasSuffix(a, "/"+ns)) {
			return true
		}
	}
	return strings.HasPrefix(p.cwd, dir+"/") && strings.Contains(p.cwd+"/", "/"+ns+"/")
}

func processes() []proc {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		out = append(out, proc{pid: pid, ppid: ParentPid(pid), args: args, cwd: cwd})
	}
	return out
}

// ParentPid reads a process's parent from /proc/PID/stat (0 if gone).
// ParentPid is pid's parent (0 when it cannot be read).
func ParentPid(pid int) int {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	s := string(stat)
	fl := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fl) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fl[1])
	return ppid
}

func readCmdline(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " "))
}

// MountNS returns pid's mount namespace's name ("mnt:[N]", what
// KillLeftovers matches) and the namespace opened. Hold the file until
// the cleanup is done: a namespace nothing holds is freed, and its inode
// number goes to the next namespace made on the machine (the kernel hands
// out the lowest free one), another test's `runc init` for one, which the
// cleanup would then take for a leftover and kill.
func MountNS(pid int) (string, *os.File, error) {
	p := fmt.Sprintf("/proc/%d/ns/mnt", pid)
	ref, err := os.Open(p)
	if err != nil {
		return "", nil, err
	}
	name, err := os.Readlink(p) // read once the namespace is held
	if err != nil {
		ref.Close()
		return "", nil, err
	}
	return name, ref, nil
}

// KillLeftovers SIGKILLs, until none is left (at most ~5s), every process
// that names dir, lives in the mount namespace mntNS ("" for none; held
// open by the caller: MountNS), or sits
// in a cgroup of one of the containerd namespaces nss, and their
// descendants (container processes live in namespaces of their own, under
// the shims). It returns what it killed.
func KillLeftovers(dir, mntNS string, nss []string) []string {
	self := os.Getpid()
	var killed []string
	seen := map[int]bool{}
	for round := 0; round < 50; round++ {
		procs := processes()
		victims := map[int]string{}
		for _, p := range procs {
			if p.pid == self || p.pid == 1 {
				continue
			}
			if p.names(dir, "") {
				victims[p.pid] = p.cmdline()
				continue
			}
			if mntNS != "" {
				if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", p.pid)); err == nil && ns == mntNS {
					victims[p.pid] = p.cmdline()
				}
			}
		}
		for _, ns := range nss {
			for _, pid := range cgroupProcs(ns) {
				if pid != self {
					victims[pid] = readCmdline(pid)
				}
			}
		}
		for grew := true; grew; {
			grew = false
			for _, p := range procs {
				if _, ok := victims[p.pid]; !ok && p.pid != self {
					if _, parent := victims[p.ppid]; parent {
						victims[p.pid], grew = p.cmdline(), true
					}
				}
			}
		}
		if len(victims) == 0 {
			break
		}
		for pid, cmd := range victims {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			if !seen[pid] {
				seen[pid] = true
				killed = append(killed, fmt.Sprintf("%d %s", pid, cmd))
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return killed
}

// MountsUnder returns the mount points under dir listed in a mountinfo
// file, deepest first.
func MountsUnder(dir, mountinfo string) []string {
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// UnmountUnder detaches every mount under dir (this mount namespace).
func UnmountUnder(dir string) error {
	var errs []error
	for i := 0; i < 5; i++ {
		mounts := MountsUnder(dir, "/proc/self/mountinfo")
		if len(mounts) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, m := range mounts {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("failed to unmount %s: %w", m, err))
			}
		}
	}
	return errors.Join(errs...)
}

// cgroupRoots are the cgroup hierarchies mounted in this process's mount
// namespace (every v1 controller and the v2 unified mount).
func cgroupRoots() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, " - ")
		if i < 0 {
			continue
		}
		fields := strings.Fields(line[:i])
		fstype := strings.Fields(line[i+3:])
		if len(fields) >= 5 && len(fstype) > 0 && (fstype[0] == "cgroup" || fstype[0] == "cgroup2") {
			out = append(out, unescapeMountinfo(fields[4]))
		}
	}
	return out
}

// cgroupChildren lists the cgroups under <hierarchy>/<ns>/ (containerd's
// default cgroupsPath is /<namespace>/<id>): a clean namespace has none.
func cgroupChildren(ns string) []string {
	var out []string
	for _, root := range cgroupRoots() {
		base := filepath.Join(root, ns)
		_ = filepath.WalkDir(base, func(path string, de os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if de.IsDir() && path != base {
				out = append(out, path)
			}
			return nil
		})
	}
	return out
}

func cgroupProcs(ns string) []int {
	seen := map[int]bool{}
	var out []int
	for _, root := range cgroupRoots() {
		base := filepath.Join(root, ns)
		_ = filepath.WalkDir(base, func(path string, de os.DirEntry, err error) error {
			if err != nil || !de.IsDir() {
				return nil
			}
			data, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
			if err != nil {
				return nil
			}
			for _, l := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(l); err == nil && !seen[pid] {
					seen[pid] = true
					out = append(out, pid)
				}
			}
			return nil
		})
	}
	return out
}

// removeCgroups removes <hierarchy>/<ns> and everything under it, deepest
// first (rmdir only: a cgroup with processes stays and is an error).
func removeCgroups(ns string) error {
	if ns == "" || strings.Contains(ns, "/") {
		return fmt.Errorf("refusing to remove cgroups of namespace %q", ns)
	}
	var errs []error
	for _, root := range cgroupRoots() {
		base := filepath.Join(root, ns)
		var dirs []string
		_ = filepath.WalkDir(base, func(path string, de os.DirEntry, err error) error {
			if err == nil && de.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, dir := range dirs {
			var err error
			for i := 0; i < 20; i++ {
				if err = syscall.Rmdir(dir); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("failed to remove cgroup %s: %w", dir, err))
			}
		}
	}
	return errors.Join(errs...)
}

// sweepStale cleans up /tmp/hd-* trees whose owning process is gone (a
// previous run that was killed before its cleanup ran).
func sweepStale() {
	dirs, _ := filepath.Glob("/tmp/hd-*")
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue
		}
		var nss []string
		if ents, err := os.ReadDir(filepath.Join(dir, "state", "io.containerd.runtime.v2.task")); err == nil {
			for _, e := range ents {
				nss = append(nss, e.Name())
			}
		}
		KillLeftovers(dir, "", nss)
		_ = UnmountUnder(dir)
		for _, ns := range nss {
			_ = removeCgroups(ns)
		}
		if len(MountsUnder(dir, "/proc/self/mountinfo")) == 0 {
			_ = os.RemoveAll(dir)
		}
	}
}

// CgroupDirs lists <hierarchy>/<ns> directories that exist (none after
// Stop).
func CgroupDirs(ns string) []string {
	var out []string
	for _, root := range cgroupRoots() {
		if fi, err := os.Stat(filepath.Join(root, ns)); err == nil && fi.IsDir() {
			out = append(out, filepath.Join(root, ns))
		}
	}
	return out
}
