// Package headbuf keeps the head of a helper process's output for the error that reports the
// process's failure: the first bytes written and no more, while every write still succeeds, so
// a chatty or hostile child can neither grow the caller's memory nor see its pipe fail.
package headbuf

import (
	"bytes"
	"strconv"
	"strings"
)

// Buffer keeps the first Max bytes written to it and discards the rest.
type Buffer struct {
	bytes.Buffer
	Max int
}

// Write keeps what fits under Max and reports all of p written.
func (b *Buffer) Write(p []byte) (int, error) {
	if room := b.Max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Quoted is what an error appends for the kept output: ": " and the text, trimmed of space and
// quoted; "" when nothing but space was written.
func (b *Buffer) Quoted() string {
	s := strings.TrimSpace(b.String())
	if s == "" {
		return ""
	}
	return ": " + strconv.Quote(s)
}
