package nodetest

import (
	"os/exec"
	"syscall"
)

// setProcAttrs makes the kernel kill node when the test binary dies (a
// timeout panic, a SIGKILL), so no node program is left running after a test.
func setProcAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
