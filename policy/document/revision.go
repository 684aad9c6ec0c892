package document

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// RevisionFile, under <root>/policy/, records the highest accepted bundle revision.
const RevisionFile = "bundle-revision.json"

// AcceptedRevision is the highest bundle revision a state root has accepted.
type AcceptedRevision struct {
	Revision uint64 `json:"revision"`
	Digest   string `json:"digest"`
}

// ReadAcceptedRevision returns the highest accepted revision under root; ok is false when no
// bundle was ever accepted.
func ReadAcceptedRevision(root string) (rev AcceptedRevision, ok bool, err error) {
	data, err := os.ReadFile(filepath.Join(root, "policy", RevisionFile))
	if errors.Is(err, fs.ErrNotExist) {
		return AcceptedRevision{}, false, nil
	}
	if err != nil {
		return AcceptedRevision{}, false, fmt.Errorf("read accepted bundle revision: %w", err)
	}
	if err := json.Unmarshal(data, &rev); err != nil {
		// A corrupt record must not reset the floor to zero: refuse until an operator looks.
		return AcceptedRevision{}, false, fmt.Errorf("parse %s: %w", RevisionFile, err)
	}
	return rev, true, nil
}
