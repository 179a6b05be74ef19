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
)

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

// EnvSecretRef binds a referenced Secret key to the environment variable the
// API reads it as.
type EnvSecretRef struct {
	// EnvName is the variable, e.g. DATABASE_URL.
	EnvName string
	// Field is the spec path of the reference, for messages.
	Field string
	Ref   SecretKeyRef
}

// EnvSecretRefs lists every Secret key the spec references, in a stable order.
func (s *ChatBackendSpec) EnvSecretRefs() []EnvSecretRef {
	refs := []EnvSecretRef{{EnvName: "DATABASE_URL", Field: "spec.database.urlSecretRef", Ref: s.Database.URLSecretRef}}
	if r := s.Database.DirectURLSecretRef; r != nil {
		refs = append(refs, EnvSecretRef{EnvName: "DATABASE_DIRECT_URL", Field: "spec.database.directURLSecretRef", Ref: *r})
	}
	if s.OpenAI != nil && s.OpenAI.APIKeySecretRef != nil {
		refs = append(refs, EnvSecretRef{EnvName: "OPENAI_API_KEY", Field: "spec.openai.apiKeySecretRef", Ref: *s.OpenAI.APIKeySecretRef})
	}
	if s.Qdrant != nil && s.Qdrant.APIKeySecretRef != nil {
		refs = append(refs, EnvSecretRef{EnvName: "QDRANT_API_KEY", Field: "spec.qdrant.apiKeySecretRef", Ref: *s.Qdrant.APIKeySecretRef})
	}
	return refs
}
