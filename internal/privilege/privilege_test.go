package privilege

import (
	"errors"
	"strings"
	"testing"
)

func TestRequire(t *testing.T) {
	if err := require(0); err != nil {
		t.Errorf("root refused: %v", err)
	}
	for _, uid := range []int{1, 1000, 65534} {
		err := require(uid)
		if !errors.Is(err, ErrNeedsRoot) || !strings.HasPrefix(err.Error(), "needs root (or the daemon): running as uid ") {
			t.Errorf("uid %d: %v", uid, err)
		}
	}
}
