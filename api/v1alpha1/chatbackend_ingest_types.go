package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// ConditionIndexed is True once an ingest run of spec.ingest succeeded and
// left chunks in the index; False (with a reason below) before the first
// run, when the last run failed, or when the index is empty. It is absent
// without spec.ingest: the index is then filled by hand (`chat-apiserver
// ingest --docs`), which the operator does not see. The API's readiness
// does not depend on it: an empty index answers "no documents indexed yet".
const ConditionIndexed = "Indexed"

// Reasons of the Indexed condition, and of the Events of ingest runs.
const (
	// ReasonIngestSucceeded: the last run succeeded (Indexed=True).
	ReasonIngestSucceeded = "IngestSucceeded"
	// ReasonIngestPending: no run finished yet; the first runs once the
	// image is migrated (or is running).
	ReasonIngestPending = "IngestPending"
	// ReasonIngestFailed: the last run failed; the message has its error.
	// A Warning Event of this reason is recorded once per failed run.
	ReasonIngestFailed = "IngestFailed"
	// ReasonIndexEmpty: the last run succeeded but the index holds no
	// chunk (a wrong path, a site whose pages all failed or were empty).
	ReasonIndexEmpty = "IndexEmpty"
	// ReasonInvalidSchedule: spec.ingest.schedule passes the CRD's pattern
	// but is no valid cron schedule (a minute of 61, say); no CronJob is
	// written until it is fixed.
	ReasonInvalidSchedule = "InvalidSchedule"
)

// DefaultIngestSchedule runs ingestion every hour.
const DefaultIngestSchedule = "@hourly"

// IngestSpec keeps the index in sync with where the docs live: the operator
// runs `chat-apiserver ingest` in a CronJob `<name>-ingest` on schedule, and
// in a Job right away when the ChatBackend is created and whenever its
// sources (or the migrated image) change. Runs start only once the image is
// migrated, with the API's image, env Secret and pod settings.
type IngestSpec struct {
	// schedule of the runs, in cron format ("0 * * * *") or a macro
	// (@hourly, @daily, @weekly, @monthly, @yearly); @hourly when unset.
	// Times are in the time zone of kube-controller-manager (usually UTC).
	// The ChatBackendIndexStale alert fires when no run succeeded for
	// three intervals of it.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|[0-9*/,?A-Za-z-]+( +[0-9*/,?A-Za-z-]+){4})$')",message="schedule must be a cron expression of five fields such as '0 * * * *', or one of @hourly, @daily, @weekly, @monthly, @yearly"
	Schedule string `json:"schedule,omitempty"`
	// suspend stops new runs, scheduled or on a change, until it is false
	// again; a running one finishes. False when unset.
	// +optional
	Suspend *bool `json:"suspend,omitempty"`
	// sources are where the docs live, each a git repository or a
	// published site. A source's name keys its chunks in the index: a
	// source removed from the list has its chunks removed by the next
	// run, and renaming a source re-indexes it.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Sources []IngestSource `json:"sources,omitempty"`
}

// IngestSource is one place docs are read from.
// +kubebuilder:validation:XValidation:rule="has(self.git) != has(self.site)",message="each source sets exactly one of git and site"
type IngestSource struct {
	// name of the source, unique in the list. It keys the source's chunks
	// in the index and names its credentials volume.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=48
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="source name must be lowercase letters, digits and '-', starting and ending with a letter or digit"
	Name string `json:"name,omitempty"`
	// git reads the docs from a folder of a git repository, cloned
	// shallowly by chat-apiserver into a size-limited emptyDir.
	// +optional
	Git *GitSource `json:"git,omitempty,omitzero"`
	// site crawls a published docs site (any generator: Docusaurus,
	// MkDocs, Sphinx, Hugo...), politely: robots.txt, a page cap, same host
	// only.
	// +optional
	Site *SiteSource `json:"site,omitempty,omitzero"`
}

// GitSource is a docs folder in a git repository.
type GitSource struct {
	// url of the repository: https://..., ssh://... or scp-like
	// git@host:path.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.matches('^(https?://|ssh://)[^ ]+$') || self.matches('^[-._a-zA-Z0-9]+@[-._a-zA-Z0-9]+:[^ ]+$')",message="git.url must be an http(s):// or ssh:// URL or scp-like user@host:path"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^https?://[^/?#]*@')",message="git.url must not contain credentials (user:password@): put them in a Secret and reference it with git.secretRef"
	URL string `json:"url,omitempty"`
	// ref is a branch, tag or full commit hash; the remote's default
	// branch when unset.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	Ref string `json:"ref,omitempty"`
	// path is the docs root inside the repository (docs, website/docs);
	// the repository's root when unset.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/') && !self.split('/').exists(p, p == '..')",message="git.path must be relative to the repository's root, without '..'"
	Path string `json:"path,omitempty"`
	// siteURL is the public URL of the published site, with its base path
	// (https://docs.example.com/product/): citations link there.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHost() != ''",message="git.siteURL must be an absolute http(s) URL"
	SiteURL string `json:"siteURL,omitempty"`
	// routeBase is the docs' route under siteURL (Docusaurus'
	// routeBasePath, "docs" by default there); none when unset.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	RouteBase string `json:"routeBase,omitempty"`
	// secretRef names a Secret with the credentials of a private
	// repository, with Flux's GitRepository key names: username and
	// password (or bearerToken) for HTTPS, identity (a private key) and
	// known_hosts for SSH. It is mounted read-only into the ingest pods
	// only.
	// +optional
	SecretRef *LocalSecretRef `json:"secretRef,omitempty,omitzero"`
}

// SiteSource is a published docs site.
type SiteSource struct {
	// url is the site's base URL or its sitemap.xml.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHost() != ''",message="site.url must be an absolute http(s) URL"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[a-zA-Z][-+.a-zA-Z0-9]*://[^/?#]*@')",message="site.url must not contain credentials (user:password@)"
	URL string `json:"url,omitempty"`
	// maxPages caps the pages fetched in one run; the crawler's default
	// when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	MaxPages int32 `json:"maxPages,omitempty"`
}

// IngestStatus is what the ingest runs did.
type IngestStatus struct {
	// lastScheduleTime is when the latest run was started, by the
	// schedule or by a change of the sources.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`
	// lastSuccessTime is when a run last succeeded.
	// +optional
	LastSuccessTime *metav1.Time `json:"lastSuccessTime,omitempty"`
	// lastResult is the summary of the latest finished run.
	// +optional
	LastResult *IngestResult `json:"lastResult,omitempty,omitzero"`
	// message says what the latest finished run did or why it failed.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	Message string `json:"message,omitempty"`
}

// IngestResult is the summary an ingest run writes as its container's
// termination message. The counts are pointers because 0 is a value they
// report (nothing changed), not the same as unknown (the run failed
// before it could count).
type IngestResult struct {
	// job is the Job of the run.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Job string `json:"job,omitempty"`
	// succeeded says whether the run's Job completed (or failed).
	// +required
	Succeeded *bool `json:"succeeded,omitempty"`
	// pages read from the sources.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Pages *int32 `json:"pages,omitempty"`
	// chunks in the index after the run.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Chunks *int32 `json:"chunks,omitempty"`
	// chunksAdded by the run.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ChunksAdded *int32 `json:"chunksAdded,omitempty"`
	// chunksUpdated by the run.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ChunksUpdated *int32 `json:"chunksUpdated,omitempty"`
	// chunksRemoved by the run.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ChunksRemoved *int32 `json:"chunksRemoved,omitempty"`
	// errors are the pages that could not be read or indexed; they do not
	// fail the run.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Errors *int32 `json:"errors,omitempty"`
}
