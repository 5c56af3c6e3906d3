package profiles

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
)

// Sentinel errors. Test with errors.Is.
var (
	// ErrUnknownProfile: no profile of that name in the set.
	ErrUnknownProfile = errors.New("unknown profile")
	// ErrInvalidProfile: a profile file cannot be read, decoded or
	// validated. Every *Error wraps it.
	ErrInvalidProfile = errors.New("invalid profile")
)

// Error is a problem in one profile file, with the place it was found.
// Its message reads "file:line: what" (line and column when known), so an
// operator can jump to it. It wraps ErrInvalidProfile and the cause, if any.
type Error struct {
	// File is the profile's source: a path, or "builtin/NAME.toml".
	File string
	// Line and Column are 1-based; 0 when unknown.
	Line   int
	Column int
	// Msg says what is wrong.
	Msg string
	// Err is the underlying cause (an I/O error), or nil.
	Err error
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
		if e.Column > 0 {
			loc += ":" + strconv.Itoa(e.Column)
		}
	}
	return loc + ": " + e.Msg
}

// Unwrap returns ErrInvalidProfile and the cause.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalidProfile, e.Err}
	}
	return []error{ErrInvalidProfile}
}

// join returns nil, the only error, or all of them ordered by place (one a
// line; those without a line last).
func join(errs []*Error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	slices.SortStableFunc(errs, func(a, b *Error) int {
		return cmp.Or(
			compareBool(a.Line == 0, b.Line == 0),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Column, b.Column))
	})
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
