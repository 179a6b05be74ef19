// Command pause is the CRI sandbox ("pause") image of hack/cluster.sh: it
// holds a pod's namespaces and does nothing else. No registry is reachable
// here, so the node cannot pull registry.k8s.io/pause; this is built locally
// by hack/image instead.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
}
