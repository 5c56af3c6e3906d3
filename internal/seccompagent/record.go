package seccompagent

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/decide"
)

// maxDenials bounds the distinct syscalls a record holds (more than any
// architecture has); denials of others are only counted.
const maxDenials = 512

// Record aggregates a container's denials by architecture and syscall.
type Record struct {
	mu      sync.Mutex
	byKey   map[string]*decide.Denial
	dropped uint64
	// seq counts denials: a flush compares it with the last one's.
	seq uint64
}

func newRecord() *Record { return &Record{byKey: map[string]*decide.Denial{}} }

func key(arch, name string) string { return arch + "/" + name }

// needsExe reports whether a denial of name would be the first of that
// name (whose executable is worth looking up).
func (r *Record) needsExe(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.byKey {
		if d.Syscall == name {
			return false
		}
	}
	return len(r.byKey) < maxDenials
}

func (r *Record) add(d decide.Denial, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	k := key(d.Arch, d.Syscall)
	if cur, ok := r.byKey[k]; ok {
		cur.Count++
		cur.Last = now
		if cur.Executable == "" {
			cur.Executable = d.Executable
		}
		return
	}
	if len(r.byKey) >= maxDenials {
		r.dropped++
		return
	}
	d.Count, d.First, d.Last = 1, now, now
	r.byKey[k] = &d
}

// retract takes back a denial added for a notification whose answer the
// kernel refused (ENOENT): the caller was interrupted by a signal, and a
// restarted syscall is notified (and counted) again; or it was killed.
// Go programs are interrupted often (SIGURG preempts a goroutine in a
// long syscall), so without it a denial would count twice.
func (r *Record) retract(arch, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := key(arch, name)
	cur, ok := r.byKey[k]
	if !ok {
		return // it was only counted as dropped; keep that
	}
	r.seq++
	if cur.Count--; cur.Count == 0 {
		delete(r.byKey, k)
	}
}

// Snapshot is the record so far, most frequent first, with the number of
// denials not recorded and the record's sequence number.
func (r *Record) Snapshot() (ds []decide.Denial, dropped, seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.byKey {
		ds = append(ds, *d)
	}
	sort.Slice(ds, func(i, j int) bool {
		if ds[i].Count != ds[j].Count {
			return ds[i].Count > ds[j].Count
		}
		return key(ds[i].Arch, ds[i].Syscall) < key(ds[j].Arch, ds[j].Syscall)
	})
	return ds, r.dropped, r.seq
}

// Summary names the denials for a log line or an event:
// "unshare×3 (EPERM), mount×1 (EPERM)".
func Summary(ds []decide.Denial) string {
	parts := make([]string, 0, len(ds))
	for _, d := range ds {
		parts = append(parts, d.Syscall+"×"+strconv.FormatUint(d.Count, 10)+" ("+d.Answer+")")
	}
	return strings.Join(parts, ", ")
}

// Learned is the seccomp profile of what the workload needed: the filter
// the container was hardened with, with the syscalls it was denied
// allowed (hardening.AllowNames). It is in the OCI format, which
// Kubernetes' Localhost profiles and containerd's --seccomp-profile read
// as is.
func Learned(n *hardening.SeccompNotice, ds []decide.Denial) *specs.LinuxSeccomp {
	return hardening.AllowNames(n.Enforced, LearnedNames(n, ds))
}

// LearnedNames are the syscalls of ds the notice's filter denied, sorted.
func LearnedNames(n *hardening.SeccompNotice, ds []decide.Denial) []string {
	var names []string
	for _, d := range ds {
		if _, notified := n.Errno[d.Syscall]; notified && !slices.Contains(names, d.Syscall) {
			names = append(names, d.Syscall)
		}
	}
	sort.Strings(names)
	return names
}
