package profiles

import _ "embed" // go:embed below

// AppArmorTemplate is the text/template of the AppArmor profile every container runs under where
// the host enables AppArmor. sandbox/internal/mac fills it in (.Name, .DenyCapabilities).
//
//go:embed apparmor.tmpl
var AppArmorTemplate string
