// Package version holds the build's version and commit, set with
// -ldflags -X by the Makefile, and the versions of containerd, runc and
// runsc this build was tested with (the pins of hack/install-tools.sh,
// which TestTestedMatchesPins keeps in step).
package version

import (
	"fmt"
	"runtime"
)

// Version is the release tag (git describe), or "dev"; Commit the full
// commit hash, or "unknown".
var (
	Version = "dev"
	Commit  = "unknown"
)

// The versions the integration tests ran against.
const (
	TestedContainerd = "v2.4.2"
	TestedRunc       = "v1.5.2"
	// TestedRunsc is the gVisor release (its Go module version in
	// hack/install-tools.sh: v0.0.0-20260905035102-...).
	TestedRunsc = "release-20260905"
)

// String is the line every binary prints for its version.
func String(binary string) string {
	return fmt.Sprintf("%s %s (commit %s, %s %s/%s); tested with containerd %s, runc %s, runsc %s",
		binary, Version, Commit, runtime.Version(), runtime.GOOS, runtime.GOARCH, TestedContainerd, TestedRunc, TestedRunsc)
}
