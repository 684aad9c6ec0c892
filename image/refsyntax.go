package image

import "strings"

// The reference syntax is checked by hand rather than by regular expressions: compiling the
// name's expression and the tag's was most of this package's init, paid by every process start
// (GODEBUG=inittrace). ref_test.go checks both functions against the expressions they replace:
//
//	name: ^[a-z0-9]+([._-][a-z0-9]+|__)*(\.[a-z0-9-]+)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$
//	tag:  ^[A-Za-z0-9_][A-Za-z0-9_.-]*$

// validTag reports whether tag matches the tag expression (its length is checked apart).
func validTag(tag string) bool {
	if tag == "" || tag[0] == '.' || tag[0] == '-' {
		return false
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if !isAlnum(c) && !('A' <= c && c <= 'Z') && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// validName reports whether name matches the name expression: a first component (a host, with
// an optional port) and path components after slashes.
func validName(name string) bool {
	head, path, _ := strings.Cut(name, "/")
	if path != "" || strings.HasSuffix(name, "/") {
		for _, comp := range strings.Split(path, "/") {
			if !validPathComponent(comp) {
				return false
			}
		}
	}
	if host, port, ok := strings.Cut(head, ":"); ok {
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return false
		}
		head = host
	}
	return validHost(head)
}

// validPathComponent reports whether s matches [a-z0-9]+([._-]+[a-z0-9]+)*: alphanumerics and
// separators, beginning and ending with an alphanumeric.
func validPathComponent(s string) bool {
	if s == "" || !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && !isSep(s[i]) {
			return false
		}
	}
	return true
}

// validHost reports whether s matches A B, A = [a-z0-9]+([._-][a-z0-9]+|__)* and
// B = (\.[a-z0-9-]+)*. B may start at the end of s or at any dot; the dots where it may start
// are those after the last character B refuses (anything but [a-z0-9.-], or a dot not followed
// by a component), so s is valid if A takes the part before one of them.
func validHost(s string) bool {
	for i := len(s); i >= 0; i-- {
		if i < len(s) {
			c := s[i]
			if c != '.' && c != '-' && !isAlnum(c) || c == '.' && (i+1 == len(s) || s[i+1] == '.') {
				return false
			}
			if c != '.' {
				continue
			}
		}
		if validHostA(s[:i]) {
			return true
		}
	}
	return false
}

// validHostA reports whether s matches [a-z0-9]+([._-][a-z0-9]+|__)*: alphanumeric runs, each
// run of separators between two of them an even number of underscores and one separator, a
// run at the end an even number of underscores.
func validHostA(s string) bool {
	if s == "" || !isAlnum(s[0]) {
		return false
	}
	for i := 0; i < len(s); {
		if isAlnum(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isSep(s[j]) {
			j++
		}
		if j == i {
			return false
		}
		run := s[i:j]
		if j == len(s) {
			return len(run)%2 == 0 && strings.Trim(run, "_") == ""
		}
		if len(run)%2 == 0 || strings.Trim(run[:len(run)-1], "_") != "" {
			return false
		}
		i = j
	}
	return true
}

func isAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

func isSep(c byte) bool { return c == '.' || c == '_' || c == '-' }
