package policy

// deny is a decision that denies with one reason.
func deny(code, path string, err error) Decision {
	return Decision{Reasons: []Reason{{Code: code, Message: err.Error(), Path: path}}}
}
