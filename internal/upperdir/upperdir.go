// Package upperdir reads what a container wrote on its rootfs from the
// overlay snapshot's upper directory: every file, symlink, whiteout
// (a deletion) or empty directory there is a change to the image's tree.
// It answers the question an operator rolling out a read-only rootfs asks
// of a container that runs with a writable one: where did it write?
package upperdir

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Bounds: a walk stops after maxEntries entries, and at most maxPaths
// directories are reported.
const (
	maxEntries = 20000
	maxPaths   = 32
	// depth is how deep a written path is named: /var/lib/nginx/body/0001
	// is reported as /var/lib/nginx.
	depth = 3
)

// Upper returns the upperdir option of an overlay rootfs mount's options,
// or "".
func Upper(options []string) string {
	for _, o := range options {
		if v, ok := strings.CutPrefix(o, "upperdir="); ok {
			return v
		}
	}
	return ""
}

// Written lists the directories (cut at depth 3) in which the container
// changed its rootfs, as the container sees them, leaving out the paths
// under exclude (scratch directories, mount destinations: what a read-only
// rootfs would still let it write, and what the runtime itself created).
// truncated is set when a bound was reached.
func Written(upper string, exclude []string) (paths []string, truncated bool, err error) {
	n := 0
	errStop := errors.New("stop")
	err = filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(upper, p)
		if rel == "." {
			return nil
		}
		if n++; n > maxEntries {
			truncated = true
			return errStop
		}
		cpath := "/" + filepath.ToSlash(rel)
		if excluded(cpath, exclude) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if empty, _ := isEmpty(p); !empty {
				return nil
			}
		}
		dir := cut(cpath, d.IsDir())
		if !slices.Contains(paths, dir) {
			if len(paths) >= maxPaths {
				truncated = true
				return errStop
			}
			paths = append(paths, dir)
		}
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	slices.Sort(paths)
	return paths, truncated, err
}

// cut names a change by its directory, at most depth elements deep.
func cut(p string, isDir bool) string {
	dir := p
	if !isDir {
		dir = path.Dir(p)
	}
	if dir == "/" {
		return p // a file at the top: /.ash_history
	}
	parts := strings.Split(strings.TrimPrefix(dir, "/"), "/")
	if len(parts) > depth {
		parts = parts[:depth]
	}
	return "/" + strings.Join(parts, "/")
}

func excluded(p string, exclude []string) bool {
	for _, e := range exclude {
		if p == e || strings.HasPrefix(p, strings.TrimSuffix(e, "/")+"/") {
			return true
		}
	}
	return false
}

func isEmpty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return len(names) == 0, err
}
