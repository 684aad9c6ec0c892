package document

import (
	"context"
	"io"
	"log/slog"
	"time"
)

// DecisionRecord is what the audit trail keeps of one decision. It carries a digest of the
// input, not the input, so the trail can prove which request was decided without storing it.
type DecisionRecord struct {
	InputDigest string
	Tenant      string
	Operation   Operation
	Allow       bool
	Reasons     []Reason
	Revision    string
	Duration    time.Duration
	// Cached says the decision was read from the decision cache (DecisionCache), made earlier by
	// the same policy on the same input.
	Cached bool
}

// DecisionRecorder receives every decision the engine makes. The audit package implements it;
// until then LogRecorder writes to the runtime log.
type DecisionRecorder interface {
	RecordDecision(DecisionRecord)
}

// LogRecorder writes each decision as one structured log line (slog.Default when Logger is
// nil, i.e. the runtime's stderr log).
type LogRecorder struct {
	Logger *slog.Logger
}

// NewLogRecorder writes decisions as JSON lines to w (a runtime log file, for instance).
func NewLogRecorder(w io.Writer) LogRecorder {
	return LogRecorder{Logger: slog.New(slog.NewJSONHandler(w, nil))}
}

// RecordDecision implements DecisionRecorder.
func (l LogRecorder) RecordDecision(r DecisionRecord) {
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	codes := make([]string, len(r.Reasons))
	for i, reason := range r.Reasons {
		codes[i] = reason.Code
	}
	level := slog.LevelInfo
	if !r.Allow {
		level = slog.LevelWarn
	}
	logger.LogAttrs(context.Background(), level, "policy decision",
		slog.String("input_digest", r.InputDigest),
		slog.String("tenant", r.Tenant),
		slog.String("operation", string(r.Operation)),
		slog.Bool("allow", r.Allow),
		slog.Any("reasons", codes),
		slog.String("revision", r.Revision),
		slog.Duration("duration", r.Duration),
	)
}
