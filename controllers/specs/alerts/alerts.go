// Package alerts holds the Prometheus alert rules the operator installs for
// every ChatBackend, in one embedded rule file (rules.yaml) rendered with
// per-deployment parameters.
//
// Scoping: the rules are installed once per ChatBackend (one PrometheusRule
// next to its ServiceMonitor), so every query is restricted to that
// ChatBackend's series with namespace="<namespace>" and job="<name>".
// prometheus-operator sets those labels on everything a ServiceMonitor
// scrapes: namespace is the Service's namespace and job is the Service's name
// (the operator names the Service after the ChatBackend and sets no
// jobLabel). Without the scoping, two ChatBackends in a cluster would each
// alert on the other's series, twice over.
//
// The same source serves three consumers: the PrometheusRule builder
// (RuleGroupsFor), `make test-alerts` (promtool check/test on the rendered
// file) and the end-to-end test, which renders it with test-sized windows.
package alerts

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"
)

//go:embed rules.yaml
var rulesTemplate string

// RunbookBaseURL is where each alert's runbook_url points (an anchor per
// alert is appended).
const RunbookBaseURL = "https://github.com/chatbackend/chatbackend/blob/main/docs/runbooks.md"

// DefaultJob is the job label used when no ChatBackend scopes the rules, e.g.
// a hand-written scrape config for a single chat-apiserver.
const DefaultJob = "chat-apiserver"

// Params are what varies between installations of the rules. Build them with
// DefaultParams or ForChatBackend and override what a test needs.
type Params struct {
	// Namespace restricts the rules to series with this namespace label;
	// empty means no namespace matcher.
	Namespace string
	// Job restricts the rules to series with this job label. Required.
	Job string

	// JWKSMaxAge is how long a pod may go without a successful JWKS refresh.
	// It must comfortably exceed the API server's JWKS refresh interval.
	JWKSMaxAge time.Duration
	// TokenWindow is the range of the token failure ratio.
	TokenWindow time.Duration
	// HTTPWindow is the range of the 5xx ratio.
	HTTPWindow time.Duration
	// For is each alert's `for:` duration.
	For ForDurations
}

// ForDurations is the `for:` of each alert, by alert.
type ForDurations struct {
	JWKSRefreshFailing    time.Duration
	TokenFailureRatioHigh time.Duration
	APIDown               time.Duration
	HTTP5xxRatioHigh      time.Duration
	DatabaseUnreachable   time.Duration
	DependencyDown        time.Duration
	AnswersFailing        time.Duration
	IndexStale            time.Duration
}

// DefaultParams are the production windows, unscoped to a namespace and
// selecting job="chat-apiserver".
func DefaultParams() Params {
	return Params{
		Job:         DefaultJob,
		JWKSMaxAge:  10 * time.Minute,
		TokenWindow: 10 * time.Minute,
		HTTPWindow:  5 * time.Minute,
		For: ForDurations{
			JWKSRefreshFailing:    time.Minute,
			TokenFailureRatioHigh: 5 * time.Minute,
			APIDown:               5 * time.Minute,
			HTTP5xxRatioHigh:      5 * time.Minute,
			DatabaseUnreachable:   5 * time.Minute,
			DependencyDown:        5 * time.Minute,
			AnswersFailing:        5 * time.Minute,
			IndexStale:            5 * time.Minute,
		},
	}
}

// ForChatBackend returns the production parameters scoped to the ChatBackend
// name in namespace (whose Service, and so whose scrape job, is also name).
func ForChatBackend(namespace, name string) Params {
	p := DefaultParams()
	p.Namespace = namespace
	p.Job = name
	return p
}

func (p Params) validate() error {
	var errs []error
	if p.Job == "" {
		errs = append(errs, errors.New("job must not be empty"))
	}
	for _, d := range []struct {
		name string
		d    time.Duration
		min  time.Duration
	}{
		{"JWKSMaxAge", p.JWKSMaxAge, time.Second},
		{"TokenWindow", p.TokenWindow, time.Second},
		{"HTTPWindow", p.HTTPWindow, time.Second},
		{"For.JWKSRefreshFailing", p.For.JWKSRefreshFailing, 0},
		{"For.TokenFailureRatioHigh", p.For.TokenFailureRatioHigh, 0},
		{"For.APIDown", p.For.APIDown, 0},
		{"For.HTTP5xxRatioHigh", p.For.HTTP5xxRatioHigh, 0},
		{"For.DatabaseUnreachable", p.For.DatabaseUnreachable, 0},
		{"For.DependencyDown", p.For.DependencyDown, 0},
		{"For.AnswersFailing", p.For.AnswersFailing, 0},
		{"For.IndexStale", p.For.IndexStale, 0},
	} {
		if d.d < d.min {
			errs = append(errs, fmt.Errorf("%s is %s, want at least %s", d.name, d.d, d.min))
		}
		// Prometheus durations have millisecond resolution.
		if d.d%time.Millisecond != 0 {
			errs = append(errs, fmt.Errorf("%s is %s, want a whole number of milliseconds", d.name, d.d))
		}
	}
	return errors.Join(errs...)
}

// templateData is what rules.yaml sees: durations already in Prometheus
// notation, the selector already quoted.
type templateData struct {
	Selector          string
	OperatorSelector  string
	JWKSMaxAge        string
	JWKSMaxAgeSeconds string
	TokenWindow       string
	HTTPWindow        string
	RunbookBaseURL    string
	For               struct {
		JWKSRefreshFailing, TokenFailureRatioHigh, APIDown, HTTP5xxRatioHigh string
		DatabaseUnreachable, DependencyDown, AnswersFailing, IndexStale      string
	}
}

// promDuration formats d the way Prometheus writes durations ("1m", "1h30m", "500ms").
func promDuration(d time.Duration) string { return model.Duration(d).String() }

// selector renders the label matchers scoping the rules. strconv.Quote's
// escapes are valid in PromQL double-quoted strings.
func (p Params) selector() string {
	var m []string
	if p.Namespace != "" {
		m = append(m, "namespace="+strconv.Quote(p.Namespace))
	}
	m = append(m, "job="+strconv.Quote(p.Job))
	return strings.Join(m, ", ")
}

// operatorSelector selects the ChatBackend's series in the operator's own
// metrics (chatbackend_desired_replicas), whose labels name the
// ChatBackend rather than the scrape target.
func (p Params) operatorSelector() string {
	var m []string
	if p.Namespace != "" {
		m = append(m, "chatbackend_namespace="+strconv.Quote(p.Namespace))
	}
	m = append(m, "chatbackend="+strconv.Quote(p.Job))
	return strings.Join(m, ", ")
}

// RenderRules renders the rule file (a Prometheus `groups:` document, as
// promtool and Prometheus's rule_files read it) for p.
func RenderRules(p Params) ([]byte, error) {
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("alert rule parameters: %w", err)
	}
	d := templateData{
		Selector:          p.selector(),
		OperatorSelector:  p.operatorSelector(),
		JWKSMaxAge:        promDuration(p.JWKSMaxAge),
		JWKSMaxAgeSeconds: strconv.FormatFloat(p.JWKSMaxAge.Seconds(), 'f', -1, 64),
		TokenWindow:       promDuration(p.TokenWindow),
		HTTPWindow:        promDuration(p.HTTPWindow),
		RunbookBaseURL:    RunbookBaseURL,
	}
	d.For.JWKSRefreshFailing = promDuration(p.For.JWKSRefreshFailing)
	d.For.TokenFailureRatioHigh = promDuration(p.For.TokenFailureRatioHigh)
	d.For.APIDown = promDuration(p.For.APIDown)
	d.For.HTTP5xxRatioHigh = promDuration(p.For.HTTP5xxRatioHigh)
	d.For.DatabaseUnreachable = promDuration(p.For.DatabaseUnreachable)
	d.For.DependencyDown = promDuration(p.For.DependencyDown)
	d.For.AnswersFailing = promDuration(p.For.AnswersFailing)
	d.For.IndexStale = promDuration(p.For.IndexStale)

	// Parsed per call (microseconds) rather than at init, so a broken
	// template is an error for the caller, not a panic in the operator.
	tmpl, err := template.New("rules.yaml").Delims("<<", ">>").Option("missingkey=error").Parse(rulesTemplate)
	if err != nil {
		return nil, fmt.Errorf("parse alert rules template: %w", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, d); err != nil {
		return nil, fmt.Errorf("render alert rules: %w", err)
	}
	return buf.Bytes(), nil
}

// ruleFile is the top level of a Prometheus rule file.
type ruleFile struct {
	Groups []monitoringv1.RuleGroup `json:"groups"`
}

// RuleGroupsFor returns the rule groups for a PrometheusRule's spec.groups,
// rendered for p.
func RuleGroupsFor(p Params) ([]monitoringv1.RuleGroup, error) {
	raw, err := RenderRules(p)
	if err != nil {
		return nil, err
	}
	var f ruleFile
	// Strict, so a misspelt field in rules.yaml fails the unit tests instead
	// of silently vanishing from the installed PrometheusRule.
	if err := yaml.UnmarshalStrict(raw, &f); err != nil {
		return nil, fmt.Errorf("parse rendered alert rules: %w", err)
	}
	if len(f.Groups) == 0 {
		return nil, errors.New("parse rendered alert rules: no groups")
	}
	return f.Groups, nil
}

// RuleGroups returns the rule groups with DefaultParams (job="chat-apiserver",
// any namespace). The operator scopes them per ChatBackend with
// RuleGroupsFor(ForChatBackend(namespace, name)).
func RuleGroups() ([]monitoringv1.RuleGroup, error) {
	return RuleGroupsFor(DefaultParams())
}

// MarshalRuleFile writes groups as a Prometheus rule file, the way
// prometheus-operator hands a PrometheusRule's groups to Prometheus; tests
// feed it to promtool and Prometheus so that they check what is installed.
func MarshalRuleFile(groups []monitoringv1.RuleGroup) ([]byte, error) {
	out, err := yaml.Marshal(ruleFile{Groups: groups})
	if err != nil {
		return nil, fmt.Errorf("marshal alert rules: %w", err)
	}
	return out, nil
}
