package harness

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Status is a /proc/<pid>/status file: field name to value.
type Status map[string]string

// ParseStatus parses the "Name:\tvalue" lines of a /proc/<pid>/status
// (other lines are ignored).
func ParseStatus(s string) Status {
	st := Status{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			continue
		}
		st[k] = strings.TrimSpace(v)
	}
	return st
}

// Hex returns a hexadecimal field (CapEff, CapBnd, ...) as a number.
func (s Status) Hex(field string) (uint64, error) {
	v, ok := s[field]
	if !ok {
		return 0, fmt.Errorf("no %s in status", field)
	}
	return strconv.ParseUint(v, 16, 64)
}

// Int returns a decimal field (NoNewPrivs, Seccomp, ...).
func (s Status) Int(field string) (int64, error) {
	v, ok := s[field]
	if !ok {
		return 0, fmt.Errorf("no %s in status", field)
	}
	f := strings.Fields(v)
	if len(f) == 0 {
		return 0, fmt.Errorf("empty %s in status", field)
	}
	return strconv.ParseInt(f[0], 10, 64)
}

// UID returns the real uid (first value of "Uid:").
func (s Status) UID() (int64, error) { return s.Int("Uid") }

// Sections splits output made of "=== name ===" header lines into the text
// under each header (see Script).
func Sections(out string) map[string]string {
	m := map[string]string{}
	cur := ""
	var b strings.Builder
	flush := func() {
		if cur != "" {
			m[cur] = b.String()
		}
		b.Reset()
	}
	for _, line := range strings.SplitAfter(out, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "=== ") && strings.HasSuffix(t, " ===") {
			flush()
			cur = strings.TrimSuffix(strings.TrimPrefix(t, "=== "), " ===")
			continue
		}
		b.WriteString(line)
	}
	flush()
	return m
}

// Script builds a `sh -c` body that prints each named command's output
// under an "=== name ===" header (stderr folded into stdout), in order.
func Script(steps ...[2]string) string {
	var b strings.Builder
	for _, s := range steps {
		fmt.Fprintf(&b, "echo '=== %s ==='; { %s ; } 2>&1; ", s[0], s[1])
	}
	return b.String()
}

// HostKernel returns the host's kernel release (uname -r) and
// /proc/version line, to tell a container on the host kernel from one in
// a gVisor sandbox.
func HostKernel() (release, version string) {
	r, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	v, _ := os.ReadFile("/proc/version")
	return strings.TrimSpace(string(r)), strings.TrimSpace(string(v))
}

// VmRSS returns a process's resident memory in KiB.
func VmRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return ParseStatus(string(data)).Int("VmRSS")
}

// ShimPids returns the pids of shim processes (argv[0] ending in binary)
// serving namespace ns of this daemon.
func (d *Daemon) ShimPids(ns, binary string) []int {
	var out []int
	for _, p := range processes() {
		if len(p.args) == 0 || !strings.HasSuffix(p.args[0], binary) {
			continue
		}
		if p.names(d.Dir, ns) {
			out = append(out, p.pid)
		}
	}
	return out
}

// ProcessesNaming returns "pid cmdline" of the processes whose command
// line contains every one of the strings.
func ProcessesNaming(strs ...string) []string {
	var out []string
	for _, p := range processes() {
		cl := p.cmdline()
		ok := true
		for _, s := range strs {
			if !strings.Contains(cl, s) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, fmt.Sprintf("%d %s", p.pid, cl))
		}
	}
	return out
}
