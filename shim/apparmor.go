package shim

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/containerd/containerd/v2/contrib/apparmor"
	"github.com/containerd/errdefs"
)

// DefaultAppArmorProfile is the AppArmor profile the built-in profiles name.
// The shim generates it from containerd's default template
// (contrib/apparmor) and loads it on first use; any other name must be
// loaded by the operator.
const DefaultAppArmorProfile = "hardened-default"

// appArmorLoader makes sure an AppArmor profile is loaded before a spec
// that names it reaches runc: runc would otherwise fail late, after the
// container's cgroups and mounts exist.
type appArmorLoader struct {
	mu     sync.Mutex
	loaded map[string]bool
	// loadDefault generates and loads the template under a name.
	loadDefault func(name string) error
	// profilesFile lists the loaded profiles, one "name (mode)" per line.
	profilesFile string
}

var defaultAppArmor = &appArmorLoader{
	loaded:       map[string]bool{},
	loadDefault:  apparmor.LoadDefaultProfile,
	profilesFile: "/sys/kernel/security/apparmor/profiles",
}

// ensure loads the default template under DefaultAppArmorProfile, or checks
// that another named profile is loaded. Only called on a host that enforces
// AppArmor. Errors refuse the container.
func (l *appArmorLoader) ensure(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.loaded[name] {
		return nil
	}
	if name == DefaultAppArmorProfile {
		if err := l.loadDefault(name); err != nil {
			return fmt.Errorf("failed to load AppArmor profile %q from containerd's default template: %v: %w", name, err, errdefs.ErrFailedPrecondition)
		}
		l.loaded[name] = true
		return nil
	}
	ok, err := l.isLoaded(name)
	if err != nil {
		return fmt.Errorf("failed to check AppArmor profile %q: %v: %w", name, err, errdefs.ErrFailedPrecondition)
	}
	if !ok {
		return fmt.Errorf("AppArmor profile %q is not loaded on this host (load it with apparmor_parser before using a profile that names it): %w", name, errdefs.ErrFailedPrecondition)
	}
	l.loaded[name] = true
	return nil
}

func (l *appArmorLoader) isLoaded(name string) (bool, error) {
	f, err := os.Open(l.profilesFile)
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "hardened-default (enforce)". A profile in complain (or kill,
		// unconfined...) mode does not count: a container under it would
		// be effectively unconfined while the report says it is confined.
		if n, mode, _ := strings.Cut(sc.Text(), " ("); n == name {
			if mode != "enforce)" {
				return false, fmt.Errorf("AppArmor profile %q is loaded in %s mode, not enforce", name, strings.TrimSuffix(mode, ")"))
			}
			return true, nil
		}
	}
	return false, sc.Err()
}
