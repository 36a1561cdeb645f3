package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// softwareTimeout bounds each version request of Software: a server that
// does not answer one quickly is not the software it asks about.
const softwareTimeout = 2 * time.Second

// Software names the server software behind the Client when the server
// says so: "ollama <version>" when it answers <root>/api/version, "vllm
// <version>" when it answers <root>/version (root as in Root). It is empty
// when unknown. The requests carry no API key and their failures are not
// errors.
func (c *Client) Software(ctx context.Context) string {
	hc := &http.Client{Transport: c.tr}
	for _, probe := range []struct{ path, name string }{{"/api/version", "ollama"}, {"/version", "vllm"}} {
		v, reached := c.version(ctx, hc, c.Root()+probe.path)
		if v != "" {
			return probe.name + " " + v
		}
		if !reached {
			return ""
		}
	}
	return ""
}

// version GETs url and returns the "version" field of its JSON answer;
// reached is false when no answer came.
func (c *Client) version(ctx context.Context, hc *http.Client, url string) (v string, reached bool) {
	ctx, cancel := context.WithTimeout(ctx, softwareTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", false
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := hc.Do(req)
	if err != nil {
		return "", false
	}
	defer drain(resp.Body, 4096)
	var out struct {
		Version string `json:"version"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&out) != nil {
		return "", true
	}
	return out.Version, true
}
