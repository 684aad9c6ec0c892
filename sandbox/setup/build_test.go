package setup

import "testing"

// A setup child refuses a runtime of another build.
func TestCheckBuild(t *testing.T) {
	old := buildID
	defer func() { buildID = old }()
	buildID = "b1"
	t.Setenv(EnvBuild, "b1")
	if err := checkBuild(); err != nil {
		t.Fatalf("same build refused: %v", err)
	}
	t.Setenv(EnvBuild, "b2")
	if err := checkBuild(); err == nil {
		t.Fatal("a runtime of another build was served")
	}
}
