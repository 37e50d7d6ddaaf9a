package ssh

import (
	"errors"
	"fmt"
	"testing"

	"github.com/upgrader-dev/upgrader/modules"
)

// TestError_isAHostError: modules.OnHost finds the transport's error by
// type and does not name its host twice.
func TestError_isAHostError(t *testing.T) {
	err := fmt.Errorf("upload #1: %w", &Error{Host: "web", Op: "run", Err: errors.New("connection lost")})
	if modules.ErrorHost(err) != "web" || modules.OnHost("web", err) != err {
		t.Fatalf("ErrorHost = %q, OnHost = %v", modules.ErrorHost(err), modules.OnHost("web", err))
	}
}
