package policy

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
)

// ErrInvalidPolicy is wrapped by every error of this package: the policy
// file cannot be read, decoded or validated, or does not fit the profiles.
var ErrInvalidPolicy = errors.New("invalid policy")

// Error is one problem in a policy file. Its message reads
// "source:line:col: what" (line and column when known). It wraps
// ErrInvalidPolicy and the cause, if any.
type Error struct {
	// Source names the policy: its path, or what the caller passed to Parse.
	Source string
	// Line and Column are 1-based; 0 when unknown.
	Line   int
	Column int
	Msg    string
	// Err is the cause (an I/O error, profiles.ErrUnknownProfile), or nil.
	Err error
}

func (e *Error) Error() string {
	loc := e.Source
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
		if e.Column > 0 {
			loc += ":" + strconv.Itoa(e.Column)
		}
	}
	if loc == "" {
		return e.Msg
	}
	return loc + ": " + e.Msg
}

// Unwrap returns ErrInvalidPolicy and the cause.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalidPolicy, e.Err}
	}
	return []error{ErrInvalidPolicy}
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
