package v1alpha1

// Defaults of optional fields live here, next to the types, so that the
// reconciler and the builders read one answer. The CRD defaults replicas
// itself; nested optional structs cannot be defaulted reliably by the API
// server (a default below an absent parent is never applied), so they are
// resolved in code.

const (
	// DefaultReplicas of the API Deployment.
	DefaultReplicas int32 = 2
	// DefaultServicePort is the Service's HTTP port.
	DefaultServicePort int32 = 80
	// DefaultMigrationActiveDeadlineSeconds bounds a migrations Job: ten
	// minutes is far more than the schema's migrations take, and short
	// enough that a stuck Job does not hold an upgrade for long.
	DefaultMigrationActiveDeadlineSeconds int64 = 600
)

// ActiveDeadlineSecondsOrDefault returns migration.activeDeadlineSeconds,
// or DefaultMigrationActiveDeadlineSeconds when unset.
func (m MigrationSpec) ActiveDeadlineSecondsOrDefault() int64 {
	if m.ActiveDeadlineSeconds == 0 {
		return DefaultMigrationActiveDeadlineSeconds
	}
	return m.ActiveDeadlineSeconds
}

// ScheduleOrDefault returns ingest.schedule, or DefaultIngestSchedule.
func (i *IngestSpec) ScheduleOrDefault() string {
	if i.Schedule == "" {
		return DefaultIngestSchedule
	}
	return i.Schedule
}

// IsSuspended reports whether ingest.suspend is true.
func (i *IngestSpec) IsSuspended() bool { return i.Suspend != nil && *i.Suspend }

// ReplicasOrDefault returns spec.replicas, or DefaultReplicas when unset.
func (s *ChatBackendSpec) ReplicasOrDefault() int32 {
	if s.Replicas == nil {
		return DefaultReplicas
	}
	return *s.Replicas
}

// ServicePortOrDefault returns spec.service.port, or DefaultServicePort.
func (s *ChatBackendSpec) ServicePortOrDefault() int32 {
	if s.Service.Port == 0 {
		return DefaultServicePort
	}
	return s.Service.Port
}

// IsEnabled reports whether a ServiceMonitor is wanted (true when unset).
func (s ServiceMonitorSpec) IsEnabled() bool { return s.Enabled == nil || *s.Enabled }

// IsEnabled reports whether a PrometheusRule is wanted (true when unset).
func (s PrometheusRuleSpec) IsEnabled() bool { return s.Enabled == nil || *s.Enabled }

// The environment variables the spec becomes (plain values and Secret keys)
// are the operator's business, not the API's: they live in controllers/specs
// (Env, EnvSecretRefs), next to the apiserver/envvar names they use, so this
// package stays a plain description of the resource.
