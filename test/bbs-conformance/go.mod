// Diego's Go BBS client against our facade (see main.go). code.cloudfoundry.org/bbs has no go.mod of its own,
// so its imports are resolved here. The Go module proxy serves only some versions (its /@v/list answers 403):
// bbs 045cbe35 (2026-05-07, as in ../bbs-vectors); tlsconfig v0.58.0 (the served tag nearest that date);
// cfhttp/v2 v2.1.0, rata v1.0.0, go-sse v1.0.0 as in diego-release's go.mod. locket (imported only by bbs's
// own tests) is not served, hence `GOWORK=off GOFLAGS=-mod=mod go mod tidy -e`.
module diego-operator/test/bbs-conformance

go 1.26

require (
	code.cloudfoundry.org/bbs v0.0.0-20260507155651-045cbe358842
	code.cloudfoundry.org/lager/v3 v3.0.3
)

require (
	code.cloudfoundry.org/cfhttp/v2 v2.1.0 // indirect
	code.cloudfoundry.org/clock v1.60.0 // indirect
	code.cloudfoundry.org/tlsconfig v0.58.0 // indirect
	github.com/Masterminds/semver/v3 v3.4.0 // indirect
	github.com/bmizerany/pat v0.0.0-20170815010413-6226ea591a40 // indirect
	github.com/go-sql-driver/mysql v1.10.1 // indirect
	github.com/go-task/slim-sprig/v3 v3.0.0 // indirect
	github.com/go-test/deep v1.1.2 // indirect
	github.com/gogo/protobuf v1.3.2 // indirect
	github.com/google/pprof v0.0.0-20260202012954-cb029daf43ef // indirect
	github.com/jackc/pgx/v5 v5.13.0 // indirect
	github.com/onsi/ginkgo v1.16.5 // indirect
	github.com/onsi/ginkgo/v2 v2.28.1 // indirect
	github.com/onsi/gomega v1.39.1 // indirect
	github.com/openzipkin/zipkin-go v0.4.2 // indirect
	github.com/stretchr/testify v1.11.1 // indirect
	github.com/tedsuo/ifrit v0.0.0-20230516164442-7862c310ad26 // indirect
	github.com/tedsuo/rata v1.0.0 // indirect
	github.com/vito/go-sse v1.0.0 // indirect
	golang.org/x/mod v0.32.0 // indirect
	golang.org/x/sync v0.22.0 // indirect
	golang.org/x/tools v0.41.0 // indirect
)
