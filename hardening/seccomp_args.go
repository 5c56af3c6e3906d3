package hardening

import (
	"math"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// argsWithin reports whether every argument tuple that conditions c admit
// is admitted by conditions d, the way runc reads a rule's conditions:
// ANDed, except that conditions repeating an argument index become one
// rule each (ORed). It answers false when it cannot tell: the caller then
// treats the rule as not within, which only ever tightens.
func argsWithin(c, d []specs.LinuxSeccompArg) bool {
	if slices.Equal(c, d) {
		return true
	}
	if len(d) == 0 {
		return true
	}
	if repeatsIndex(d) {
		return false
	}
	if repeatsIndex(c) {
		for i := range c {
			if !argsWithin(c[i:i+1], d) {
				return false
			}
		}
		return true
	}
	for _, dc := range d {
		if !slices.ContainsFunc(c, func(cc specs.LinuxSeccompArg) bool { return condWithin(cc, dc) }) {
			return false
		}
	}
	return true
}

func repeatsIndex(args []specs.LinuxSeccompArg) bool {
	for i := range args {
		for j := range i {
			if args[i].Index == args[j].Index {
				return true
			}
		}
	}
	return false
}

// condWithin reports whether every value of argument c.Index that c admits
// is admitted by d. Beyond identical conditions, values must fit in 32
// bits: libseccomp compares only the low half on 32-bit ABIs, where a
// wider value would not mean the same.
func condWithin(c, d specs.LinuxSeccompArg) bool {
	if c == d {
		return true
	}
	if c.Index != d.Index || c.Value > math.MaxUint32 || c.ValueTwo > math.MaxUint32 ||
		d.Value > math.MaxUint32 || d.ValueTwo > math.MaxUint32 {
		return false
	}
	// c admits the values in [lo, hi] (hi as on 64-bit ABIs: where it is
	// lower, fewer values are admitted, and the answer stays true).
	var lo, hi uint64
	switch c.Op {
	case specs.OpEqualTo:
		lo, hi = c.Value, c.Value
	case specs.OpLessThan:
		if c.Value == 0 {
			return false
		}
		lo, hi = 0, c.Value-1
	case specs.OpLessEqual:
		lo, hi = 0, c.Value
	case specs.OpGreaterThan:
		lo, hi = c.Value+1, math.MaxUint64
	case specs.OpGreaterEqual:
		lo, hi = c.Value, math.MaxUint64
	default:
		return false
	}
	switch d.Op {
	case specs.OpEqualTo:
		return lo == d.Value && hi == d.Value
	case specs.OpNotEqual:
		return d.Value < lo || d.Value > hi
	case specs.OpLessThan:
		return hi < d.Value
	case specs.OpLessEqual:
		return hi <= d.Value
	case specs.OpGreaterThan:
		return lo > d.Value
	case specs.OpGreaterEqual:
		return lo >= d.Value
	case specs.OpMaskedEqual:
		return lo == hi && lo&d.Value == d.ValueTwo
	}
	return false
}
