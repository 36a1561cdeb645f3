package report

import (
	"fmt"
	"strings"

	"github.com/veeksha-go/veeksha/pkg/metrics"
)

// P99SearchLimit bounds the search for the number of samples a P99 needs.
const P99SearchLimit = 5000

// ThinP99Note is the table note naming the points (labels) whose P99 the
// samples cannot bound: its 95 % interval reaches the maximum. Empty when
// there are none.
func ThinP99Note(labels []string) string {
	if len(labels) == 0 {
		return ""
	}
	return fmt.Sprintf("P99 at %s: too few samples to bound it (95%% interval reaches the maximum; needs >= %d): read it as a maximum; intervals in ci95 in the JSON",
		strings.Join(labels, ", "), metrics.SamplesFor(99, P99SearchLimit))
}
