// Command client is the in-cluster HTTP client of the cluster end-to-end test
// (hack/e2e/cluster): the API image is distroless, so nothing can be exec'd in
// it; this static binary, in an image of its own (hack/image binary), calls
// the API through its Service from a pod.
//
//	client check -url URL -token TOKEN
//	    /healthz, /v1/me, a new conversation and a streamed (SSE) answer;
//	    prints one JSON line, exits 1 on the first failure
//	client load -url URL [-max 10m]
//	    GET /healthz in a loop until `client stop` (or -max), then prints
//	    {"requests":N,"errors":M,"samples":[...]}; a request fails on a
//	    transport error or a non-200 answer
//	client stop
//	    tells a running `client load` in the same pod to finish
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// stopFile is how `client stop` (run with kubectl exec) reaches `client load`.
const stopFile = "/tmp/client-stop"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: client check|load|stop ...")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	url := fs.String("url", "", "base URL of the API (the Service)")
	token := fs.String("token", "", "BetterAuth JWT")
	maxDur := fs.Duration("max", 10*time.Minute, "load: upper bound")
	_ = fs.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "check":
		err = check(*url, *token)
	case "load":
		err = load(*url, *maxDur)
	case "stop":
		err = os.WriteFile(stopFile, nil, 0o600)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

var httpc = &http.Client{Timeout: 30 * time.Second}

func call(method, url, token, accept string, body any, want int) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read: %w", method, url, err)
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: status %d, want %d: %s", method, url, resp.StatusCode, want, b)
	}
	return b, nil
}

// Result is what `client check` prints.
type Result struct {
	MeID           string   `json:"me_id"`
	ConversationID string   `json:"conversation_id"`
	Events         []string `json:"events"`
	Answer         string   `json:"answer"`
}

func check(url, token string) error {
	// Endpoints reach kube-proxy about a second after a pod turns Ready: a
	// short bounded retry for the first request only.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		_, err := call("GET", url+"/healthz", "", "", nil, http.StatusOK)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return err
		}
	}
	var r Result
	b, err := call("GET", url+"/v1/me", token, "", nil, http.StatusOK)
	if err != nil {
		return err
	}
	var me struct{ ID string }
	if err := json.Unmarshal(b, &me); err != nil || me.ID == "" {
		return fmt.Errorf("/v1/me: no id in %s", b)
	}
	r.MeID = me.ID
	b, err = call("POST", url+"/v1/conversations", token, "", map[string]string{"title": "cluster e2e"}, http.StatusCreated)
	if err != nil {
		return err
	}
	var conv struct{ ID string }
	if err := json.Unmarshal(b, &conv); err != nil || conv.ID == "" {
		return fmt.Errorf("create conversation: no id in %s", b)
	}
	r.ConversationID = conv.ID
	b, err = call("POST", url+"/v1/conversations/"+conv.ID+"/messages", token, "text/event-stream",
		map[string]string{"content": "How do I install the operator?"}, http.StatusOK)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
			r.Events = append(r.Events, event)
		case strings.HasPrefix(line, "data: ") && event == "delta":
			var d struct{ Text string }
			_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &d)
			r.Answer += d.Text
		}
	}
	if len(r.Events) == 0 || r.Events[len(r.Events)-1] != "done" {
		return fmt.Errorf("stream did not end with a done event: %s", b)
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

func load(url string, maxDur time.Duration) error {
	_ = os.Remove(stopFile)
	c := &http.Client{Timeout: 5 * time.Second}
	var n, failed int
	var samples []string
	deadline := time.Now().Add(maxDur)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(stopFile); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		n++
		resp, err := c.Get(url + "/healthz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		if err != nil {
			failed++
			if len(samples) < 10 {
				samples = append(samples, time.Now().UTC().Format(time.RFC3339Nano)+" "+err.Error())
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"requests": n, "errors": failed, "samples": samples})
}
