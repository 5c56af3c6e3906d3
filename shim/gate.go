package shim

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// TEMPORARY local adapter until internal/hostprobe.GateRunc lands: the
// same contract (refuse runc versions with known escapes, cached by the
// binary's identity), in-memory cache only.

var gateCache sync.Map // fileStamp -> error (nil: accepted)

func gateRunc(ctx context.Context, path, cacheDir string) error {
	_ = cacheDir
	stamp, err := fileStamp(path)
	if err != nil {
		return err
	}
	key := path + "@" + stamp
	if v, ok := gateCache.Load(key); ok {
		if v == nil {
			return nil
		}
		return v.(error)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return fmt.Errorf("failed to run %s --version: %w", path, err)
	}
	verr := checkRuncVersion(string(out))
	if verr == nil {
		gateCache.Store(key, nil)
	} else {
		gateCache.Store(key, verr)
	}
	return verr
}

var runcVersionRE = regexp.MustCompile(`runc version (\d+)\.(\d+)\.(\d+)`)

func checkRuncVersion(out string) error {
	m := runcVersionRE.FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("cannot tell the runc version from %q", out)
	}
	maj, _ := strconv.Atoi(m[1])
	mnr, _ := strconv.Atoi(m[2])
	pat, _ := strconv.Atoi(m[3])
	v := fmt.Sprintf("%d.%d.%d", maj, mnr, pat)
	switch {
	case maj == 1 && (mnr < 1 || (mnr == 1 && pat < 12)):
		return fmt.Errorf("runc %s is vulnerable to CVE-2024-21626 (need >= 1.1.12)", v)
	case maj == 1 && mnr == 2 && pat < 8, maj == 1 && mnr == 3 && pat < 3:
		return fmt.Errorf("runc %s is vulnerable to CVE-2025-31133/52565/52881 (need 1.2.8+, 1.3.3+ or 1.4+)", v)
	}
	return nil
}
