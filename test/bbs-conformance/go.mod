// Diego's Go BBS client against our facade (see main.go). code.cloudfoundry.org/bbs has no go.mod of its own,
// so its imports are resolved here. The Go module proxy serves only some versions (its /@v/list answers 403):
// bbs 045cbe35 (2026-05-07, as in ../bbs-vectors); cfhttp/v2 v2.1.0, rata v1.0.0, go-sse v1.0.0 as in
// diego-release's go.mod; rep v0.1442.0 (a served tag; its client is what cfdot cell-states uses, cellstates.go);
// locket v1.5.0 (a served tag; its client and lock runner are what cfdot and Diego's components use, locket.go),
// which raised tlsconfig, lager, clock and grpc to its versions. Tidy with
// `GOWORK=off GOFLAGS=-mod=mod go mod tidy -e`.
module diego-operator/test/bbs-conformance

go 1.26.0

require (
	code.cloudfoundry.org/bbs v0.0.0-20260507155651-045cbe358842
	code.cloudfoundry.org/clock v1.78.0
	code.cloudfoundry.org/lager/v3 v3.77.0
	code.cloudfoundry.org/locket v1.5.0
	code.cloudfoundry.org/rep v0.1442.0
	github.com/tedsuo/ifrit v0.0.0-20260418191334-846868129986
	google.golang.org/grpc v1.82.0
)

require (
	code.cloudfoundry.org/cfhttp/v2 v2.1.0 // indirect
	code.cloudfoundry.org/diego-logging-client v0.115.0 // indirect
	code.cloudfoundry.org/ecrhelper v0.0.0-20230612152651-56a9cdc53d60 // indirect
	code.cloudfoundry.org/executor v0.1442.0 // indirect
	code.cloudfoundry.org/go-diodes v0.0.0-20260706112827-32a910f327a2 // indirect
	code.cloudfoundry.org/go-loggregator/v9 v9.2.1 // indirect
	code.cloudfoundry.org/routing-info v0.0.0-20230911184850-3a6d4ccb3cfc // indirect
	code.cloudfoundry.org/tlsconfig v0.61.0 // indirect
	github.com/Masterminds/semver/v3 v3.5.0 // indirect
	github.com/aws/aws-sdk-go v1.50.26 // indirect
	github.com/aws/aws-sdk-go-v2 v1.24.1 // indirect
	github.com/aws/aws-sdk-go-v2/config v1.26.6 // indirect
	github.com/aws/aws-sdk-go-v2/credentials v1.16.16 // indirect
	github.com/aws/aws-sdk-go-v2/feature/ec2/imds v1.14.11 // indirect
	github.com/aws/aws-sdk-go-v2/internal/configsources v1.2.10 // indirect
	github.com/aws/aws-sdk-go-v2/internal/endpoints/v2 v2.5.10 // indirect
	github.com/aws/aws-sdk-go-v2/internal/ini v1.7.3 // indirect
	github.com/aws/aws-sdk-go-v2/service/ecr v1.24.7 // indirect
	github.com/aws/aws-sdk-go-v2/service/ecrpublic v1.21.6 // indirect
	github.com/aws/aws-sdk-go-v2/service/internal/accept-encoding v1.10.4 // indirect
	github.com/aws/aws-sdk-go-v2/service/internal/presigned-url v1.10.10 // indirect
	github.com/aws/aws-sdk-go-v2/service/sso v1.18.7 // indirect
	github.com/aws/aws-sdk-go-v2/service/ssooidc v1.21.7 // indirect
	github.com/aws/aws-sdk-go-v2/service/sts v1.26.7 // indirect
	github.com/aws/smithy-go v1.19.0 // indirect
	github.com/awslabs/amazon-ecr-credential-helper/ecr-login v0.0.0-20240206212017-5795caca6e8e // indirect
	github.com/bmizerany/pat v0.0.0-20210406213842-e4b6760bdd6f // indirect
	github.com/go-sql-driver/mysql v1.10.1 // indirect
	github.com/go-task/slim-sprig/v3 v3.0.0 // indirect
	github.com/go-test/deep v1.1.2 // indirect
	github.com/gogo/protobuf v1.3.2 // indirect
	github.com/google/pprof v0.0.0-20260709232956-b9395ee17fa0 // indirect
	github.com/jackc/pgx/v5 v5.13.0 // indirect
	github.com/jmespath/go-jmespath v0.4.0 // indirect
	github.com/mitchellh/go-homedir v1.1.0 // indirect
	github.com/nu7hatch/gouuid v0.0.0-20131221200532-179d4d0c4d8d // indirect
	github.com/onsi/ginkgo/v2 v2.32.0 // indirect
	github.com/openzipkin/zipkin-go v0.4.3 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/sirupsen/logrus v1.9.3 // indirect
	github.com/stretchr/testify v1.11.1 // indirect
	github.com/tedsuo/rata v1.0.0 // indirect
	github.com/vito/go-sse v1.0.0 // indirect
	golang.org/x/mod v0.38.0 // indirect
	golang.org/x/net v0.57.0 // indirect
	golang.org/x/sync v0.22.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
	golang.org/x/text v0.41.0 // indirect
	golang.org/x/tools v0.48.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260713224248-f5fc221cf8c4 // indirect
	google.golang.org/protobuf v1.36.11 // indirect
)
