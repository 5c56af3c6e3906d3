package hardening

import (
	"fmt"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// File-descriptor hygiene: the CVE-2024-21626 class.
//
// CVE-2024-21626 ("Leaky Vessels", runc <= 1.1.11): runc leaked an fd of the
// host's /sys/fs/cgroup into the container's init process. A spec whose
// process.cwd was /proc/self/fd/N (N the leaked fd; an image's WORKDIR, or
// `runc exec --cwd`, sets it) started the container process with its
// working directory in the HOST filesystem, outside the rootfs: relative
// paths from there (../../../../etc/shadow, or an args[0] of
// /proc/self/fd/N/../../../bin/sh) read and overwrote host files. runc
// 1.1.12 closes the leak and verifies the cwd after chdir (verifyCwd); the
// shim also refuses runc versions before it. This rule is the defence in
// depth a wrapper can add on top, and it is generic rather than a one-off:
// any fd that leaks into runc init tomorrow is reachable only through the
// /proc magic links refused here, so the next leak of the same kind is not
// exploitable through the spec either.
//
// Refused, in process.cwd, mount sources and destinations, process.args[0]
// (when it is a path) and the path lists PATH, LD_PRELOAD, LD_LIBRARY_PATH
// and LD_AUDIT (which decide what the process executes or maps):
//   - a relative cwd or mount destination (runtime-spec requires absolute
//     ones; resolving them against whatever runc's cwd happens to be is how
//     host paths sneak in);
//   - any ".." element: a path that climbs out of where it appears to be is
//     how a leaked directory fd is turned into the host's root;
//   - any path through /proc/{self,thread-self,<pid>}/{fd,cwd,root,exe,map_files}
//     (also under task/<tid>/), anything under /proc/thread-self, and the
//     aliases runc itself creates in the container's /dev (/dev/fd ->
//     /proc/self/fd, /dev/std{in,out,err} -> /proc/self/fd/{0,1,2}): these
//     are magic links that resolve to whatever file or directory the fd
//     refers to, wherever it lives, not to a path in the rootfs. A proc
//     filesystem the spec mounts somewhere else than /proc is covered too.
//
// Relative args[0] and list elements are checked as the kernel resolves
// them: against the cwd (cwd=/proc with args[0]=self/fd/7/x is the same
// attack). Paths inside the image that are symlinks to /proc/self/fd/N
// cannot be seen without reading the rootfs; a fixed runc catches those
// (verifyCwd), which is why the shim refuses older runc as well.
//
// Environment values never appear in errors (they may carry secrets); the
// variable is named instead.

// pathListEnv lists the environment variables whose values are path lists
// that decide what the process loads or executes.
var pathListEnv = []string{"PATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT"}

// magicLinks are the per-process entries of /proc that are magic links.
var magicLinks = map[string]bool{"fd": true, "cwd": true, "root": true, "exe": true, "map_files": true}

// checkFDHygiene refuses a spec whose process or mounts could reach a
// leaked fd (see above).
func checkFDHygiene(s *specs.Spec) error {
	procRoots := procMounts(s.Mounts)
	for i, m := range s.Mounts {
		if reason := pathReason(m.Destination, "", procRoots); reason != "" {
			return refuse(RuleFDHygiene, fmt.Sprintf("mounts[%d].destination", i), "destination %q %s", m.Destination, reason)
		}
		// Sources of most filesystems ("proc", "tmpfs", "overlay") are
		// names, not paths; bind mount sources and absolute sources are
		// paths, resolved on the host.
		if isBind(m) || strings.HasPrefix(m.Source, "/") {
			if reason := pathReason(m.Source, "", nil); reason != "" {
				return refuse(RuleFDHygiene, fmt.Sprintf("mounts[%d].source", i), "source %q %s", m.Source, reason)
			}
		}
	}
	if s.Process != nil {
		return checkProcessFDHygiene(s.Process, procRoots)
	}
	return nil
}

// checkProcessFDHygiene checks a process's cwd, args[0] and path lists;
// procRoots are the destinations where the container mounts a procfs.
func checkProcessFDHygiene(p *specs.Process, procRoots []string) error {
	if reason := pathReason(p.Cwd, "", procRoots); reason != "" {
		return refuse(RuleFDHygiene, "process.cwd", "cwd %q %s", p.Cwd, reason)
	}
	cwd := path.Clean(p.Cwd)
	if len(p.Args) > 0 && strings.Contains(p.Args[0], "/") {
		if reason := pathReason(p.Args[0], cwd, procRoots); reason != "" {
			return refuse(RuleFDHygiene, "process.args[0]", "executable %q %s", p.Args[0], reason)
		}
	}
	for _, kv := range p.Env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !isPathListEnv(name) {
			continue
		}
		// ld.so splits LD_PRELOAD on spaces and colons, LD_LIBRARY_PATH
		// on colons and semicolons; split on all of them everywhere.
		elems := strings.FieldsFunc(value, func(r rune) bool { return r == ':' || r == ' ' || r == ';' })
		for j, e := range elems {
			if reason := pathReason(e, cwd, procRoots); reason != "" {
				return refuse(RuleFDHygiene, "process.env", "%s: element %d %s", name, j+1, reason)
			}
		}
	}
	return nil
}

func isPathListEnv(name string) bool {
	for _, n := range pathListEnv {
		if name == n {
			return true
		}
	}
	return false
}

// pathReason returns why p is refused, or "". A relative p is refused
// unless base is set, in which case it is resolved against base.
// procRoots are where a procfs is mounted besides /proc.
func pathReason(p, base string, procRoots []string) string {
	if p == "" {
		if base == "" {
			return "is empty"
		}
		return ""
	}
	if !strings.HasPrefix(p, "/") {
		if base == "" {
			return "is not absolute"
		}
		p = base + "/" + p
	}
	if hasDotDot(p) {
		return `has a ".." element`
	}
	if via := magicVia(path.Clean(p), procRoots); via != "" {
		return "goes through " + via + " (a magic link that can reach a leaked host fd, CVE-2024-21626)"
	}
	return ""
}

func hasDotDot(p string) bool {
	for e := range strings.SplitSeq(p, "/") {
		if e == ".." {
			return true
		}
	}
	return false
}

// magicVia returns the magic-link prefix clean (a cleaned absolute path)
// goes through, or "".
func magicVia(clean string, procRoots []string) string {
	switch {
	case clean == "/dev/fd" || strings.HasPrefix(clean, "/dev/fd/"):
		return "/dev/fd"
	case clean == "/dev/stdin" || clean == "/dev/stdout" || clean == "/dev/stderr":
		return clean
	}
	if via := procMagicVia(clean, "/proc"); via != "" {
		return via
	}
	for _, root := range procRoots {
		if via := procMagicVia(clean, root); via != "" {
			return via
		}
	}
	return ""
}

func procMagicVia(clean, root string) string {
	rest, ok := strings.CutPrefix(clean, root)
	if !ok || root == "/" && rest == "" {
		return ""
	}
	if root != "/" {
		if rest == "" || rest[0] != '/' {
			return ""
		}
		rest = rest[1:]
	}
	elems := strings.Split(rest, "/")
	pid := elems[0]
	switch {
	case pid == "thread-self":
		return root + "/thread-self"
	case pid == "self" || isDigits(pid):
	default:
		return ""
	}
	if len(elems) >= 2 && magicLinks[elems[1]] {
		return fmt.Sprintf("%s/%s/%s", root, pidName(pid), elems[1])
	}
	if len(elems) >= 4 && elems[1] == "task" && magicLinks[elems[3]] {
		return fmt.Sprintf("%s/%s/task/<tid>/%s", root, pidName(pid), elems[3])
	}
	return ""
}

func pidName(pid string) string {
	if pid == "self" {
		return pid
	}
	return "<pid>"
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// procMounts returns the destinations (other than /proc) where the spec
// mounts a procfs, or binds the host's /proc.
func procMounts(mounts []specs.Mount) []string {
	var roots []string
	for _, m := range mounts {
		if m.Type == "proc" || isBind(m) && path.Clean(m.Source) == "/proc" {
			d := path.Clean(m.Destination)
			if d != "/proc" && strings.HasPrefix(d, "/") {
				roots = append(roots, d)
			}
		}
	}
	return roots
}

// isBind reports whether m is a bind mount (runc: type "bind", or a
// "bind"/"rbind" option whatever the type).
func isBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}
