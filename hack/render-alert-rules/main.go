// Command render-alert-rules prints the alert rules the operator installs for
// one ChatBackend as a Prometheus rule file, so that promtool (hack/test-alerts.sh)
// checks exactly the groups the PrometheusRule carries. It is a development
// tool, so it lives under hack/, out of the operator's production tree.
//
//	go run ./hack/render-alert-rules -namespace docs -job docs-chat > rules.yaml
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/chatbackend/chatbackend/controllers/specs/alerts"
)

func main() {
	namespace := flag.String("namespace", "", "namespace label the rules are scoped to (the ChatBackend's namespace)")
	job := flag.String("job", alerts.DefaultJob, "job label the rules are scoped to (the ChatBackend's name)")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "render-alert-rules: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}

	groups, err := alerts.RuleGroupsFor(alerts.ForChatBackend(*namespace, *job))
	if err != nil {
		fmt.Fprintf(os.Stderr, "render-alert-rules: %v\n", err)
		os.Exit(1)
	}
	out, err := alerts.MarshalRuleFile(groups)
	if err != nil {
		fmt.Fprintf(os.Stderr, "render-alert-rules: %v\n", err)
		os.Exit(1)
	}
	if _, err := os.Stdout.Write(out); err != nil {
		fmt.Fprintf(os.Stderr, "render-alert-rules: write: %v\n", err)
		os.Exit(1)
	}
}
