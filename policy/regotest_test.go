package policy

import (
	"context"
	"testing"
)

func TestEmbeddedRegoUnitTests(t *testing.T) {
	p, err := LoadForTests("")
	if err != nil {
		t.Fatal(err)
	}
	results, err := RunTests(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) < 20 {
		t.Fatalf("only %d Rego tests ran", len(results))
	}
	for _, r := range results {
		if !r.Pass {
			t.Errorf("%s.%s (%s): %s", r.Package, r.Name, r.Location, r.Error)
		}
	}
}
