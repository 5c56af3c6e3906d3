//go:build integration

package integration

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/integration/harness"
)

// capNetBindService is the only capability the hardened profile keeps.
const capNetBindService = uint64(1) << 10

// refusedText is the text every refusal of the engine carries
// (hardening.ErrRefused), whatever the rule.
var refusedText = hardening.ErrRefused.Error()

// statusOf parses a /proc/<pid>/status dump; fatal when it is not one.
func statusOf(t testing.TB, what, out string) harness.Status {
	t.Helper()
	st := harness.ParseStatus(out)
	if _, ok := st["CapEff"]; !ok {
		t.Fatalf("%s: no /proc/self/status in the output:\n%s", what, out)
	}
	return st
}

func hexField(t testing.TB, st harness.Status, field string) uint64 {
	t.Helper()
	v, err := st.Hex(field)
	if err != nil {
		t.Fatalf("status %s: %v", field, err)
	}
	return v
}

func intField(t testing.TB, st harness.Status, field string) int64 {
	t.Helper()
	v, err := st.Int(field)
	if err != nil {
		t.Fatalf("status %s: %v", field, err)
	}
	return v
}

// assertRestricted checks what the kernel reports for a process under the
// hardened profile: no capability beyond NET_BIND_SERVICE in any set,
// no_new_privs, a seccomp filter.
func assertRestricted(t testing.TB, who string, st harness.Status) {
	t.Helper()
	for _, set := range []string{"CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"} {
		if v := hexField(t, st, set); v&^capNetBindService != 0 {
			t.Errorf("%s: %s = %016x, want at most NET_BIND_SERVICE (0000000000000400) under the hardened profile", who, set, v)
		}
	}
	if v := intField(t, st, "NoNewPrivs"); v != 1 {
		t.Errorf("%s: NoNewPrivs = %d, want 1", who, v)
	}
	if v := intField(t, st, "Seccomp"); v != 2 {
		t.Errorf("%s: Seccomp = %d, want 2 (filter mode)", who, v)
	}
}

// capBits turns capability names into a CapEff-style mask.
func capBits(t testing.TB, names []string) uint64 {
	t.Helper()
	var m uint64
	for _, n := range names {
		bit, ok := capNumbers[strings.TrimPrefix(n, "CAP_")]
		if !ok {
			t.Fatalf("unknown capability %s", n)
		}
		m |= 1 << bit
	}
	return m
}

var capNumbers = map[string]uint{
	"CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4, "KILL": 5,
	"SETGID": 6, "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9, "NET_BIND_SERVICE": 10,
	"NET_BROADCAST": 11, "NET_ADMIN": 12, "NET_RAW": 13, "IPC_LOCK": 14, "IPC_OWNER": 15,
	"SYS_MODULE": 16, "SYS_RAWIO": 17, "SYS_CHROOT": 18, "SYS_PTRACE": 19, "SYS_PACCT": 20,
	"SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23, "SYS_RESOURCE": 24, "SYS_TIME": 25,
	"SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28, "AUDIT_WRITE": 29, "AUDIT_CONTROL": 30,
	"SETFCAP": 31, "MAC_OVERRIDE": 32, "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35,
	"BLOCK_SUSPEND": 36, "AUDIT_READ": 37, "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}

var fdLine = regexp.MustCompile(`\s(\d+) -> (.*)$`)

// openFds parses `ls -l /proc/<pid>/fd` into fd -> target, leaving out the
// directory fd the listing ls itself opened (its target is /proc/N/fd).
func openFds(out string) map[string]string {
	fds := map[string]string{}
	self := regexp.MustCompile(`^/proc/(\d+|self|thread-self)/fd/?$`)
	for _, line := range strings.Split(out, "\n") {
		m := fdLine.FindStringSubmatch(strings.TrimSpace(" " + line))
		if m == nil {
			continue
		}
		if self.MatchString(strings.TrimSpace(m[2])) {
			continue
		}
		fds[m[1]] = strings.TrimSpace(m[2])
	}
	return fds
}

// assertStdioOnly fails unless fds are exactly 0, 1 and 2.
func assertStdioOnly(t testing.TB, who string, fds map[string]string, raw string) {
	t.Helper()
	if len(fds) == 3 && fds["0"] != "" && fds["1"] != "" && fds["2"] != "" {
		return
	}
	t.Errorf("%s: open fds = %v, want exactly 0, 1, 2 (a leaked fd is how CVE-2024-21626 escaped); listing:\n%s", who, fds, raw)
}

// report is hardening-report.json, the fields the contract names.
type report struct {
	Profile     string            `json:"profile"`
	Runtime     string            `json:"runtime"`
	Mode        string            `json:"mode"`
	Changes     []json.RawMessage `json:"changes"`
	NotEnforced []json.RawMessage `json:"notEnforced"`
	raw         string
	keys        map[string]json.RawMessage
}

// readReport reads a container's hardening-report.json from its bundle
// (while the container exists).
func (e *env) readReport(id string) *report {
	e.t.Helper()
	p := e.d.ReportPath(e.ns, id)
	data, err := os.ReadFile(p)
	if err != nil {
		entries, _ := os.ReadDir(e.d.Bundle(e.ns, id))
		var names []string
		for _, en := range entries {
			names = append(names, en.Name())
		}
		e.t.Fatalf("no hardening report for %s: %v (bundle holds %v)", id, err, names)
	}
	r := &report{raw: string(data)}
	if err := json.Unmarshal(data, r); err != nil {
		e.t.Fatalf("hardening-report.json of %s is not JSON: %v\n%s", id, err, data)
	}
	if err := json.Unmarshal(data, &r.keys); err != nil {
		e.t.Fatalf("hardening-report.json of %s is not a JSON object: %v", id, err)
	}
	for _, k := range []string{"profile", "runtime", "mode", "changes"} {
		if _, ok := r.keys[k]; !ok {
			e.t.Errorf("hardening-report.json of %s has no %q field (contract: profile, runtime, mode, changes, notEnforced):\n%s", id, k, data)
		}
	}
	return r
}

// storedSpec is the container's spec as containerd stores it (before the
// shim's rewrite).
func storedSpec(t testing.TB, e *env, c *harness.Container) *specs.Spec {
	t.Helper()
	s, err := c.C.Spec(harness.Context(e.ctx, e.ns))
	if err != nil {
		t.Fatalf("failed to read the stored spec of %s: %v", c.ID, err)
	}
	return s
}

// errContainsAll fails the test unless err's text contains every string
// (case-insensitively).
func errContainsAll(t testing.TB, what string, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want one naming %q", what, want)
	}
	low := strings.ToLower(err.Error())
	for _, w := range want {
		if !strings.Contains(low, strings.ToLower(w)) {
			t.Errorf("%s: error does not name %q:\n%v", what, w, err)
		}
	}
}
