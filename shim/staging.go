package shim

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/log"
	"golang.org/x/sys/unix"

	"github.com/hardened-dev/hardened/internal/decide"
	"github.com/hardened-dev/hardened/internal/hostfacts"
)

// Staging: the pinned sources bind-mounted under RunDir/staging (pin.go
// says why), and their removal.

// bindMount is mount(2) for the staging mounts (tests make it fail).
var bindMount = unix.Mount

// stageAll stages every item of pp from its pinned inode. Leftovers of an
// earlier attempt are removed first; on failure everything staged is.
func stageAll(pp *decide.Pins, pins hostfacts.Sources) error {
	if err := removeStaging(pp.Dir); err != nil {
		return err
	}
	if err := mkdirStaging(pp.Dir); err != nil {
		return err
	}
	for _, it := range pp.Items {
		if err := stageOne(pins[it.Source], it.Staged, it.Rec); err != nil {
			err = fmt.Errorf("%s %q: %w", it.Field, it.Source, err)
			return errors.Join(err, removeStaging(pp.Dir))
		}
	}
	return nil
}

// mkdirStaging creates dir (0700, root's), retrying when another shim
// removed the namespace's directory in between (removeStaging).
func mkdirStaging(dir string) error {
	var err error
	for range 3 {
		if err = os.MkdirAll(filepath.Dir(dir), 0o700); err == nil {
			err = os.Mkdir(dir, 0o700)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("failed to create %s: %w", dir, err)
	}
	return nil
}

// stageOne bind-mounts the pinned inode onto target, a new empty directory
// (or file, for anything but a directory), and checks that target now
// shows that inode.
func stageOne(p *hostfacts.Pinned, target string, rec bool) error {
	if p.Dir {
		if err := os.Mkdir(target, 0o700); err != nil {
			return fmt.Errorf("failed to create %s: %w", target, err)
		}
	} else {
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("failed to create %s: %w", target, err)
		}
		f.Close()
	}
	flags := uintptr(unix.MS_BIND)
	if rec {
		flags |= unix.MS_REC
	}
	if err := bindMount(hostfacts.ProcFD(p.FD), target, "", flags, ""); err != nil {
		return fmt.Errorf("failed to bind-mount the pinned source on %s: %w", target, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(target, &st); err != nil {
		return fmt.Errorf("failed to stat %s: %w", target, err)
	}
	if st.Dev != p.Dev || st.Ino != p.Ino {
		// The runtime would mount something other than what was judged.
		return fmt.Errorf("%s does not show the pinned inode", target)
	}
	return nil
}

// removeStaging unmounts and removes a container's staging directory and
// then its namespace's directory if that is empty. A missing directory is
// not an error, so it can run on every path (and again on Delete). It
// never removes a directory's contents: a path still mounted stays, and
// its error is returned.
func removeStaging(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", dir, err)
	}
	var errs []error
	for _, e := range ents {
		errs = append(errs, unstage(filepath.Join(dir, e.Name())))
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("failed to remove %s: %w", dir, err))
	}
	// ENOTEMPTY while other containers of the namespace are staged.
	_ = os.Remove(filepath.Dir(dir))
	return errors.Join(errs...)
}

// unstage detaches every mount on the staging path p, each made private
// (with its submounts) first, then removes p.
func unstage(p string) error {
	for range 8 {
		// Private first: a staged rbind of a shared source is in the
		// source's peer group, and its unmount would propagate there,
		// detaching the host's own submounts of the source.
		if err := unix.Mount("", p, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
				break // not (or no longer) a mount point
			}
			return fmt.Errorf("failed to make %s private: %w", p, err)
		}
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("failed to unmount %s: %w", p, err)
		}
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("failed to remove %s: %w", p, err)
	}
	return nil
}

// hold keeps container id's staging directory until its Start returns
// (or its Delete).
func (s *Service) hold(id, dir string) {
	s.mu.Lock()
	s.staged[id] = dir
	s.mu.Unlock()
}

// unstage removes a staging directory now. A failure is logged and the
// directory held, so that Delete tries again: the container exists by
// then, and a staging mount left behind is reachable by root only.
func (s *Service) unstage(ctx context.Context, id, dir string) {
	if err := removeStaging(dir); err != nil {
		log.G(ctx).WithError(err).WithField("id", id).Warn("hardened: failed to remove the staged mount sources")
		s.hold(id, dir)
	}
}

// releaseStaged removes container id's staging directory: the one held
// in memory, and the one its namespace and id name on disk (idempotent).
func (s *Service) releaseStaged(ctx context.Context, id string) {
	s.mu.Lock()
	dir, ok := s.staged[id]
	delete(s.staged, id)
	s.mu.Unlock()
	if ok {
		s.unstageOnce(ctx, id, dir)
	}
	ns, found := namespaces.Namespace(ctx)
	if !found {
		ns = s.namespace
	}
	if d, err := decide.StagingDir(s.runDir, ns, id); err == nil && d != dir {
		s.unstageOnce(ctx, id, d)
	}
}

func (s *Service) unstageOnce(ctx context.Context, id, dir string) {
	if err := removeStaging(dir); err != nil {
		log.G(ctx).WithError(err).WithField("id", id).Warn("hardened: failed to remove the staged mount sources")
	}
}
