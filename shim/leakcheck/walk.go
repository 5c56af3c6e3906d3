package leakcheck

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// The working directory is inside the container when walking ".." from it
// meets the process's root. The walk runs here, in the inspecting process,
// and the kernel resolves ".." against the inspector's root, not the
// container's: so where does it stop?
//
//   - After runc's pivot_root, the container's root is a mount whose parent
//     is the mount namespace's absolute root, attached at that mount's own
//     root; ".." at the root of such a mount has nowhere to go (the kernel's
//     follow_dotdot: choose_mountpoint finds no mountpoint that is not a
//     mount root) and stays. Seen with runc 1.5.2: from the shim, ".." of a
//     container's "/" is "/" again. The same holds for runc's no-pivot mode
//     (the rootfs moved onto "/" of the old root, then chroot).
//   - After a plain chroot into a directory, ".." climbs past the root up to
//     the inspector's root. So the root has to be met on the way, not at the
//     end.
//   - Device and inode are not enough to recognise the root: the host's view
//     of the bundle's rootfs is the same directory as the container's "/",
//     but ".." from it leads to the bundle, on the host. A descriptor opened
//     on the host before runc unshared the mount namespace is on the host's
//     mount, not the container's copy of it. So the walk compares the mount
//     too (statx STATX_MNT_ID): a step is the root when mount id, device and
//     inode are the root's.

// maxDepth bounds the walk: a path of PATH_MAX bytes has fewer components.
const maxDepth = unix.PathMax

// dirID identifies a directory as reached through one mount.
type dirID struct {
	mnt      uint64
	dev, ino uint64
}

func identify(fd int) (dirID, error) {
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_INO|unix.STATX_MNT_ID, &stx); err != nil {
		return dirID{}, err
	}
	if stx.Mask&unix.STATX_MNT_ID == 0 {
		return dirID{}, errors.New("the kernel reports no mount id (statx STATX_MNT_ID needs Linux 5.8)")
	}
	return dirID{mnt: stx.Mnt_id, dev: unix.Mkdev(stx.Dev_major, stx.Dev_minor), ino: stx.Ino}, nil
}

func openDir(dir int, name string) (int, error) {
	return unix.Openat(dir, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// checkRoot compares the process's root with want, the container's root
// filesystem as this process sees it: the same directory (device and
// inode; the mounts differ, the container's being a copy in its own mount
// namespace).
func (p *Process) checkRoot(want string) ([]Finding, error) {
	var got, exp unix.Stat_t
	if err := unix.Fstatat(p.dir, "root", &got, 0); err != nil {
		return nil, fmt.Errorf("failed to stat /proc/%d/root: %w", p.pid, err)
	}
	if err := unix.Stat(want, &exp); err != nil {
		return nil, fmt.Errorf("failed to stat the container's root %s: %w", want, err)
	}
	if got.Dev == exp.Dev && got.Ino == exp.Ino {
		return nil, nil
	}
	return []Finding{{Kind: KindRoot, FD: -1, Target: readlinkOr(p.dir, "root")}}, nil
}

// checkCwd walks ".." from the process's working directory and reports it
// unless the walk meets the process's root (see above).
func (p *Process) checkCwd() ([]Finding, error) {
	root, err := openDir(p.dir, "root")
	if err != nil {
		return nil, fmt.Errorf("failed to open /proc/%d/root: %w", p.pid, err)
	}
	rootID, err := identify(root)
	unix.Close(root)
	if err != nil {
		return nil, fmt.Errorf("failed to stat /proc/%d/root: %w", p.pid, err)
	}
	cwd, err := openDir(p.dir, "cwd")
	if err != nil {
		return nil, fmt.Errorf("failed to open /proc/%d/cwd: %w", p.pid, err)
	}
	met, err := walkUp(cwd, rootID)
	if err != nil {
		return nil, fmt.Errorf("failed to walk up from /proc/%d/cwd: %w", p.pid, err)
	}
	if met {
		return nil, nil
	}
	return []Finding{{Kind: KindCwd, FD: -1, Target: readlinkOr(p.dir, "cwd")}}, nil
}

// walkUp follows ".." from the directory fd (which it closes) until it
// meets want or stops moving.
func walkUp(fd int, want dirID) (bool, error) {
	cur := fd
	defer func() { unix.Close(cur) }()
	id, err := identify(cur)
	if err != nil {
		return false, err
	}
	for range maxDepth {
		if id == want {
			return true, nil
		}
		parent, err := openDir(cur, "..")
		if err != nil {
			return false, err
		}
		pid, err := identify(parent)
		if err != nil {
			unix.Close(parent)
			return false, err
		}
		if pid == id {
			unix.Close(parent)
			return false, nil
		}
		unix.Close(cur)
		cur, id = parent, pid
	}
	return false, fmt.Errorf("still climbing after %d steps", maxDepth)
}
