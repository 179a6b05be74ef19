package controllers

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestIngestInterval: the staleness of the index is measured in the
// longest gap of the schedule, so a weekday schedule's weekend does not
// alert and a monthly one allows months.
func TestIngestInterval(t *testing.T) {
	g := NewWithT(t)
	// A Wednesday, so the walk crosses a weekend.
	now := time.Date(2026, 12, 2, 10, 30, 0, 0, time.UTC)
	for schedule, want := range map[string]time.Duration{
		"@hourly":      time.Hour,
		"0 * * * *":    time.Hour,
		"*/15 * * * *": 15 * time.Minute,
		"@daily":       24 * time.Hour,
		"0 9 * * 1-5":  72 * time.Hour, // Friday 9:00 to Monday 9:00
		"0 0 1 * *":    31 * 24 * time.Hour,
	} {
		got, err := ingestInterval(schedule, now)
		g.Expect(err).NotTo(HaveOccurred(), schedule)
		g.Expect(got).To(Equal(want), schedule)
	}
	_, err := ingestInterval("61 * * * *", now)
	g.Expect(err).To(HaveOccurred(), "minute 61 passes the CRD's pattern, not the parser")
}

// TestIngestResult: the summary is found after log lines, its counts and
// message reach the status, and a run that died without one is explained
// by its last log lines.
func TestIngestResult(t *testing.T) {
	g := NewWithT(t)
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "chat-ingest-1"}}
	res, msg := ingestResult(job, true, "cloning...\n"+`{"pages":3,"chunks":9,"added":2,"updated":1,"removed":0,"errors":0,"message":"ok"}`)
	g.Expect(*res.Pages).To(Equal(int32(3)))
	g.Expect(*res.Chunks).To(Equal(int32(9)))
	g.Expect(*res.ChunksAdded).To(Equal(int32(2)))
	g.Expect(*res.ChunksUpdated).To(Equal(int32(1)))
	g.Expect(*res.ChunksRemoved).To(Equal(int32(0)))
	g.Expect(*res.Succeeded).To(BeTrue())
	g.Expect(msg).To(Equal("Job chat-ingest-1 indexed 3 pages (2 chunks added, 1 updated, 0 removed, 0 pages failed); 9 chunks in the index: ok"))

	job.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: "True", Reason: "BackoffLimitExceeded",
		Message: "Job has reached the specified backoff limit"}}
	res, msg = ingestResult(job, false, "level=ERROR msg=\"open database: connection refused\"\n")
	g.Expect(res.Pages).To(BeNil(), "no summary: the counts are unknown, not 0")
	g.Expect(*res.Succeeded).To(BeFalse())
	g.Expect(msg).To(ContainSubstring("Job has reached the specified backoff limit: level=ERROR msg=\"open database: connection refused\""))
	g.Expect(msg).To(ContainSubstring("kubectl logs job/chat-ingest-1"))
}
