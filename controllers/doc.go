// Package controllers reconciles ChatBackends into the objects that run the
// chat API: an env Secret, a migrations Job per image, a Deployment, a
// PodDisruptionBudget, the API Service, an in-cluster metrics Service, an
// optional NetworkPolicy, with spec.ingest an ingest CronJob and Jobs and,
// when prometheus-operator is installed, a ServiceMonitor and a
// PrometheusRule. The objects themselves are built by
// the pure functions of package specs; this package decides when each is
// written and what the status says.
//
// # The reconcile algorithm
//
// Reconcile (chatbackend_controller.go) reads the ChatBackend. When it is
// paused (annotation chat.chatbackend.io/reconcile=disabled,
// chatbackend_pause.go) only its Paused condition is written. Otherwise it
// makes a scope (chatbackend_scope.go) and runs a fixed list of phases over
// it: 1 to 3 in order, 4 and 5 (which need nothing the others record) at
// the same time as them:
//
//  1. reconcileEnvSecret (chatbackend_envsecret.go) copies the referenced
//     Secret keys into `<name>-env-<hash>` under the variable names
//     chat-apiserver reads, and fingerprints the database they point at
//     (host, port, database, user; not the password). It also lists the
//     spec.env entries the operator overrides (status.ignoredEnv, with a
//     Warning Event). A missing Secret or key is recorded in the scope (it
//     is the user's to fix, not an error to retry with backoff) and polled
//     slowly, besides the Secret watch. While no referenced Secret changed
//     (their resourceVersions in the metadata cache), it reads and applies
//     nothing (chatbackend_secretinputs.go).
//  2. reconcileMigration (chatbackend_migration.go) runs `chat-apiserver
//     migrate` with the spec's image on the fingerprinted database, in a
//     Job named after both, one Job at a time, and advances
//     status.migratedImage and status.migratedDatabase when it succeeds. A
//     failed Job is retried after a spec or Secret change, a new value of
//     the retry-migration annotation, or a backoff (1 min doubling to 1 h,
//     migration_retry.go; status.migration counts the attempts). While it
//     runs, its pods are looked at (polled, not watched, and only while
//     the Job counts an active pod): one that cannot
//     start makes the migration stuck (Degraded), and a superseded Job none
//     of whose containers ever started is deleted rather than waited for.
//     Jobs have a deadline (spec.migration.activeDeadlineSeconds). A
//     spec image with a lower semantic version than the migrated one is
//     refused (chatbackend_downgrade.go: no Job, Degraded
//     DowngradeRefused) unless annotation chat.chatbackend.io/allow-downgrade
//     names it. When the operator's default image changes (an upgrade),
//     the ChatBackends following it start their migrations one per
//     --rollout-delay (chatbackend_fleetrollout.go: Migrated=False
//     RolloutDelayed while waiting, requeued for their reserved time).
//  3. reconcileDeployment runs status.migratedImage, never simply
//     spec.image: new code must not serve an old schema; and it uses the
//     current env Secret only once that Secret's database is the migrated
//     one: pods must not start on an unmigrated database. Before the first
//     migration there is no Deployment; while a Secret is missing or a new
//     database is migrated the existing one is left as it is. Its replicas
//     are spec.replicas, the ChatBackend's scale subresource (what an HPA
//     or kubectl scale writes). A rollout past its progress deadline has its
//     new pods read for what they wait on (chatbackend_rollout.go).
//     reconcileIngest (chatbackend_ingest.go), with spec.ingest, applies
//     the CronJob `<name>-ingest` running `chat-apiserver ingest` on the
//     schedule, and creates a Job at once for each new pair of sources and
//     image (specs.IngestJobName): both with the Deployment's image and env
//     Secret and under the same gate, so nothing indexes with code newer
//     than the schema. INGEST_SOURCES carries the sources (the contract of
//     apiserver/rag/ingest/source); each git source's Secret is mounted at
//     its authDir. The latest finished run's pod termination message (the
//     run's JSON summary, or its last log lines) becomes status.ingest,
//     read once per run, which is also when a failed run's Event is
//     recorded.
//     collectEnvSecrets then deletes the env Secrets nothing reads any
//     more (no Deployment pod nor running ingest Job), once the Deployment
//     has rolled out.
//  4. reconcilePodDisruptionBudget, reconcileService for the API
//     Service and the metrics Service, and reconcileNetworkPolicy
//     (chatbackend_networkpolicy.go) for the optional NetworkPolicy of
//     spec.networkPolicy.
//  5. reconcileMonitoring (chatbackend_monitoring.go) applies the
//     ServiceMonitor and PrometheusRule once their CRDs are discovered, and
//     starts watching those kinds then (they cannot be watched before).
//     While they are missing, one poller for the whole operator looks for
//     them and reconciles every ChatBackend when they appear; no
//     ChatBackend is requeued for that.
//
// Each phase checks its own preconditions in the scope and records what it
// saw there; a failing phase does not stop the later ones. Every write is a
// server-side apply by the field owner FieldOwner (apply.go), which also
// reverts hand edits of the fields the operator owns (an apply is left out
// only when neither the intent nor the child changed since the operator's
// last apply of it, appliedRecords), and only ever of
// objects this ChatBackend controls: an object of a child's name that it
// does not control is left alone and reported as ResourceConflict
// (chatbackend_ownership.go).
//
// Whatever happened, the status is then computed from the scope alone
// (chatbackend_status.go) and patched (the next reconcile starts from the
// patch's answer while the cache is older, chatbackend_statuswrites.go):
// Ready, Progressing, Migrated,
// Available, Degraded, MonitoringReady and, with spec.ingest, Indexed,
// with every reason a constant of api/v1alpha1. The operator's own
// metrics chatbackend_desired_replicas, chatbackend_condition and the
// ingest gauges (metrics.go) are updated from the same scope and status.
// Ready means the desired
// state is realised (kstatus, `kubectl rollout status`): while a new
// version is migrated or rolled out it is False (Migrating, RollingOut)
// and Available, True while the previous version serves, is what says the
// API is up.
//
// Reconcile returns either an error (controller-runtime then retries with
// backoff) or the soonest requeue a phase asked for, never both.
package controllers
