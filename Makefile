# Ringback. Each Go module is listed: `go test ./...` does not cross modules
# at the workspace root.
MODULES := freeswitch/sim proto services
GO ?= go

.PHONY: run test lint build bench conformance fssim generate generate-check setup

## run: the whole suite in one process (simulator, in-process NATS, rating, cdr, webhook, dialer,
## origination, gateway on http://127.0.0.1:8080) after scripts/setup; prints
## the dev account's API key (RINGBACK_DEV_API_KEY picks it); the dev account
## is rated with docs/examples/tariff.csv.
run:
	@scripts/setup >/dev/null
	cd services && $(GO) run ./cmd/ringback

## test: lint, then every module's tests with the race detector (includes the
## simulator's ESL conformance suite).
test: lint
	@scripts/setup >/dev/null
	@for m in $(MODULES); do \
		echo "== go test $$m"; \
		(cd $$m && $(GO) test -race -count=1 -timeout 15m ./...) || exit 1; \
	done

## lint: gofmt and go vet over every module, buf lint, generated code check.
lint:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do (cd $$m && $(GO) vet ./...) || exit 1; done
	cd proto && GOWORK=off $(GO) tool -modfile=../tools/go.mod buf lint
	$(MAKE) generate-check

## generate: buf lint, then regenerate proto/gen (tools pinned in tools/go.mod).
generate:
	bash proto/scripts/generate.sh

## generate-check: fail with a diff if proto/gen is not what the protos give.
generate-check:
	bash proto/scripts/generate-check.sh

## conformance: the ESL conformance suite alone (set FREESWITCH_ESL_ADDR to
## run it against a real FreeSWITCH).
conformance:
	cd freeswitch/sim && $(GO) test -race -count=1 -v ./conformance/

## build: every binary into bin/.
build:
	mkdir -p bin
	cd freeswitch/sim && $(GO) build -o ../../bin/fssim ./cmd/fssim
	cd services && $(GO) build -o ../bin/ ./cmd/...

## setup: PostgreSQL, Redis and NATS (JetStream) on loopback: reused if
## running, else installed (apt-get) and started (scripts/setup).
setup:
	@scripts/setup >/dev/null

## fssim: run the FreeSWITCH simulator on 127.0.0.1:8021 (control API :8022).
fssim:
	cd freeswitch/sim && $(GO) run ./cmd/fssim

## bench: the benchmarks recorded in docs/benchmarks.md (simulator, ESL
## client, sustained calls through origination with the bare-eslgo baseline,
## rating: prefix lookups, Authorize over gRPC, 1M-rate import; cdr: ingest,
## queries over 10M records (in a database of their own, filled once); webhook:
## paced 3,000/s, throughput, a stalled neighbour, the naive baseline; banner: abuse
## refused, POST to originate, switch event to the visitor's stream; dialer: a 1M-row
## list import, the engine's dial rate; agents: connecting a customer; pacing: the
## predictive pacer in its discrete-event harness, progressive beside it).
bench:
	@scripts/setup >/dev/null
	cd freeswitch/sim && $(GO) test -run '^$$' -bench . -benchmem -count 3 ./...
	cd services && $(GO) test -run '^$$' -bench . -benchtime 5000x -count 3 ./internal/esl/
	cd services && $(GO) test -run '^$$' -bench 'CreateCallSustained' -benchtime 1x -count 3 ./origination/
	cd services && $(GO) test -run '^$$' -bench 'BareEslgo' -benchtime 20000x -count 3 ./origination/
	cd services && $(GO) test -run '^$$' -bench . -benchtime 2s -cpu 1 -count 3 ./rating/prefix/
	cd services && $(GO) test -run '^$$' -bench 'AuthorizeGRPC' -benchtime 100000x -count 3 ./rating/
	cd services && $(GO) test -run '^$$' -bench 'Import1M' -benchtime 1x -count 3 ./rating/
	cd services && $(GO) test -run '^$$' -bench 'Ingest$$|IngestSustained|StoreInsert' -benchtime 200000x -count 3 ./cdr/
	cd services && $(GO) test -run '^$$' -bench 'IngestNaive' -benchtime 30000x -count 1 ./cdr/
	cd services && CDR_BENCH_ROWS=10000000 $(GO) test -run '^$$' -bench 'ListFirstPage' -benchtime 200x -count 3 ./cdr/
	cd services && CDR_BENCH_ROWS=10000000 $(GO) test -run '^$$' -bench 'Export1M|Statistics' -benchtime 1x -count 3 ./cdr/
	cd services && $(GO) test -run '^$$' -bench 'ConsumeBatch' -benchtime 100000x -count 3 ./internal/natsbus/
	cd services && $(GO) test -run '^$$' -bench 'DeliveryPaced|StalledNeighbour' -benchtime 1x -count 3 ./webhook/
	cd services && $(GO) test -run '^$$' -bench 'DeliveryThroughput' -benchtime 20000x -count 3 ./webhook/
	cd services && $(GO) test -run '^$$' -bench 'BannerRefuseAbuse' -benchtime 3s -count 3 ./gateway/
	cd services && $(GO) test -run '^$$' -bench 'BannerSSELatency' -benchtime 2000x -count 3 ./gateway/
	cd services && $(GO) test -run '^$$' -bench 'BannerPostToOriginate' -benchtime 400x -count 3 ./suite/
	cd services && $(GO) test -run '^$$' -bench 'BannerSwitchToBrowser' -benchtime 200x -count 3 ./suite/
	cd services && $(GO) test -run '^$$' -bench 'ImportList1M' -benchtime 1x -count 3 -timeout 30m ./dialer/
	cd services && $(GO) test -run '^$$' -bench 'EngineCampaign' -benchtime 3x -count 3 ./dialer/
	cd services && $(GO) test -run '^$$' -bench 'ExportRecords1M' -benchtime 1x -count 3 -timeout 30m ./dialer/
	cd services && DIALER_BENCH_CAP=500 $(GO) test -run '^$$' -bench 'DialerCampaign' -benchtime 1x -count 1 -timeout 40m ./suite/
	cd services && $(GO) test -run '^$$' -bench 'PacingEndToEnd' -benchtime 1x -count 1 -timeout 20m ./suite/
	cd services && $(GO) test -run '^$$' -bench 'ConnectCall' -benchtime 500x -count 3 ./origination/
	cd services && $(GO) test -run '^$$' -bench 'AgentStore' -count 3 ./dialer/
	scripts/bench/pacing
	cd services && $(GO) test -run '^$$' -bench 'NaiveDelivery' -benchtime 3000x -count 1 ./webhook/
