package idmap

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// interval is the half-open id interval [start, end).
type interval struct{ start, end uint64 }

func span(base, size uint32) interval { return interval{uint64(base), uint64(base) + uint64(size)} }

func (i interval) overlaps(o interval) bool { return i.start < o.end && o.start < i.end }

// readSubIDs parses /etc/subuid or /etc/subgid ("name:start:count" lines). A missing file means
// no reservations; a malformed line is an error, since skipping it could hand out ids a host
// user already owns.
func readSubIDs(path string) ([]interval, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var out []interval
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 {
			return nil, fmt.Errorf("%s line %d: want name:start:count", path, n)
		}
		start, err1 := strconv.ParseUint(f[1], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s line %d: bad start or count", path, n)
		}
		out = append(out, interval{start, start + count})
	}
	return out, nil
}
