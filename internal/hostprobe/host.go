package hostprobe

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	seccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Host is what this machine offers the shim. Every field is plain data the
// CLI can print (Facts gives it as rows).
type Host struct {
	// Seccomp: the kernel has seccomp filter mode (/proc/self/status has a
	// Seccomp field and /proc/sys/kernel/seccomp/actions_avail exists).
	Seccomp bool
	// SeccompActions are the filter actions the kernel offers.
	SeccompActions []string
	// Libseccomp is the version of libseccomp linked into this binary.
	Libseccomp string
	// AppArmor: the apparmor module is enabled and securityfs shows it.
	AppArmor bool
	// CgroupVersion is 2 on a unified (cgroup2) hierarchy, else 1.
	CgroupVersion int
	// PidsController: the pids controller is available.
	PidsController bool
	// Runc is the policy's runc, RuncErr why it is missing or refused (it
	// wraps ErrVulnerableRuntime for a runc with known escapes; Runc is
	// then set too).
	Runc    *RuntimeInfo
	RuncErr error
	// Runsc is the policy's runsc (nil with a nil RunscErr when the policy
	// configures no gvisor runtime), RunscErr why it is missing.
	Runsc    *RuntimeInfo
	RunscErr error
}

// Fact is one row of a host report.
type Fact struct {
	Name  string
	Value string
}

// prober reads host facts under root (tests use a fake tree).
type prober struct {
	root   string
	statfs func(path string) (int64, error) // filesystem magic
}

func realStatfs(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Type), nil //nolint:unconvert // Type's width varies by arch
}

// Probe gathers the host facts and probes the runtimes at runcPath and
// runscPath ("" for one that is not configured), without the gate cache:
// this is for reports, not for container starts. It reports facts; what
// they mean for a policy is the caller's to judge.
func Probe(ctx context.Context, pr Prober, runcPath, runscPath string) *Host {
	h := prober{root: "/", statfs: realStatfs}.facts()
	if runcPath != "" {
		h.Runc, h.RuncErr = pr.ProbeRunc(ctx, runcPath)
		if h.RuncErr == nil {
			h.RuncErr = CheckRunc(*h.Runc.Semver)
		}
	} else {
		h.RuncErr = fmt.Errorf("%w: no runc runtime is configured", ErrProbe)
	}
	if runscPath != "" {
		h.Runsc, h.RunscErr = pr.ProbeRunsc(ctx, runscPath)
	}
	return h
}

func (pr prober) path(p string) string { return filepath.Join(pr.root, p) }

func (pr prober) exists(p string) bool {
	_, err := os.Stat(pr.path(p))
	return err == nil
}

func (pr prober) facts() *Host {
	h := &Host{}
	if status, err := os.ReadFile(pr.path("/proc/self/status")); err == nil {
		hasField := false
		sc := bufio.NewScanner(bytes.NewReader(status))
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "Seccomp:") {
				hasField = true
			}
		}
		actions, err := os.ReadFile(pr.path("/proc/sys/kernel/seccomp/actions_avail"))
		h.Seccomp = hasField && err == nil
		if h.Seccomp {
			h.SeccompActions = strings.Fields(string(actions))
		}
	}
	major, minor, micro := seccomp.GetLibraryVersion()
	h.Libseccomp = fmt.Sprintf("%d.%d.%d", major, minor, micro)

	h.AppArmor = pr.appArmor()

	h.CgroupVersion = 1
	if magic, err := pr.statfs(pr.path("/sys/fs/cgroup")); err == nil && magic == unix.CGROUP2_SUPER_MAGIC {
		h.CgroupVersion = 2
	}
	if h.CgroupVersion == 2 {
		ctrl, err := os.ReadFile(pr.path("/sys/fs/cgroup/cgroup.controllers"))
		h.PidsController = err == nil && slices.Contains(strings.Fields(string(ctrl)), "pids")
	} else {
		h.PidsController = pr.exists("/sys/fs/cgroup/pids")
	}
	return h
}

// appArmor: the module is enabled and securityfs shows it (runc's own
// test, apparmor.IsEnabled, reads the same two places).
func (pr prober) appArmor() bool {
	enabled, err := os.ReadFile(pr.path("/sys/module/apparmor/parameters/enabled"))
	return err == nil && strings.TrimSpace(string(enabled)) == "Y" && pr.exists("/sys/kernel/security/apparmor")
}

// AppArmorEnabled reports whether this host enforces AppArmor profiles. It
// reads two small files and runs nothing: cheap enough for every container
// start.
func AppArmorEnabled() bool {
	return prober{root: "/"}.appArmor()
}

// Facts returns the host as rows for a table.
func (h *Host) Facts() []Fact {
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	seccompVal := yesNo(h.Seccomp)
	if h.Seccomp && len(h.SeccompActions) > 0 {
		seccompVal += " (" + strings.Join(h.SeccompActions, " ") + ")"
	}
	return []Fact{
		{"seccomp", seccompVal},
		{"libseccomp", h.Libseccomp},
		{"apparmor", yesNo(h.AppArmor)},
		{"cgroup", fmt.Sprintf("v%d", h.CgroupVersion)},
		{"pids controller", yesNo(h.PidsController)},
		{"runc", runtimeFact(h.Runc, h.RuncErr, "not configured")},
		{"runsc", runtimeFact(h.Runsc, h.RunscErr, "not configured")},
	}
}

func runtimeFact(info *RuntimeInfo, err error, none string) string {
	switch {
	case err != nil && info != nil:
		return fmt.Sprintf("%s (%s): %v", info.Version, info.Path, err)
	case err != nil:
		return "error: " + err.Error()
	case info == nil:
		return none
	}
	return fmt.Sprintf("%s (%s)", info.Version, info.Path)
}
