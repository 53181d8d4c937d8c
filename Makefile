# vigil Makefile. `make test` is the test command README.md and .ci/run use.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GOBIN   ?= $(shell go env GOPATH)/bin
PROTO   := common injector siem

.PHONY: all build test lint race bench soak generate proto docs check-generated run clean kube-apiserver

all: build test

build:
	go build -trimpath -ldflags "-X github.com/vigilsec/vigil/core/cli.Version=$(VERSION)" -o bin/vigil ./cmd/vigil

# The test command of README.md and CI, as root: every test, and the live
# ones (built with -tags live) that fire the Linux pack at the kernel audit
# sensor. -p 1: those of cmd/vigil, plugins/siem/local and its sensor share
# the host's one audit stream and its audit status, so the packages run one
# at a time. A contributor without root runs `go test ./...`: no live test.
# The k8s injector's tests also run the Kubernetes pack against a real
# kube-apiserver (built here, below) over Debian's etcd-server.
test: bin/kube-apiserver
	go test -tags live -p 1 -count=1 -timeout 25m ./...

# Static checks CI runs before the tests: vet (with and without the live
# tests), staticcheck (an exact version, fetched through the module proxy),
# a tidy module, and the one layering rule: nothing under core/ imports
# plugins/ (plugins depend on core and register their typed hooks at init,
# never the reverse).
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	go vet ./...
	go vet -tags live ./...
	go run $(STATICCHECK) -tags live ./...
	go mod tidy -diff
	@if go list -f '{{.ImportPath}}: {{join .Imports " "}}' ./core/... | grep ' github.com/vigilsec/vigil/plugins'; then \
		echo "a core/ package imports plugins/ (above)" >&2; exit 1; fi

race:
	go test -race -count=1 -timeout 20m ./...

# The soak test (as root): the whole Linux pack fired 20 times in a row,
# then 5 times under stress-ng --cpu 4; no miss, no error, no noisy
# result, and the host left as it was.
soak:
	VIGIL_SOAK=20 go test -tags live -count=1 -timeout 60m -run '^TestLinuxPackSoak$$' -v ./cmd/vigil
	VIGIL_SOAK=5 VIGIL_SOAK_STRESS=1 go test -tags live -count=1 -timeout 60m -run '^TestLinuxPackSoak$$' -v ./cmd/vigil

# A real kube-apiserver (k8s.io/kubernetes v1.37.2 through the module
# proxy), for the Kubernetes pack's tests: see testdata/kube-apiserver.
kube-apiserver: bin/kube-apiserver

KUBE_VERSION := v1.37.2
KUBE_LDFLAGS := -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 \
	-X k8s.io/component-base/version.gitTreeState=clean
bin/kube-apiserver: testdata/kube-apiserver/go.mod testdata/kube-apiserver/go.sum
	cd testdata/kube-apiserver && go build -trimpath -ldflags "$(KUBE_LDFLAGS)" -o ../../bin/kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver

bench:
	go test -run '^$$' -bench . -benchmem ./...

# Regenerate the protobuf code (committed, so building needs no protoc).
# Needs protoc and its well-known types (Debian: protobuf-compiler and
# libprotobuf-dev) and the two Go generators below.
proto:
	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
	PATH="$(GOBIN):$$PATH" protoc -Ivigil/plugin/v1=core/plugin/proto/v1 \
		--go_out=. --go_opt=module=github.com/vigilsec/vigil \
		--go-grpc_out=. --go-grpc_opt=module=github.com/vigilsec/vigil \
		$(addprefix vigil/plugin/v1/,$(addsuffix .proto,$(PROTO)))

# The technique pages, their index and the ATT&CK coverage matrix under
# docs/, generated from the built-in catalog, rules and recordings (as
# Stratus Red Team's docs are from its registry). Committed; the test
# TestCommittedDocsAreCurrent (cmd/docgen) fails when they are stale.
docs:
	go run ./cmd/docgen -out docs

generate: proto docs
	go generate ./...

check-generated: generate
	git diff --exit-code

run: build
	./bin/vigil run --out vigil-out

clean:
	rm -rf bin/
