#!/usr/bin/env bash
# End to end against a real inference server: Ollama v0.17.4, built from its
# Go module, serving the tiny Llama 3 model of the shared fixtures (random
# weights, the real Llama 3 tokenizer and a chat template) on loopback.
#
# It installs what is missing (reusing an existing Ollama build), starts
# `ollama serve` on a free loopback port with its own models folder, creates
# the model, runs the three benchmarks and checks their results, then
# compares our TTFC and TBT with the timings Ollama reports on its own
# clock (tools/ollamacheck). The server is always stopped on exit. Any
# failed check ends the script with a non-zero status and a FAIL line.
#
# Usage: scripts/ollama-e2e.sh   (or: make e2e-ollama)
#
# Environment:
#   VEEKSHA_TOOLS      install folder; Ollama goes to $VEEKSHA_TOOLS/bin
#                      (default $HOME/.cache/veeksha-tools)
#   VEEKSHA_FIXTURES   folder holding Modelfile and tiny-llama3.gguf
#                      (default <repository>/../shared/fixtures; read only is fine)
#   VEEKSHA_E2E_OUT    keep the benchmark outputs there (default: a temporary
#                      folder, removed on exit)
#
# Needs Go and, for what is missing, apt-get (run as root in CI): jq, curl,
# and to build Ollama g++, nlohmann-json3-dev and libstb-dev.
set -euo pipefail

readonly OLLAMA_VERSION=0.17.4
readonly MALGO_VERSION=v0.11.24 # its module carries miniaudio.h, left out of Ollama's module zip
readonly MODEL=tiny

t_start=$SECONDS
# The repository root; outside a git clone (an unpacked archive), the
# script's parent folder.
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel 2>/dev/null) || repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
tools=${VEEKSHA_TOOLS:-$HOME/.cache/veeksha-tools}
fixtures=${VEEKSHA_FIXTURES:-$repo/../shared/fixtures}
ollama=$tools/bin/ollama
work=$(mktemp -d "${TMPDIR:-/tmp}/veeksha-ollama-e2e.XXXXXX")
out=${VEEKSHA_E2E_OUT:-$work/out}
server_pid=
child=
export DEBIAN_FRONTEND=noninteractive

step() { printf '\n=== %s (%s, %d s in)\n' "$*" "$(date -u +%H:%M:%S)" "$((SECONDS - t_start))"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
ok() { printf 'ok: %s\n' "$*"; }

# stop_server ends `ollama serve` and its model runners. The server was
# started with setsid, so it leads its own process group and the runners
# it spawned are in it: the whole group gets SIGTERM, then SIGKILL.
stop_server() {
	[ -n "$server_pid" ] || return 0
	local pid=$server_pid
	server_pid=
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do
		kill -0 -- "-$pid" 2>/dev/null || break
		sleep 0.2
	done
	kill -KILL -- "-$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# run runs a long step in the background and waits for it: bash runs a
# trap only between foreground commands, so this lets INT or TERM stop the
# script at once; cleanup then stops the step.
run() {
	"$@" &
	child=$!
	local rc=0
	wait "$child" || rc=$?
	child=
	return "$rc"
}

cleanup() {
	local rc=$?
	if [ -n "$child" ]; then
		kill -TERM "$child" 2>/dev/null || true
		wait "$child" 2>/dev/null || true
	fi
	stop_server
	if [ "$rc" -ne 0 ] && [ -s "$work/ollama-serve.log" ]; then
		echo "--- last lines of the Ollama server log ($rc):"
		tail -n 25 "$work/ollama-serve.log"
	fi
	rm -rf "$work"
	printf '\n=== total time of scripts/ollama-e2e.sh: %d s (exit %d)\n' "$((SECONDS - t_start))" "$rc"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# apt_install installs the Debian packages among its arguments that are
# not installed yet.
apt_install() {
	local missing=() p
	for p in "$@"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	[ ${#missing[@]} -gt 0 ] || return 0
	command -v apt-get >/dev/null || fail "missing packages ${missing[*]} and no apt-get to install them"
	echo "installing ${missing[*]}"
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >/dev/null
}

# ollama_ok says whether $1 is an Ollama $OLLAMA_VERSION binary. Its own
# --version is asked first (with OLLAMA_HOST pointing nowhere, so that it
# does not report a server's version); a build made without the version
# ldflag says 0.0.0 there, and its embedded module version decides.
ollama_ok() {
	[ -x "$1" ] || return 1
	if OLLAMA_HOST=127.0.0.1:1 "$1" --version 2>&1 | grep -q "version is $OLLAMA_VERSION\$"; then
		echo "reusing $1 (ollama --version: $OLLAMA_VERSION)"
		return 0
	fi
	if go version -m "$1" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+github.com/ollama/ollama[[:space:]]+v${OLLAMA_VERSION}[[:space:]]"; then
		echo "reusing $1 (built from github.com/ollama/ollama v$OLLAMA_VERSION; --version says 0.0.0: built without the version ldflag)"
		return 0
	fi
	return 1
}

# build_ollama installs Ollama from the Go module proxy into $tools/bin.
# llama.cpp is compiled with cgo: minutes on 2 cores, then it is in the Go
# build cache, which the fixed include folder below keeps valid.
build_ollama() {
	local t0=$SECONDS scratch malgo inc
	apt_install g++ nlohmann-json3-dev libstb-dev
	scratch="$work/malgo"
	mkdir -p "$scratch"
	(cd "$scratch" && go mod init scratch >/dev/null 2>&1 &&
		GOFLAGS=-mod=mod go mod download -json "github.com/gen2brain/malgo@$MALGO_VERSION") >"$scratch/download.json" ||
		fail "go mod download github.com/gen2brain/malgo@$MALGO_VERSION"
	malgo=$(jq -r .Dir "$scratch/download.json")
	inc="$tools/include"
	mkdir -p "$inc/miniaudio" "$tools/bin"
	cp "$malgo/miniaudio.h" "$inc/miniaudio/"
	echo "building github.com/ollama/ollama@v$OLLAMA_VERSION into $tools/bin (llama.cpp with cgo: minutes with an empty Go build cache)"
	(cd "$scratch" && CGO_ENABLED=1 CGO_CPPFLAGS="-I$inc" GOBIN="$tools/bin" \
		go install -ldflags "-X github.com/ollama/ollama/version.Version=$OLLAMA_VERSION" \
		"github.com/ollama/ollama@v$OLLAMA_VERSION") || fail "go install github.com/ollama/ollama@v$OLLAMA_VERSION"
	ollama_ok "$ollama" >/dev/null || fail "$ollama was built but is not version $OLLAMA_VERSION"
	echo "Ollama build took $((SECONDS - t0)) s"
}

# free_port prints a loopback port nobody listens on.
free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % 30000))
		# bash's /dev/tcp connects only when something listens there.
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# start_server starts `ollama serve` on a free port and waits until
# GET /api/version answers. A port taken between the check and the bind
# makes serve exit: then another port is tried.
start_server() {
	local port t0 deadline
	for _ in 1 2 3 4 5; do
		port=$(free_port) || fail "no free loopback port found"
		export OLLAMA_HOST=127.0.0.1:$port
		setsid "$ollama" serve >"$work/ollama-serve.log" 2>&1 &
		server_pid=$!
		t0=$SECONDS
		deadline=$((t0 + 60))
		while kill -0 "$server_pid" 2>/dev/null; do
			if curl -fsS --max-time 2 "http://$OLLAMA_HOST/api/version" >/dev/null 2>&1; then
				echo "ollama serve (pid $server_pid) answers at http://$OLLAMA_HOST after $((SECONDS - t0)) s"
				return 0
			fi
			[ "$SECONDS" -lt "$deadline" ] || fail "ollama serve did not answer GET http://$OLLAMA_HOST/api/version within 60 s"
			sleep 0.2
		done
		wait "$server_pid" 2>/dev/null || true
		server_pid=
		echo "ollama serve exited at start on port $port:"
		tail -n 5 "$work/ollama-serve.log"
	done
	fail "ollama serve did not start (5 attempts)"
}

# jqe evaluates a jq expression that must be true, or fails with $1.
jqe() {
	local msg=$1
	shift
	jq -e "$@" >/dev/null || fail "$msg"
}

step "install what is missing"
command -v go >/dev/null || fail "go is not installed"
apt_install jq curl
if [ ! -f "$fixtures/Modelfile" ] || [ ! -f "$fixtures/tiny-llama3.gguf" ]; then
	fail "fixtures not found in $fixtures (set VEEKSHA_FIXTURES to the folder holding Modelfile and tiny-llama3.gguf)"
fi
if ! ollama_ok "$ollama"; then
	build_ollama
fi
mkdir -p "$work/bin"
for c in prefill decode stress; do
	CGO_ENABLED=0 go build -o "$work/bin/veeksha.microbench.$c" "./cmd/veeksha.microbench.$c" ||
		fail "go build ./cmd/veeksha.microbench.$c"
done
CGO_ENABLED=0 go build -o "$work/bin/ollamacheck" ./tools/ollamacheck || fail "go build ./tools/ollamacheck"
ok "benchmarks and tools/ollamacheck built"

step "start Ollama and create the model"
export OLLAMA_MODELS=$work/models OLLAMA_NUM_PARALLEL=4 OLLAMA_KEEP_ALIVE=1h
mkdir -p "$OLLAMA_MODELS"
start_server
"$ollama" create "$MODEL" -f "$fixtures/Modelfile" >"$work/create.log" 2>&1 ||
	{ cat "$work/create.log"; fail "ollama create $MODEL -f $fixtures/Modelfile"; }
api=http://$OLLAMA_HOST/v1
served=$(curl -fsS "$api/models" | jq -r '.data[0].id')
if [ -z "$served" ] || [ "$served" = null ]; then
	fail "GET $api/models lists no model"
fi
ok "model $served created from $fixtures (served at $api)"
t0=$SECONDS
curl -fsS --max-time 300 "$api/chat/completions" \
	-d "{\"model\":\"$served\",\"messages\":[{\"role\":\"user\",\"content\":\"warm up\"}],\"max_tokens\":4}" >/dev/null ||
	fail "warm-up request to $api/chat/completions"
ok "model loaded and warm ($((SECONDS - t0)) s)"

# bench runs one benchmark binary with the common flags; the model name is
# left to the binary, which takes the first of GET /v1/models.
bench() {
	local name=$1
	shift
	step "$name benchmark"
	local rc=0
	run "$work/bin/veeksha.microbench.$name" --api-base "$api" --output-dir "$out" --no-progress "$@" || rc=$?
	[ "$rc" -eq 0 ] || fail "$name exited with status $rc (0 ok, 1 run failed, 2 usage, 3 validation failed)"
	run="$out/$name/latest"
	[ -d "$run" ] || fail "$name wrote no run folder at $run"
	jqe "$name: validation.json has a FAIL" '[.checks[] | select(.status == "FAIL")] | length == 0' "$run/validation.json"
}

# --output-tokens 4, not the default 1: Ollama holds back a token whose text
# ends inside a UTF-8 character until the next one completes it, and drops
# what is still incomplete when the request ends. About 1 in 100 one-token
# answers from this model streams no text at all, which the benchmark
# records as a failed request (no_content).
# --samples-per-length 5 and --warmup-requests 3: the first requests after
# the model loads can take several times longer (a CI run saw a 64-token
# median of 792 ms over 3 samples against 192 ms in the next run), and the
# check below wants the medians to rise with length.
bench prefill --input-lengths 64 256 1024 --samples-per-length 5 --warmup-requests 3 --output-tokens 4
for f in prefill_results.json prefill_results.csv requests.jsonl validation.json index.html \
	plots/ttfc_vs_input_length.png; do
	[ -s "$run/$f" ] || fail "prefill: $f missing or empty in $run"
done
grep -q 'ttfc_vs_input_length' "$run/index.html" || fail "prefill: index.html does not hold the ttfc_vs_input_length chart"
ok "prefill: all output files written, the interactive chart in index.html"
jqe "prefill: want 15 measured requests (3 lengths x 5 samples)" -s '[.[] | select(.warmup | not)] | length == 15' "$run/requests.jsonl"
bad=$(jq -s -c '[.[] | select(.prompt_tokens != .target_prompt_tokens) | {seq, target_prompt_tokens, prompt_tokens}]' "$run/requests.jsonl")
[ "$bad" = "[]" ] || fail "prefill: server-reported prompt_tokens differ from the target: $bad"
ok "prefill: every request's server-reported prompt_tokens equals its target ($(jq -s -c '[.[].prompt_tokens] | unique' "$run/requests.jsonl"))"
medians=$(jq -c '[.results | sort_by(.input_length)[] | {input_length, ttfc_p50_ms: (.ttfc.median * 1000 | round)}]' "$run/prefill_results.json")
# shellcheck disable=SC2016 # $m is jq's variable
jqe "prefill: TTFC median does not rise with input length: $medians" \
	'[.results | sort_by(.input_length)[].ttfc.median] as $m | ($m | length) == 3 and all(range(1; $m | length); $m[.] > $m[. - 1])' \
	"$run/prefill_results.json"
ok "prefill: TTFC median rises with input length $medians"

# Ollama's num_batch (the tokens of one forward pass) is 512 by default.
# --samples-per-length 30, not 10: the decode benchmark launches request k+1
# when request k's response headers arrive, and Ollama sends its headers only
# with the first token, after ~90 ms of per-request set-up (load_duration)
# and the prefill. Earlier requests decode ~8 tokens per launch instead of
# the 1 the output-length formula allows for, so with 10 the batch-4 window
# was 0.13 s (3 samples per request) and could vanish.
bench decode --batch-sizes 1 2 4 --input-lengths 128 --samples-per-length 30 --engine-chunk-size 512
jqe "decode: want 3 rows, each with peak_concurrency == batch_size: $(jq -c '[.results[] | {batch_size, peak_concurrency}]' "$run/decode_results.json")" \
	'(.results | length) == 3 and all(.results[]; .peak_concurrency == .batch_size)' "$run/decode_results.json"
jqe "decode: a row has no TBT samples" 'all(.results[]; .tbt.count > 0 and .tbt.median > 0)' "$run/decode_results.json"
for f in decode_results.json decode_results.csv validation.json plots/tbt_p50_vs_batch_size.png plots/tbt_p99_vs_batch_size.png \
	bs=1_il=128/requests.jsonl bs=2_il=128/requests.jsonl bs=4_il=128/requests.jsonl; do
	[ -s "$run/$f" ] || fail "decode: $f missing or empty in $run"
done
ok "decode: the window held the whole batch in every row; TBT $(jq -c '[.results[] | {batch_size, tbt_p50_ms: (.tbt.median * 1000 * 10 | round / 10), samples: .tbt.count}]' "$run/decode_results.json")"

bench stress --stress-mode manual --concurrency-levels 1 2 4 --point-duration 20 --warmup-duration 4 \
	--input-length 128 --output-length 32
jqe "stress: want 3 complete levels without errors or cut requests: $(jq -c '[.results[] | {level, complete, errors, cut}]' "$run/stress_results.json")" \
	'(.results | length) == 3 and all(.results[]; .complete and .errors == 0 and .cut == 0)' "$run/stress_results.json"
failed=$(cat "$run"/c=*/requests.jsonl | jq -s '[.[] | select(.error != null)] | length')
[ "$failed" -eq 0 ] || fail "stress: $failed requests failed (see $run/c=*/requests.jsonl)"
pngs=$(find "$run/plots" -name '*.png' | wc -l)
[ "$pngs" -eq 7 ] || fail "stress: $pngs PNG plots in $run/plots, want 7"
ok "stress: 3 levels, no failed requests, 7 PNG plots"

step "prediction: stress on the simulated engine fitted to Ollama's prefill and decode runs (sim:<dir>)"
# The profile is fitted to the two runs above (pkg/predict); the same stress
# plan then runs on it and is compared with the stress run measured on
# Ollama: every delta is the prediction's error. Misses are findings, not
# failures (README: "Predicting the stress curve"); only a run that cannot
# be made fails here.
measured=$(cd "$out/stress/latest" && pwd -P)
rc=0
run "$work/bin/veeksha.microbench.stress" --api-base "sim:$out" --output-dir "$work/predicted" --no-progress \
	--stress-mode manual --concurrency-levels 1 2 4 --point-duration 20 --warmup-duration 4 \
	--input-length 128 --output-length 32 --compare-to "$measured" || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || fail "the predicted stress run exited with status $rc"
profile="$work/predicted/stress/latest/sim_profile.json"
[ -s "$profile" ] || fail "the predicted run has no sim_profile.json"
jq -e '.settings.predicted == true' "$work/predicted/stress/latest/stress_results.json" >/dev/null ||
	fail "the predicted run's results do not say settings.predicted"
head -1 "$work/predicted/stress/latest/comparison.csv" | grep -q prediction_error_pct ||
	fail "the comparison with the measured run is not labelled as prediction error (comparison.csv)"
echo "fitted profile: $(jq -c '{chunk_size, max_running, cost}' "$profile")"
echo "fit residuals: $(jq -c '[.fit.prefill[], .fit.decode[] | {point, error_pct: (.error_pct * 10 | round / 10)}]' "$profile")"
echo "assumed: $(jq -c '.fit.assumed' "$profile")"
ok "prediction from prefill + decode compared with the measured stress curve (table above)"

step "output lengths: ignore_eos and min_tokens"
# Ollama's OpenAI layer has no ignore_eos or min_tokens and drops them, so a
# model may end a request early; the output_tokens checks report those.
all=$(find "$out/prefill/latest/" "$out/decode/latest/" "$out/stress/latest/" -name requests.jsonl -exec cat {} + |
	jq -s '[.[] | select(.error == null)]')
total=$(jq 'length' <<<"$all")
early=$(jq '[.[] | select(.output_tokens < .target_output_tokens)] | length' <<<"$all")
stops=$(jq '[.[] | select(.finish_reason == "stop")] | length' <<<"$all")
echo "Ollama ignores ignore_eos and min_tokens: $early of $total successful requests ended before max_tokens ($stops with finish_reason \"stop\")"

step "cross-check against Ollama's own clock"
run "$work/bin/ollamacheck" -api-base "$api" -lengths 64,256,1024 -reps 3 -output-tokens 32 -v ||
	fail "cross-check (tools/ollamacheck) failed"

stop_server
ok "all checks passed"
if [ -n "${VEEKSHA_E2E_OUT:-}" ]; then
	echo "benchmark outputs kept in $out"
fi
