package policy

import (
	"errors"

	"github.com/hardened-dev/hardened/internal/tomlpos"
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

func (e *Error) Error() string { return tomlpos.Message(e.Source, e.Line, e.Column, e.Msg) }

// Position returns the problem's line and column (0 when unknown).
func (e *Error) Position() (line, column int) { return e.Line, e.Column }

// Unwrap returns ErrInvalidPolicy and the cause.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalidPolicy, e.Err}
	}
	return []error{ErrInvalidPolicy}
}

// join returns nil, the only error, or all of them ordered by place.
func join(errs []*Error) error { return tomlpos.Join(errs) }
