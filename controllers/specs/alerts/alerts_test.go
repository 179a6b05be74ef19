package alerts_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"

	"github.com/chatbackend/chatbackend/controllers/specs/alerts"
)

// wantAlerts are the alerts issue 3 asks for, by name, with their severity.
var wantAlerts = map[string]string{
	"ChatBackendJWKSRefreshFailing":    "warning",
	"ChatBackendTokenFailureRatioHigh": "warning",
	"ChatBackendAPIDown":               "critical",
	"ChatBackendHTTP5xxRatioHigh":      "critical",
	// Issue 11: outages the HTTP status cannot show.
	"ChatBackendDatabaseUnreachable": "critical",
	"ChatBackendDependencyDown":      "warning",
	"ChatBackendAnswersFailing":      "warning",
	// Issue 15: the index of spec.ingest is not refreshed.
	"ChatBackendIndexStale": "warning",
}

func allRules(groups []monitoringv1.RuleGroup) []monitoringv1.Rule {
	var out []monitoringv1.Rule
	for _, g := range groups {
		out = append(out, g.Rules...)
	}
	return out
}

func TestRuleGroupsHaveEveryAlertOnceWithAnnotations(t *testing.T) {
	g := NewWithT(t)
	groups, err := alerts.RuleGroups()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(groups).NotTo(BeEmpty())

	runbooks, err := os.ReadFile("../../../docs/runbooks.md")
	g.Expect(err).NotTo(HaveOccurred(), "docs/runbooks.md holds the runbooks the alerts link to")

	groupNames := map[string]bool{}
	for _, grp := range groups {
		g.Expect(groupNames).NotTo(HaveKey(grp.Name), "duplicate group name")
		groupNames[grp.Name] = true
	}

	seen := map[string]bool{}
	for _, r := range allRules(groups) {
		g.Expect(r.Record).To(BeEmpty(), "only alerting rules are expected")
		g.Expect(r.Alert).NotTo(BeEmpty())
		g.Expect(seen).NotTo(HaveKey(r.Alert), "duplicate alert name %s", r.Alert)
		seen[r.Alert] = true

		g.Expect(wantAlerts).To(HaveKeyWithValue(r.Alert, r.Labels["severity"]), "alert %s severity", r.Alert)
		g.Expect(r.Expr.StrVal).NotTo(BeEmpty(), "alert %s expr", r.Alert)
		g.Expect(r.For).NotTo(BeNil(), "alert %s for", r.Alert)
		for _, k := range []string{"summary", "description", "runbook_url"} {
			g.Expect(strings.TrimSpace(r.Annotations[k])).NotTo(BeEmpty(), "alert %s annotation %s", r.Alert, k)
		}
		anchor := strings.ToLower(r.Alert)
		g.Expect(r.Annotations["runbook_url"]).To(Equal(alerts.RunbookBaseURL + "#" + anchor))
		// GitHub derives the anchor from the heading text.
		g.Expect(string(runbooks)).To(MatchRegexp(`(?m)^## `+r.Alert+`\s*$`), "docs/runbooks.md needs a section for %s", r.Alert)
	}
	g.Expect(seen).To(HaveLen(len(wantAlerts)))
}

// selectorRE finds the vector selectors of a PromQL expression (metric{...}).
var selectorRE = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*\{[^}]*\}`)

func TestRuleGroupsForScopesEveryQueryToTheChatBackend(t *testing.T) {
	g := NewWithT(t)
	groups, err := alerts.RuleGroupsFor(alerts.ForChatBackend("docs", "docs-chat"))
	g.Expect(err).NotTo(HaveOccurred())

	for _, r := range allRules(groups) {
		sels := selectorRE.FindAllString(r.Expr.StrVal, -1)
		g.Expect(sels).NotTo(BeEmpty(), "alert %s has no selector", r.Alert)
		for _, s := range sels {
			// The operator's own metrics name the ChatBackend in their
			// labels; the API's are scoped by the scrape target's.
			g.Expect(s).To(Or(ContainSubstring(`{namespace="docs", job="docs-chat"`),
				MatchRegexp(`^chatbackend_(desired_replicas|ingest_last_success_timestamp_seconds|ingest_max_age_seconds)\{chatbackend_namespace="docs", chatbackend="docs-chat"\}$`)),
				"alert %s: %s", r.Alert, s)
		}
		// The production durations.
		g.Expect(string(*r.For)).To(BeElementOf("1m", "5m"))
	}
}

func TestRenderRulesWithTestSizedDurations(t *testing.T) {
	g := NewWithT(t)
	p := alerts.DefaultParams()
	p.JWKSMaxAge = 15 * time.Second
	p.TokenWindow = 30 * time.Second
	p.HTTPWindow = 20 * time.Second
	p.For = alerts.ForDurations{
		JWKSRefreshFailing:    2 * time.Second,
		TokenFailureRatioHigh: 3 * time.Second,
		APIDown:               4 * time.Second,
		HTTP5xxRatioHigh:      1500 * time.Millisecond,
		DatabaseUnreachable:   time.Second,
		DependencyDown:        time.Second,
		AnswersFailing:        time.Second,
		IndexStale:            time.Second,
	}
	groups, err := alerts.RuleGroupsFor(p)
	g.Expect(err).NotTo(HaveOccurred())

	byName := map[string]monitoringv1.Rule{}
	for _, r := range allRules(groups) {
		byName[r.Alert] = r
		for _, s := range selectorRE.FindAllString(r.Expr.StrVal, -1) {
			// No namespace in DefaultParams: the job alone scopes.
			g.Expect(s).To(Or(ContainSubstring(`{job="chat-apiserver"`), ContainSubstring(`{chatbackend="chat-apiserver"}`)), "alert %s: %s", r.Alert, s)
			g.Expect(s).NotTo(ContainSubstring("namespace="))
		}
	}
	jwks := byName["ChatBackendJWKSRefreshFailing"]
	g.Expect(string(*jwks.For)).To(Equal("2s"))
	g.Expect(jwks.Expr.StrVal).To(ContainSubstring("> 15\n"))
	g.Expect(jwks.Expr.StrVal).To(ContainSubstring("[15s]"))
	g.Expect(jwks.Annotations["description"]).To(ContainSubstring("more than 15s"))

	tok := byName["ChatBackendTokenFailureRatioHigh"]
	g.Expect(string(*tok.For)).To(Equal("3s"))
	g.Expect(tok.Expr.StrVal).To(ContainSubstring("[30s]"))
	g.Expect(tok.Expr.StrVal).NotTo(ContainSubstring("[10m]"))

	g.Expect(string(*byName["ChatBackendAPIDown"].For)).To(Equal("4s"))

	h := byName["ChatBackendHTTP5xxRatioHigh"]
	g.Expect(string(*h.For)).To(Equal("1s500ms"))
	g.Expect(h.Expr.StrVal).To(ContainSubstring("[20s]"))
}

func TestRenderRulesRefusesBadParams(t *testing.T) {
	ok := alerts.ForChatBackend("docs", "docs-chat")
	for name, tc := range map[string]struct {
		mutate func(*alerts.Params)
		want   string
	}{
		"empty job":       {func(p *alerts.Params) { p.Job = "" }, "job must not be empty"},
		"zero window":     {func(p *alerts.Params) { p.TokenWindow = 0 }, "TokenWindow is 0s"},
		"negative for":    {func(p *alerts.Params) { p.For.APIDown = -time.Second }, "For.APIDown is -1s"},
		"sub-millisecond": {func(p *alerts.Params) { p.JWKSMaxAge = time.Minute + time.Microsecond }, "whole number of milliseconds"},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			p := ok
			tc.mutate(&p)
			_, err := alerts.RenderRules(p)
			g.Expect(err).To(MatchError(ContainSubstring(tc.want)))
			_, err = alerts.RuleGroupsFor(p)
			g.Expect(err).To(MatchError(ContainSubstring(tc.want)))
		})
	}
}

func TestLabelValuesAreQuotedForPromQL(t *testing.T) {
	g := NewWithT(t)
	groups, err := alerts.RuleGroupsFor(alerts.ForChatBackend(`we"ird`, `a\b`))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(groups[0].Rules[0].Expr.StrVal).To(ContainSubstring(`{namespace="we\"ird", job="a\\b"`))
}

// MarshalRuleFile must write what prometheus-operator would: a rule file
// that reads back into the same groups.
func TestMarshalRuleFileRoundTrips(t *testing.T) {
	g := NewWithT(t)
	groups, err := alerts.RuleGroupsFor(alerts.ForChatBackend("docs", "docs-chat"))
	g.Expect(err).NotTo(HaveOccurred())
	out, err := alerts.MarshalRuleFile(groups)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(out)).To(HavePrefix("groups:\n"))

	var back struct {
		Groups []monitoringv1.RuleGroup `json:"groups"`
	}
	g.Expect(yaml.UnmarshalStrict(out, &back)).To(Succeed())
	g.Expect(back.Groups).To(Equal(groups))
}
