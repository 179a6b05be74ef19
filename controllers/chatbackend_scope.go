package controllers

import (
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// scope carries what one reconcile learnt from one phase to the next and to
// the status computation (chatbackend_status.go), which reads nothing else.
type scope struct {
	cb *chatv1alpha1.ChatBackend
	// image is the image the spec asks for (spec.image or the default).
	image string

	// envHash is set once the env Secret is in place; empty while a
	// referenced Secret or key is missing (secretProblem says which).
	envHash       string
	secretProblem *condition
	// mountHash is the hash of the Secrets mounted as files
	// (specs.AnnotationMountedSecretsHash), set with envHash; empty when
	// the spec mounts none.
	mountHash string
	// database is the fingerprint of the database the env Secret points at
	// (specs.DatabaseFingerprint), set with envHash.
	database string
	// ignoredEnv names the spec.env entries the operator sets itself
	// (specs.IgnoredEnv), for status.ignoredEnv.
	ignoredEnv []string

	migration migrationState
	// migrationMessage details the migration state for the conditions.
	migrationMessage string

	// conflict is set when a child could not be written because an object
	// of its name belongs to someone else (chatbackend_ownership.go).
	conflict *condition

	deployment *appsv1.Deployment
	// rolloutWaiting is what a new pod waits on when the rollout is stuck
	// (chatbackend_rollout.go).
	rolloutWaiting string
	serviceURL     string

	monitoring condition

	// ingest is what the ingest phase saw (chatbackend_ingest.go).
	ingest ingestState
}

// condition is a status and its reason and message, before it becomes a
// metav1.Condition.
type condition struct {
	status  metav1.ConditionStatus
	reason  string
	message string
}

type migrationState int

const (
	migrationBlocked migrationState = iota // the env Secret is not ready
	migrationRunning
	migrationSucceeded
	migrationFailed
	// migrationStuck: a pod of the current Job cannot start.
	migrationStuck
	// migrationRefused: the spec's image is a downgrade from the migrated
	// one and no Job runs (chatbackend_downgrade.go).
	migrationRefused
	// migrationDelayed: a new default image waits for its fleet rollout
	// slot (chatbackend_fleetrollout.go).
	migrationDelayed
)
