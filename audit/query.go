package audit

import (
	"encoding/json"
	"fmt"
	"time"
)

// Filter selects records for Query; zero fields match everything.
type Filter struct {
	Since       time.Time
	Tenant      string
	ContainerID string
	Type        string
}

func (f Filter) match(r Record) bool {
	return (f.Since.IsZero() || !r.Time.Before(f.Since)) &&
		(f.Tenant == "" || r.Tenant == f.Tenant) &&
		(f.ContainerID == "" || r.ContainerID == f.ContainerID) &&
		(f.Type == "" || r.Type == f.Type)
}

// Query returns the records in dir that match f, in chain order. It reads; it does not verify.
func Query(dir string, f Filter) ([]Record, error) {
	var out []Record
	err := readRecords(dir, func(l segmentLine) error {
		if l.Cut && l.LastSegment {
			return nil // a torn tail is not a record (see TornTailError)
		}
		var r Record
		if err := json.Unmarshal(l.Raw, &r); err != nil {
			return fmt.Errorf("%s line %d: %w", l.Segment, l.Line, err)
		}
		if f.match(r) {
			out = append(out, r)
		}
		return nil
	})
	return out, err
}
