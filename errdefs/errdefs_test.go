package errdefs

import (
	"errors"
	"fmt"
	"testing"
)

func TestClasses(t *testing.T) {
	sentinel := New(ErrNotFound, "container does not exist")
	err := fmt.Errorf("delete x: %w", fmt.Errorf("%w: x", sentinel))
	if !errors.Is(err, sentinel) || !errors.Is(err, ErrNotFound) || Class(err) != ErrNotFound {
		t.Errorf("%v: class %v", err, Class(err))
	}
	if sentinel.Error() != "container does not exist" {
		t.Errorf("message %q", sentinel)
	}
	inner := errors.New("bad name")
	werr := Errorf(ErrInvalidArgument, "volume %q: %w", "x", inner)
	if !errors.Is(werr, inner) || !errors.Is(werr, ErrInvalidArgument) || werr.Error() != `volume "x": bad name` {
		t.Errorf("Errorf: %v", werr)
	}
	if w := Wrap(ErrConflict, inner); !errors.Is(w, inner) || Class(w) != ErrConflict || w.Error() != "bad name" || Wrap(ErrConflict, nil) != nil {
		t.Errorf("Wrap: %v", w)
	}
	if Class(errors.New("plain")) != nil || Class(nil) != nil {
		t.Error("a plain error has a class")
	}
}
