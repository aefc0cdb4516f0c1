# Common tasks. The two that matter: `make dev` (run the portal on the embedded default) and `make test`.
.PHONY: dev test vet build fuzz bench checks clean

dev:
	go run ./cmd/portal dev

test:
	go test -race -timeout 20m ./...

vet:
	go vet ./...

build:
	mkdir -p bin && go build -o bin/ ./cmd/...

# Runs each fuzzer for FUZZTIME (default 20s).
FUZZTIME ?= 20s
fuzz:
	go test -run '^$$' -fuzz FuzzParsePath -fuzztime $(FUZZTIME) ./gateway/httprelay/
	go test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./gateway/sticky/
	go test -run '^$$' -fuzz FuzzCompile -fuzztime $(FUZZTIME) ./firewall/
	go test -run '^$$' -fuzz FuzzParsePrefix -fuzztime $(FUZZTIME) ./firewall/
	go test -run '^$$' -fuzz FuzzProxyV2RoundTrip -fuzztime $(FUZZTIME) ./gateway/proxyproto/
	go test -run '^$$' -fuzz FuzzReadV2 -fuzztime $(FUZZTIME) ./gateway/proxyproto/
	go test -run '^$$' -fuzz FuzzSniff -fuzztime $(FUZZTIME) ./gateway/l4/
	go test -run '^$$' -fuzz FuzzClientHello -fuzztime $(FUZZTIME) ./gateway/l4/
	go test -run '^$$' -fuzz FuzzDecodeRecord -fuzztime $(FUZZTIME) ./stream/storage/disk/

bench:
	go test -run '^$$' -bench . -benchmem ./bench/

# The outside-in checks (need python3, jq, curl, openssl).
checks:
	../shared/checks/relay-skeleton
	../shared/checks/tcp-endpoints

clean:
	rm -rf bin .portal-dev
