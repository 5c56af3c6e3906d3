package profiles

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Scratch directories declared for a workload, beyond its profile's: on a
// read-only rootfs, a program that writes its cache or logs under /var
// fails. The image author (an image config label) and the operator (the
// node policy and its routes) can name directories the program writes:
// each becomes a tmpfs holding a copy of what the image has there
// (CopyUp), so the rootfs stays read-only and the program runs with no
// change to its manifests. A pod author cannot declare one.

// ScratchLabel is the image config label declaring scratch directories:
// "PATH[:SIZE],..." (for example "/var/cache/nginx,/var/log/nginx:32m").
const ScratchLabel = "hardened.dev/scratch"

// What an image label may declare: at most MaxLabelScratch directories,
// each under one of LabelScratchRoots (not the root itself), sized at most
// MaxLabelScratchSize (DefaultLabelScratchSize when it names none). The
// image's binaries, libraries and configuration (/usr, /bin, /etc, ...)
// stay read-only whatever an image says.
const (
	MaxLabelScratch         = 8
	DefaultLabelScratchSize = "16m"
	MaxLabelScratchSize     = 256 << 20
)

// LabelScratchRoots are the directories under which an image label may
// declare scratch space: variable data, runtime state, temporary files,
// homes and served data.
var LabelScratchRoots = []string{"/var", "/run", "/tmp", "/home", "/srv"}

// kernelTrees are never scratch space: a tmpfs there would hide what the
// runtime mounts (proc, sysfs, devices).
var kernelTrees = []string{"/proc", "/sys", "/dev"}

// CheckScratchPath says what is wrong with p as a scratch directory
// anyone declares, or "".
func CheckScratchPath(p string) string {
	switch {
	case !isCleanAbs(p):
		return fmt.Sprintf("scratch path %q must be absolute and clean", p)
	case p == "/":
		return "scratch path may not be /"
	}
	for _, k := range kernelTrees {
		if p == k || strings.HasPrefix(p, k+"/") {
			return fmt.Sprintf("scratch path %q is in %s, which the runtime mounts", p, k)
		}
	}
	return ""
}

// CheckScratch says what is wrong with a declared scratch directory (its
// path, its size), or "".
func CheckScratch(s Scratch) string {
	if problem := CheckScratchPath(s.Path); problem != "" {
		return problem
	}
	if s.Size != "" && !sizeRE.MatchString(s.Size) {
		return fmt.Sprintf("scratch size %q is not a size (like \"64m\", \"1g\" or \"10%%\")", s.Size)
	}
	return ""
}

// ParseScratchLabel parses the value of ScratchLabel into copy-up scratch
// directories, or says why it cannot be honoured.
func ParseScratchLabel(v string) ([]Scratch, error) {
	var out []Scratch
	for _, entry := range strings.Split(v, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		p, size, _ := strings.Cut(entry, ":")
		if problem := CheckScratchPath(p); problem != "" {
			return nil, fmt.Errorf("%s", problem)
		}
		under := false
		for _, root := range LabelScratchRoots {
			under = under || strings.HasPrefix(p, root+"/")
		}
		if !under {
			return nil, fmt.Errorf("scratch path %q is not under %s: an image may declare scratch space only there", p, strings.Join(LabelScratchRoots, ", "))
		}
		if size == "" {
			size = DefaultLabelScratchSize
		}
		n, ok := sizeBytes(size)
		if !ok || n > MaxLabelScratchSize {
			return nil, fmt.Errorf("scratch size %q of %s is not a size of at most %dm (like \"32m\")", size, p, MaxLabelScratchSize>>20)
		}
		for _, o := range out {
			if o.Path == p || strings.HasPrefix(p, o.Path+"/") || strings.HasPrefix(o.Path, p+"/") {
				return nil, fmt.Errorf("scratch paths %q and %q overlap", o.Path, p)
			}
		}
		out = append(out, Scratch{Path: p, Size: size, CopyUp: true})
	}
	if len(out) > MaxLabelScratch {
		return nil, fmt.Errorf("%d scratch directories: an image may declare at most %d", len(out), MaxLabelScratch)
	}
	return out, nil
}

// sizeBytes reads a size with a k, m or g suffix (no percentage).
func sizeBytes(s string) (int64, bool) {
	mult := int64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		mult = 1 << 10
	case 'm', 'M':
		mult = 1 << 20
	case 'g', 'G':
		mult = 1 << 30
	}
	if mult != 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, false
	}
	return n * mult, true
}

// WithScratch returns p with the declared scratch directories added to
// its own (those at a path it already has are left out): noexec where the
// profile's own scratch is (strict), so that declaring one never opens an
// executable directory the profile closes. p is changed in place (a
// resolver's copy) and returned.
func (p *Profile) WithScratch(declared []Scratch) *Profile {
	noexec := false
	for _, s := range p.Rootfs.Scratch {
		noexec = noexec || s.NoExec
	}
	for _, d := range declared {
		dup := false
		for _, s := range p.Rootfs.Scratch {
			dup = dup || path.Clean(s.Path) == d.Path
		}
		if dup {
			continue
		}
		d.NoExec = d.NoExec || noexec
		p.Rootfs.Scratch = append(p.Rootfs.Scratch, d)
	}
	return p
}
