package profiles

import "fmt"

// The vocabulary the profiles, the node policy, the engine, the decision
// and the reports share. Each is a string type whose UnmarshalText refuses
// what it does not know, so that a JSON record (hardening-state.json) with
// an unknown value fails to load instead of meaning something else. TOML
// files are checked by their parsers, which report the line (go-toml does
// not call UnmarshalText for string types).

// Runtime is an OCI runtime a container runs on: runc, or gVisor's runsc.
// "runtime" is the one word for it, in the policy's [runtimes], the
// reports and the code.
type Runtime string

// Runtimes.
const (
	RuntimeRunc   Runtime = "runc"
	RuntimeGVisor Runtime = "gvisor"
)

// Valid reports whether r is a known runtime.
func (r Runtime) Valid() bool { return r == RuntimeRunc || r == RuntimeGVisor }

// UnmarshalText accepts the known runtimes, and "" (unset: where a
// runtime is optional, as in the engine's Config, it means runc).
func (r *Runtime) UnmarshalText(b []byte) error {
	if v := Runtime(b); v == "" || v.Valid() {
		*r = v
		return nil
	}
	return fmt.Errorf("runtime %q is not one of %q, %q", b, RuntimeRunc, RuntimeGVisor)
}

// AppArmorMode is what happens to a profile's AppArmor profile on a host
// without AppArmor: the node policy's apparmor setting.
type AppArmorMode string

// AppArmor modes. "" means AppArmorIfAvailable.
const (
	AppArmorIfAvailable AppArmorMode = "if-available" // set it where the host has AppArmor; report a gap elsewhere
	AppArmorRequired    AppArmorMode = "required"     // refuse where the host has no AppArmor
	AppArmorOff         AppArmorMode = "off"          // never set an AppArmor profile; report a gap
)

// Valid reports whether m is a known mode ("" included).
func (m AppArmorMode) Valid() bool {
	switch m {
	case "", AppArmorIfAvailable, AppArmorRequired, AppArmorOff:
		return true
	}
	return false
}

// UnmarshalText accepts the known modes.
func (m *AppArmorMode) UnmarshalText(b []byte) error {
	if v := AppArmorMode(b); v.Valid() {
		*m = v
		return nil
	}
	return fmt.Errorf("apparmor %q is not one of %q, %q, %q", b, AppArmorIfAvailable, AppArmorRequired, AppArmorOff)
}
