package tomlpos

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
)

// Located is a problem found at a place in a file (the policy's and the
// profiles' error types).
type Located interface {
	error
	// Position returns the 1-based line and column, 0 when unknown.
	Position() (line, column int)
}

// Message formats a problem as "file:line:column: msg", leaving out what is
// unknown (no file: msg alone), so an operator can jump to it.
func Message(file string, line, column int, msg string) string {
	loc := file
	if line > 0 {
		loc += ":" + strconv.Itoa(line)
		if column > 0 {
			loc += ":" + strconv.Itoa(column)
		}
	}
	if loc == "" {
		return msg
	}
	return loc + ": " + msg
}

// Join returns nil, the only error, or all of them ordered by place (one a
// line; those without a line last).
func Join[E Located](errs []E) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	slices.SortStableFunc(errs, func(a, b E) int {
		al, ac := a.Position()
		bl, bc := b.Position()
		return cmp.Or(compareBool(al == 0, bl == 0), cmp.Compare(al, bl), cmp.Compare(ac, bc))
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
