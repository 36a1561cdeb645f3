package cli

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// manifestDir holds the Kubernetes manifests of sharded runs.
const manifestDir = "../../deploy/kubernetes"

// decodeStrict decodes one YAML document into the Kubernetes type of its
// kind, refusing any field the type does not have.
func decodeStrict(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	var obj any
	switch tm.APIVersion + "/" + tm.Kind {
	case "batch/v1/Job":
		obj = &batchv1.Job{}
	case "v1/PersistentVolumeClaim":
		obj = &corev1.PersistentVolumeClaim{}
	case "v1/ConfigMap":
		obj = &corev1.ConfigMap{}
	default:
		return nil, fmt.Errorf("unexpected kind %s %s", tm.APIVersion, tm.Kind)
	}
	return obj, yaml.UnmarshalStrict(doc, obj)
}

// A misspelled field is an error, not a field silently dropped.
func TestDecodeStrictRefusesUnknownFields(t *testing.T) {
	t.Parallel()
	doc := []byte("apiVersion: batch/v1\nkind: Job\nmetadata: {name: x}\nspec:\n  completionsMode: Indexed\n")
	if _, err := decodeStrict(doc); err == nil || !strings.Contains(err.Error(), "completionsMode") {
		t.Errorf("decodeStrict(a Job with completionsMode) = %v, want an unknown-field error", err)
	}
}

// shardArg is "--shard=$(JOB_COMPLETION_INDEX)/N".
var shardArg = regexp.MustCompile(`^--shard=\$\(JOB_COMPLETION_INDEX\)/(\d+)$`)

// The manifests decode strictly into the Kubernetes API types; the shards
// Job is Indexed with completions = parallelism = the N of --shard; each
// shard's arguments, with its index and a start time in place, parse and
// validate with the stress binary's own flags; the merge Job merges
// exactly the folders 0..N-1 the shards write, on the same volume.
func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(manifestDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s (%v)", manifestDir, err)
	}
	jobs := map[string]*batchv1.Job{}
	var claims []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(b, []byte("\n---")) {
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			obj, err := decodeStrict(doc)
			if err != nil {
				t.Fatalf("%s, document %d: %v", filepath.Base(f), i, err)
			}
			switch o := obj.(type) {
			case *batchv1.Job:
				jobs[o.Name] = o
			case *corev1.PersistentVolumeClaim:
				claims = append(claims, o.Name)
			}
		}
	}
	shards, merge := jobs["veeksha-stress-shards"], jobs["veeksha-stress-merge"]
	if shards == nil || merge == nil || len(claims) != 1 {
		t.Fatalf("want the shards and merge Jobs and one claim; got jobs %v, claims %v", slices.Sorted(maps.Keys(jobs)), claims)
	}
	spec := shards.Spec
	if spec.CompletionMode == nil || *spec.CompletionMode != batchv1.IndexedCompletion {
		t.Errorf("shards Job completionMode = %v, want Indexed", spec.CompletionMode)
	}
	pod := spec.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever || spec.BackoffLimitPerIndex == nil || *spec.BackoffLimitPerIndex != 0 {
		t.Errorf("shards Job: restartPolicy %q, backoffLimitPerIndex %v; want Never and 0 (a rerun shard would miss its planned starts)", pod.RestartPolicy, spec.BackoffLimitPerIndex)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("shards Job: %d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	n := 0
	for _, a := range c.Args {
		if m := shardArg.FindStringSubmatch(a); m != nil {
			n, _ = strconv.Atoi(m[1])
		}
	}
	if n < 1 || spec.Completions == nil || spec.Parallelism == nil || int(*spec.Completions) != n || int(*spec.Parallelism) != n {
		t.Fatalf("shards Job: --shard .../%d, completions %s, parallelism %s: want all equal", n, deref(spec.Completions), deref(spec.Parallelism))
	}
	var startRef bool
	for _, e := range c.Env {
		startRef = startRef || (e.Name == "START_AT" && e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil)
	}
	if !slices.Contains(c.Args, "--start-at=$(START_AT)") || !startRef {
		t.Errorf("shards Job: every shard must take --start-at from the one START_AT (env from a ConfigMap); args %q", c.Args)
	}
	requireClaim(t, "shards", pod, claims[0])
	requireClaim(t, "merge", merge.Spec.Template.Spec, claims[0])

	// Each shard's arguments, as the kubelet expands them.
	var outputs []string
	for i := range n {
		args := expand(c.Args, map[string]string{"JOB_COMPLETION_INDEX": strconv.Itoa(i), "START_AT": "2026-12-01T18:00:00Z"})
		cmd := parseStress(t, args)
		sh, err := cmd.shard()
		if err != nil || sh == nil || sh.Index != i || sh.Count != n {
			t.Fatalf("shard %d: --shard parses to %+v (%v)", i, sh, err)
		}
		outputs = append(outputs, filepath.Join(cmd.OutputDir, "stress", "latest"))
	}
	mc := merge.Spec.Template.Spec.Containers
	if len(mc) != 1 {
		t.Fatalf("merge Job: %d containers, want 1", len(mc))
	}
	m := parseStress(t, mc[0].Args)
	if got := []string(m.Merge); !slices.Equal(got, outputs) {
		t.Errorf("merge Job merges %q, the shards write %q", got, outputs)
	}
}

// requireClaim fails unless pod mounts the claim at /results.
func requireClaim(t *testing.T, job string, pod corev1.PodSpec, claim string) {
	t.Helper()
	for _, v := range pod.Volumes {
		if v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != claim {
			continue
		}
		for _, c := range pod.Containers {
			for _, vm := range c.VolumeMounts {
				if vm.Name == v.Name && vm.MountPath == "/results" {
					return
				}
			}
		}
	}
	t.Errorf("%s Job does not mount the claim %s at /results", job, claim)
}

// expand replaces $(NAME) in args as the kubelet does.
func expand(args []string, env map[string]string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		for k, v := range env {
			a = strings.ReplaceAll(a, "$("+k+")", v)
		}
		out[i] = a
	}
	return out
}

// parseStress parses and validates args with the stress binary's flags.
func parseStress(t *testing.T, args []string) *StressCmd {
	t.Helper()
	cmd := &StressCmd{}
	var out bytes.Buffer
	p, err := newParser(cmd, Stress, &env{stdout: &out, stderr: &out})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse(args); err != nil {
		t.Fatalf("the stress binary refuses %q: %v", args, err)
	}
	if err := cmd.common().validateCommon(); err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	if err := cmd.validate(); err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	return cmd
}

func deref(p *int32) string {
	if p == nil {
		return "unset"
	}
	return strconv.Itoa(int(*p))
}
