// Package names checks the syntax of the names Bulwark's objects and tenants have: the same
// rules for a container, a volume and a tenant wherever one is named. They are checked by hand:
// regular expressions compiled at package initialisation were paid by every process start
// (GODEBUG=inittrace).
package names

// Object reports whether name is a container's or a volume's name: Docker's syntax
// [A-Za-z0-9][A-Za-z0-9_.-]{0,127}, so no separators and no "..".
func Object(name string) bool {
	return valid(name, 128, func(c byte, first bool) bool {
		return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			!first && (c == '_' || c == '.' || c == '-')
	})
}

// Tenant reports whether tenant is a tenant's name: [a-z0-9][a-z0-9-]{0,62}.
func Tenant(tenant string) bool {
	return valid(tenant, 63, func(c byte, first bool) bool {
		return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || !first && c == '-'
	})
}

// valid reports whether s has 1 to max bytes, each allowed where it stands.
func valid(s string, max int, allowed func(c byte, first bool) bool) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !allowed(s[i], i == 0) {
			return false
		}
	}
	return true
}
