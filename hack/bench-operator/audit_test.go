//go:build benchoperator

package benchoperator

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// auditPolicy records every request of the operator's user (one event per
// request, when its response completes; a watch's when its response
// starts) and nothing of anyone else's.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  users: ["` + operatorUser + `"]
- level: None
`

// auditFlags are the kube-apiserver flags that make it write the
// operator's requests to dir/audit.log, for requestBreakdown. The API
// server sees every request the operator makes, so the breakdown needs no
// instrumentation of the operator.
func auditFlags(dir string) (map[string]string, string, error) {
	policy := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return nil, "", fmt.Errorf("write the audit policy: %w", err)
	}
	log := filepath.Join(dir, "audit.log")
	return map[string]string{
		"audit-policy-file": policy,
		"audit-log-path":    log,
		// Written as each request ends, so a read after convergence sees
		// every request until then.
		"audit-log-mode": "blocking",
	}, log, nil
}

// auditEvent is the part of an audit.k8s.io/v1 Event the breakdown reads.
type auditEvent struct {
	Stage     string `json:"stage"`
	Verb      string `json:"verb"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// auditOffset is how much of the audit log is written so far: the
// requests until then are those before it.
func auditOffset(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// requestBreakdown counts the operator's requests in the first until bytes
// of the audit log by verb, resource and response code, most first, as
// "verb resource[/subresource] code: count" lines.
func requestBreakdown(path string, until int64) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open the audit log: %w", err)
	}
	defer f.Close()
	counts := map[string]int{}
	sc := bufio.NewScanner(io.LimitReader(f, until))
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		var e auditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("parse the audit log: %w", err)
		}
		watchStart := e.Verb == "watch" && e.Stage == "ResponseStarted"
		if e.Stage != "ResponseComplete" && !watchStart || e.Verb == "watch" && !watchStart {
			continue
		}
		what := e.Verb
		if e.ObjectRef != nil {
			what += " " + e.ObjectRef.Resource
			if e.ObjectRef.Subresource != "" {
				what += "/" + e.ObjectRef.Subresource
			}
		}
		if e.ResponseStatus != nil {
			what += fmt.Sprintf(" %d", e.ResponseStatus.Code)
		}
		counts[what]++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read the audit log: %w", err)
	}
	lines := make([]string, 0, len(counts))
	for what, n := range counts {
		lines = append(lines, fmt.Sprintf("%6d %s", n, what))
	}
	slices.SortFunc(lines, func(a, b string) int { return strings.Compare(b, a) })
	return lines, nil
}
