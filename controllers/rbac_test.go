package controllers_test

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// TestRBACGrantsOnlyWhatTheCodeUses: the operator's ClusterRole, generated
// from the markers in chatbackend_controller.go, grants exactly the verbs
// below, each with the code path that needs it. A marker granting more
// fails here: add the code path first. (The chart test runs the manager
// under this role through the samples, so it also shows the role is
// enough.)
func TestRBACGrantsOnlyWhatTheCodeUses(t *testing.T) {
	g := NewWithT(t)
	// resource → verb → the code path using it.
	want := map[string]map[string]string{
		"chat.chatbackend.io/chatbackends": {
			"get": "Reconcile", "list": "the cache, the Secret and monitoring mappings", "watch": "the cache",
		},
		"chat.chatbackend.io/chatbackends/status":     {"patch": "writeStatus"},
		"chat.chatbackend.io/chatbackends/finalizers": {"update": "owner references with blockOwnerDeletion (OwnerReferencesPermissionEnforcement)"},
		"/secrets": {
			"get": "reconcileEnvSecret reads the referenced Secrets; getChild", "list": "metadata watches, collectEnvSecrets",
			"watch": "metadata watches", "create": "apply of a new env Secret", "patch": "apply", "delete": "collectEnvSecrets",
		},
		"/services": {"get": "getChild", "list": "the cache", "watch": "the cache", "create": "apply", "patch": "apply"},
		"/pods":     {"list": "migration pod problems, stuck rollouts, ingest runs' termination messages"},
		"/events":   {"create": "the event recorder", "patch": "the event recorder"},
		"events.k8s.io/events": {
			"create": "the event recorder", "patch": "the event recorder",
		},
		"batch/jobs": {
			"get": "getChild", "list": "the cache", "watch": "the cache", "create": "apply", "patch": "apply",
			"delete": "superseded and stuck migrations Jobs, superseded ingest Jobs, removeIngest",
		},
		"batch/cronjobs": {
			"get": "getChild", "list": "the cache", "watch": "the cache", "create": "apply", "patch": "apply",
			"delete": "removeIngest when spec.ingest is removed",
		},
		"apps/deployments": {"get": "getChild", "list": "the cache", "watch": "the cache", "create": "apply", "patch": "apply"},
		"policy/poddisruptionbudgets": {
			"get": "getChild", "list": "the cache", "watch": "the cache", "create": "apply", "patch": "apply",
			"delete": "deleteOwned when replicas drop below 2",
		},
		"networking.k8s.io/networkpolicies": {
			"get": "getChild", "list": "the cache", "watch": "the cache", "create": "apply", "patch": "apply",
			"delete": "reconcileNetworkPolicy when disabled",
		},
		"monitoring.coreos.com/servicemonitors": {
			"get": "getChild", "list": "the cache", "watch": "the cache", "create": "apply", "patch": "apply",
			"delete": "deleteOwned when disabled",
		},
		"authentication.k8s.io/tokenreviews":        {"create": "the secure metrics endpoint authenticates scrapers"},
		"authorization.k8s.io/subjectaccessreviews": {"create": "the secure metrics endpoint authorizes scrapers"},
		"monitoring.coreos.com/prometheusrules": {
			"get": "getChild", "list": "the cache", "watch": "the cache", "create": "apply", "patch": "apply",
			"delete": "deleteOwned when disabled",
		},
	}

	raw, err := os.ReadFile(filepath.Join("..", "config", "rbac", "role.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	var role rbacv1.ClusterRole
	g.Expect(yaml.UnmarshalStrict(raw, &role)).To(Succeed())
	got := map[string][]string{}
	for _, rule := range role.Rules {
		g.Expect(rule.ResourceNames).To(BeEmpty())
		for _, group := range rule.APIGroups {
			for _, res := range rule.Resources {
				got[group+"/"+res] = append(got[group+"/"+res], rule.Verbs...)
			}
		}
	}
	wantVerbs := map[string][]string{}
	for res, verbs := range want {
		for v := range verbs {
			wantVerbs[res] = append(wantVerbs[res], v)
		}
		sort.Strings(wantVerbs[res])
	}
	for res := range got {
		sort.Strings(got[res])
	}
	g.Expect(got).To(Equal(wantVerbs))
}
