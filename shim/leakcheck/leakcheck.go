// Package leakcheck inspects a container's init process, between `runc
// create` and `runc start`, for a way out of the container: a descriptor
// that would survive exec into the container process, or a working
// directory or root outside the container's root filesystem. It is the
// run-time check of the CVE-2024-21626 class (standard library and x/sys
// only; it knows neither containerd nor runc's state files).
//
// CVE-2024-21626 (runc <= 1.1.11): runc leaked a descriptor of the host's
// /sys/fs/cgroup into runc init, and a process.cwd of /proc/self/fd/N
// started the container process with its working directory in the host's
// filesystem. The spec-side rule (hardening/fdhygiene.go) refuses the
// paths that reach such a descriptor; this package looks at the process
// itself, so a leak that no spec names (a runtime bug, a wrapper that
// passes --preserve-fds, a descriptor inherited from whoever ran runc) is
// caught before the container's code runs.
//
// What runc 1.5.2's init legitimately holds in the created state (seen with
// the pinned runc): its sync socket, an O_PATH handle on /proc/thread-self/fd,
// its own binary's O_PATH clone, the exec fifo under runc's state directory
// (O_PATH), cgroup files (cpu.cfs_quota_us, ...), a directory fd on "/",
// and the Go runtime's epoll and eventfd. All of them point outside the
// container and all carry O_CLOEXEC: finalizeNamespace (libcontainer/
// init_linux.go) marks every fd from 3+PassedFilesCount close-on-exec
// before init waits on the fifo, and standard_init_linux.go closes them
// (UnsafeCloseFrom) right before execve. So in the created state the only
// descriptors without O_CLOEXEC are stdio and the ones runc passes on
// purpose (PassedFilesCount: see Expect.Preserved).
package leakcheck

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Expect is what the inspected process may legitimately hold.
type Expect struct {
	// Preserved is the number of descriptors after stdio (3, 4, ...) that
	// the process is meant to keep across exec. runc passes exactly these
	// into the container (libcontainer's PassedFilesCount, runc's
	// utils_linux.go): the sockets of systemd socket activation when runc
	// itself was started with LISTEN_FDS and LISTEN_PID equal to its own
	// pid, then `--preserve-fds N` descriptors. Everything else is
	// close-on-exec.
	Preserved int
	// Root is the container's root filesystem as the inspecting process
	// sees it (the bundle's rootfs): the process's root must be the same
	// directory (device and inode). "" skips that comparison.
	Root string
}

// Kind says what a Finding is about.
type Kind string

// The kinds of finding.
const (
	// KindFD is a descriptor that would survive exec.
	KindFD Kind = "fd"
	// KindCwd is a working directory outside the process's root.
	KindCwd Kind = "cwd"
	// KindRoot is a root that is not the container's root filesystem.
	KindRoot Kind = "root"
)

// Finding is one way out of the container.
type Finding struct {
	Kind Kind
	// FD is the descriptor number (KindFD).
	FD int
	// Target is what it points to, as the inspecting process reads the
	// magic link (/proc/<pid>/fd/N, cwd or root).
	Target string
}

func (f Finding) String() string {
	switch f.Kind {
	case KindFD:
		return fmt.Sprintf("fd %d -> %s (no O_CLOEXEC: it would survive exec)", f.FD, f.Target)
	case KindCwd:
		return fmt.Sprintf("working directory %s is outside the process's root", f.Target)
	default:
		return fmt.Sprintf("root %s is not the container's root filesystem", f.Target)
	}
}

// Process is a process held for inspection: a pidfd and a /proc/<pid>
// directory fd, both naming the same process for as long as they are open
// (a pid reused after the process died cannot be mistaken for it).
type Process struct {
	pid   int
	pidfd int
	dir   int
}

// Open holds the process pid for inspection.
func Open(pid int) (*Process, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("invalid pid %d", pid)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("failed to open pidfd of %d: %w", pid, err)
	}
	dir, err := unix.Open("/proc/"+strconv.Itoa(pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(pidfd)
		return nil, fmt.Errorf("failed to open /proc/%d: %w", pid, err)
	}
	p := &Process{pid: pid, pidfd: pidfd, dir: dir}
	// The pid was not freed between pidfd_open and the open of its /proc
	// directory (signal 0 still reaches the pidfd's process, a zombie
	// included), so both name the same process.
	if err := p.alive(); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Close releases the process.
func (p *Process) Close() error {
	return errors.Join(unix.Close(p.dir), unix.Close(p.pidfd))
}

// Kill sends SIGKILL to the process through its pidfd.
func (p *Process) Kill() error {
	if err := unix.PidfdSendSignal(p.pidfd, unix.SIGKILL, nil, 0); err != nil {
		return fmt.Errorf("failed to kill %d: %w", p.pid, err)
	}
	return nil
}

func (p *Process) alive() error {
	if err := unix.PidfdSendSignal(p.pidfd, 0, nil, 0); err != nil {
		return fmt.Errorf("process %d is gone: %w", p.pid, err)
	}
	return nil
}

// Inspect returns the ways out of the container the process holds: every
// descriptor beyond stdio and want.Preserved without O_CLOEXEC, a root that
// is not want.Root, and a working directory outside its root. An error
// means the process could not be inspected (the caller should fail
// closed), not that it is clean.
func (p *Process) Inspect(want Expect) ([]Finding, error) {
	found, err := p.leakedFDs(want.Preserved)
	if err != nil {
		return nil, err
	}
	if want.Root != "" {
		f, err := p.checkRoot(want.Root)
		if err != nil {
			return nil, err
		}
		found = append(found, f...)
	}
	f, err := p.checkCwd()
	if err != nil {
		return nil, err
	}
	found = append(found, f...)
	// Everything read above was read while the process was alive, hence
	// from this process.
	if err := p.alive(); err != nil {
		return nil, err
	}
	return found, nil
}

// leakedFDs lists the descriptors of the process, from /proc/<pid>/fdinfo,
// that have no O_CLOEXEC and are neither stdio nor preserved.
func (p *Process) leakedFDs(preserved int) ([]Finding, error) {
	infoDir, err := unix.Openat(p.dir, "fdinfo", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("failed to open /proc/%d/fdinfo: %w", p.pid, err)
	}
	d := os.NewFile(uintptr(infoDir), "fdinfo")
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("failed to list /proc/%d/fdinfo: %w", p.pid, err)
	}
	var found []Finding
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd <= 2 || fd < 3+preserved {
			continue
		}
		flags, err := readFlags(infoDir, name)
		if errors.Is(err, unix.ENOENT) {
			continue // closed since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("failed to read /proc/%d/fdinfo/%d: %w", p.pid, fd, err)
		}
		if flags&unix.O_CLOEXEC != 0 {
			continue
		}
		found = append(found, Finding{Kind: KindFD, FD: fd, Target: readlinkOr(p.dir, "fd/"+name)})
	}
	sort.Slice(found, func(i, j int) bool { return found[i].FD < found[j].FD })
	return found, nil
}

// readFlags reads the file status flags of one descriptor (the "flags:"
// line of its fdinfo, octal).
func readFlags(infoDir int, name string) (uint64, error) {
	fd, err := unix.Openat(infoDir, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	// "pos:\t<n>\nflags:\t0<octal>\n" come first; 256 bytes hold them
	// whatever pos is (what follows depends on the file type).
	var buf [256]byte
	n, err := unix.Read(fd, buf[:])
	if err != nil {
		return 0, err
	}
	return parseFlags(string(buf[:n]))
}

// parseFlags returns the "flags:" value of an fdinfo text.
func parseFlags(info string) (uint64, error) {
	for line := range strings.SplitSeq(info, "\n") {
		v, ok := strings.CutPrefix(line, "flags:")
		if !ok {
			continue
		}
		return strconv.ParseUint(strings.TrimSpace(v), 8, 64)
	}
	return 0, errors.New(`no "flags:" line`)
}

func readlinkat(dir int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// readlinkOr is readlinkat, or a placeholder naming the error.
func readlinkOr(dir int, name string) string {
	s, err := readlinkat(dir, name)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return s
}
