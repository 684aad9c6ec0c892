package evalproto

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"bulwark.dev/bulwark/policy/document"
)

// Session is one conversation with an evaluator, started on a request's first cache miss and
// ended (Close) with the request.
type Session struct {
	in   io.WriteCloser
	enc  *json.Encoder
	dec  *json.Decoder
	wait func() error
}

// Start starts ev and has it load and prepare the policy hello selects.
func Start(ctx context.Context, ev *Evaluator, hello Hello) (*Session, Prepared, error) {
	in, out, wait, err := ev.Start(ctx)
	if err != nil {
		return nil, Prepared{}, err
	}
	s := &Session{in: in, enc: json.NewEncoder(in), dec: json.NewDecoder(out), wait: wait}
	s.dec.DisallowUnknownFields()
	var prepared Prepared
	err = s.enc.Encode(hello)
	if err == nil {
		err = s.dec.Decode(&prepared)
	}
	if err == nil && prepared.Error != "" {
		s.Close() // it ends after saying why
		return nil, prepared, errors.New(prepared.Error)
	}
	if err != nil {
		return nil, prepared, errors.Join(err, s.Close())
	}
	return s, prepared, nil
}

// Decide has the evaluator decide req, whose digest is input. It returns the decision and
// whether the policy may be cached; any doubt is an error.
func (s *Session) Decide(req *document.Request, input string) (document.Decision, bool, error) {
	ans, err := s.ask(Ask{Request: req, Input: input})
	switch {
	case err != nil:
		return document.Decision{}, false, err
	case ans.Input != input:
		return document.Decision{}, false, fmt.Errorf("policy evaluator decided input %s, not %s", ans.Input, input)
	}
	return ans.Decision, ans.Deterministic, nil
}

// DecideQuota has the evaluator decide a quota request.
func (s *Session) DecideQuota(req document.QuotaRequest) (document.QuotaDecision, error) {
	ans, err := s.ask(Ask{Quota: &req})
	if err == nil && ans.Quota == nil {
		err = errors.New("policy evaluator: no quota decision in its answer")
	}
	if err != nil {
		return document.QuotaDecision{}, err
	}
	return *ans.Quota, nil
}

// DecideStorage has the evaluator decide a storage request.
func (s *Session) DecideStorage(req document.StorageRequest) (document.StorageDecision, error) {
	ans, err := s.ask(Ask{Storage: &req})
	if err == nil && ans.Storage == nil {
		err = errors.New("policy evaluator: no storage decision in its answer")
	}
	if err != nil {
		return document.StorageDecision{}, err
	}
	return *ans.Storage, nil
}

func (s *Session) ask(a Ask) (Answer, error) {
	if s.in == nil {
		return Answer{}, errors.New("policy evaluator: the conversation has ended")
	}
	var ans Answer
	err := s.enc.Encode(a)
	if err == nil {
		err = s.dec.Decode(&ans)
	}
	switch {
	case err != nil:
		return Answer{}, errors.Join(fmt.Errorf("policy evaluator: %w", err), s.Close())
	case ans.Error != "":
		return Answer{}, fmt.Errorf("policy evaluator: %s", ans.Error)
	}
	return ans, nil
}

// Close ends the conversation and waits for the evaluator (nil: none was started).
func (s *Session) Close() error {
	if s == nil || s.in == nil {
		return nil
	}
	s.in.Close()
	s.in = nil
	return s.wait()
}
