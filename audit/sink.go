package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// Sink receives each record after it is durable in the file log (the file log is always on).
type Sink interface {
	Write(Record) error
}

// JSONSink writes each record as one JSON line, e.g. to stdout.
type JSONSink struct {
	mu sync.Mutex // guards W
	W  io.Writer
}

// Write implements Sink.
func (s *JSONSink) Write(r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode record: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err = s.W.Write(append(b, '\n'))
	return err
}

// SyslogSink sends each record as an RFC 5424 message (facility authpriv, severity notice) whose
// MSG is the record's JSON.
type SyslogSink struct {
	mu       sync.Mutex // guards conn
	conn     net.Conn
	hostname string
	appName  string
}

// facilityAuthpriv (10) * 8 + severityNotice (5)
const syslogPriority = 10*8 + 5

// NewSyslogSink dials network/addr ("unixgram", "/dev/log"; "udp", "127.0.0.1:514"; "tcp", …).
func NewSyslogSink(network, addr string) (*SyslogSink, error) {
	conn, err := net.Dial(network, addr)
	if err != nil {
		return nil, fmt.Errorf("dial syslog %s %s: %w", network, addr, err)
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "-"
	}
	return &SyslogSink{conn: conn, hostname: host, appName: "bulwark"}, nil
}

// Format renders r as an RFC 5424 message (exported for tests of the exact bytes).
func (s *SyslogSink) Format(r Record) ([]byte, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	msgID := strings.ReplaceAll(r.Type+"."+r.Action, " ", "_")
	header := fmt.Sprintf("<%d>1 %s %s %s %d %s - ", syslogPriority,
		r.Time.UTC().Format(time.RFC3339Nano), s.hostname, s.appName, os.Getpid(), msgID)
	return append([]byte(header), body...), nil
}

// Write implements Sink.
func (s *SyslogSink) Write(r Record) error {
	msg, err := s.Format(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.conn.Write(msg); err != nil {
		return fmt.Errorf("send to syslog: %w", err)
	}
	return nil
}

// Close closes the connection.
func (s *SyslogSink) Close() error { return s.conn.Close() }
