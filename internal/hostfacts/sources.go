package hostfacts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/decide"
)

// Host paths as the host resolves them. A spec's host paths (bind sources,
// root.path) are opened here with openat2(2), without following symlinks,
// and held open: the shim stages (bind-mounts) the opened inodes for the
// runtime, so the inode judged by its real path is the inode mounted;
// `hardenctl explain` opens them the same way to judge them as the shim
// would, and closes them.

// Pinned is one host path opened with O_PATH, without following symlinks.
type Pinned struct {
	FD   int
	Real string // readlink /proc/self/fd/N
	Dir  bool
	Dev  uint64
	Ino  uint64
}

// Sources are the opened paths by source as written: one open per distinct
// source, so that every mount naming it is staged from the inode judged.
type Sources map[string]*Pinned

// Close closes every opened path.
func (ps Sources) Close() {
	for _, p := range ps {
		unix.Close(p.FD)
	}
}

// Resolved maps each source as written to its opened inode's real path.
func (ps Sources) Resolved() map[string]string {
	out := make(map[string]string, len(ps))
	for src, p := range ps {
		out[src] = p.Real
	}
	return out
}

// Open opens every item's source once. A refusal is a
// *hardening.RefusalError naming the item's field; nothing stays open then.
func Open(items []decide.PinItem) (Sources, error) {
	ps := Sources{}
	for _, it := range items {
		if _, ok := ps[it.Source]; ok {
			continue
		}
		p, reason := openPinned(it.Source)
		if reason != "" {
			ps.Close()
			return nil, &hardening.RefusalError{Rule: hardening.RuleMounts, Field: it.Field, Reason: reason}
		}
		ps[it.Source] = p
	}
	return ps, nil
}

// openPinned opens the host path p with openat2(2): O_PATH (files and
// directories alike), RESOLVE_NO_SYMLINKS (no symlink in any element; the
// last one is not followed either: ELOOP) and RESOLVE_NO_MAGICLINKS. It
// returns the opened path, or why it is refused.
func openPinned(p string) (*Pinned, string) {
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
func inspectPinned(fd int, p string) (*Pinned, string) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Sprintf("failed to stat host path %q: %v", p, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		// Never mount through a symlink (openat2 does not return one here).
		return nil, symlinkReason(p)
	}
	real, err := os.Readlink(ProcFD(fd))
	if err != nil {
		return nil, fmt.Sprintf("failed to read the path of host path %q: %v", p, err)
	}
	if strings.HasSuffix(real, " (deleted)") {
		// Removed while being checked: judge nothing by a stale name.
		return nil, fmt.Sprintf("host path %q was removed while being checked", p)
	}
	return &Pinned{FD: fd, Real: real, Dir: st.Mode&unix.S_IFMT == unix.S_IFDIR, Dev: st.Dev, Ino: st.Ino}, ""
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

// ProcFD is the magic link of the shim's own descriptor fd.
func ProcFD(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }
