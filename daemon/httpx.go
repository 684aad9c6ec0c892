package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/common"

	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/policy"
)

// The API versions served: from MinAPIVersion (Docker's 1.41, docker.io 20.10) to APIVersion
// (the Docker CLI 28.x).
const (
	APIVersion    = "1.50"
	MinAPIVersion = "1.41"
)

// httpError is an error with the status it is answered with.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func statusError(status int, format string, a ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, a...)}
}

func notImplemented(what string) error {
	return statusError(http.StatusNotImplemented, "bulwarkd does not implement %s", what)
}

func unavailable(msg string) error { return &httpError{status: http.StatusForbidden, msg: msg} }

// statusOf maps an error to its HTTP status: the daemon's own, else the engine's error class
// (errdefs), else 500.
func statusOf(err error) int {
	var he *httpError
	if errors.As(err, &he) {
		return he.status
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge
	}
	var de *policy.DeniedError
	if errors.As(err, &de) {
		return http.StatusForbidden
	}
	switch errdefs.Class(err) {
	case errdefs.ErrNotFound:
		return http.StatusNotFound
	case errdefs.ErrAlreadyExists, errdefs.ErrConflict:
		return http.StatusConflict
	case errdefs.ErrInvalidArgument:
		return http.StatusBadRequest
	case errdefs.ErrRefusedByFloor, errdefs.ErrRefusedByPolicy, errdefs.ErrUntrusted:
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// writeError answers with Docker's error document, {"message": "..."}.
func writeError(w http.ResponseWriter, err error) {
	msg := err.Error()
	var de *policy.DeniedError
	if errors.As(err, &de) {
		// One line, every reason with its code, as a client prints it.
		msg = strings.Replace(strings.TrimSpace(msg), ":\n  ", ": ", 1)
		msg = strings.ReplaceAll(msg, "\n  ", "; ")
	}
	writeJSON(w, statusOf(err), common.ErrorResponse{Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// strictDecode reads a JSON body strictly: no unknown field, one document. An empty body is an
// error too (CVE-2024-41110: Docker's authz plugins saw no body and allowed).
func strictDecode(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return statusError(http.StatusBadRequest, "request body is empty: a JSON document is required")
		}
		return statusError(http.StatusBadRequest, "malformed request body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return statusError(http.StatusBadRequest, "malformed request body: more than one JSON document")
	}
	return nil
}

var versionRE = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/.*)$`)

// splitVersion strips /v1.xx from a path and checks the version is served.
func splitVersion(p string) (version, rest string, err error) {
	m := versionRE.FindStringSubmatch(p)
	if m == nil {
		return APIVersion, p, nil
	}
	switch {
	case compareVersions(m[1], MinAPIVersion) < 0:
		return "", "", statusError(http.StatusBadRequest, "client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", m[1], MinAPIVersion)
	case compareVersions(m[1], APIVersion) > 0:
		return "", "", statusError(http.StatusBadRequest, "client version %s is too new. Maximum supported API version is %s", m[1], APIVersion)
	}
	return m[1], m[2], nil
}

// compareVersions compares "1.41" and "1.50" numerically.
func compareVersions(a, b string) int {
	am, an, _ := strings.Cut(a, ".")
	bm, bn, _ := strings.Cut(b, ".")
	ai, _ := strconv.Atoi(am)
	bi, _ := strconv.Atoi(bm)
	if ai != bi {
		return ai - bi
	}
	aj, _ := strconv.Atoi(an)
	bj, _ := strconv.Atoi(bn)
	return aj - bj
}

// boolParam reads Docker's boolean query values (1, true, True).
func boolParam(r *http.Request, name string) bool {
	v := strings.ToLower(r.URL.Query().Get(name))
	return v == "1" || v == "true"
}
