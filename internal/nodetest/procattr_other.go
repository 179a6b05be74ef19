//go:build !linux

package nodetest

import "os/exec"

// setProcAttrs has nothing to add off Linux: t.Cleanup stops node.
func setProcAttrs(*exec.Cmd) {}
