package cli

import (
	"strings"
	"testing"
)

// Bad uses of --shard, --start-at and --merge: exit 2 and one line
// naming what is wrong, before any server is contacted.
func TestShardFlagsRefused(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	at := "--start-at=2026-12-01T18:00:00Z"
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"shard without start":   {[]string{"--shard", "0/2"}, "--shard needs --start-at"},
		"start without shard":   {[]string{at}, "--start-at goes with --shard"},
		"bad shard":             {[]string{"--shard", "2/2", at}, "--shard \"2/2\": want 0 <= I < N"},
		"bad start":             {[]string{"--shard", "0/2", "--start-at", "tomorrow"}, "--start-at \"tomorrow\": want an RFC 3339 instant"},
		"auto mode":             {[]string{"--shard", "0/2", at, "--stress-mode", "auto"}, "auto mode needs every level's result to choose the next level"},
		"resume":                {[]string{"--shard", "0/2", at, "--resume-dir", out}, "--resume-dir does not go with --shard"},
		"merge with shard":      {[]string{"--merge", out, "--shard", "0/2", at}, "--shard does not go with it"},
		"merge of a non-run":    {[]string{"--merge", out}, "--merge: " + out + ": not a finished stress run"},
		"merge of missing path": {[]string{"--merge", out + "/nope"}, "--merge: run folder"},
	} {
		code, stdout, stderr := runCLI(t, t.Context(), Stress, append([]string{"--api-base", "http://127.0.0.1:1/v1", "--output-dir", out}, tc.args...)...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%s: exit %d, stderr %q (stdout %q); want exit 2 and one line with %q", name, code, stderr, stdout, tc.want)
		}
	}
}
