// Package examples holds small programs built on the SDK, one per folder.
package examples

import (
	"os/exec"
	"strings"
	"testing"
)

// Every example program builds and passes go vet (go vet type-checks and
// compiles each one).
func TestExamplesBuild(t *testing.T) {
	out, err := exec.Command("go", "vet", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go vet ./sdk/examples/...: %v\n%s", err, out)
	}
	out, err = exec.Command("go", "list", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	// This package and at least three programs.
	if n := len(strings.Fields(string(out))); n < 4 {
		t.Fatalf("go vet saw %d packages, want the example programs too:\n%s", n, out)
	}
}
