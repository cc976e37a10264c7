module diego-operator/test/bbs-vectors

go 1.26

require (
	code.cloudfoundry.org/bbs v0.0.0-20260507155651-045cbe358842
	github.com/gogo/protobuf v1.3.2
)

require (
	code.cloudfoundry.org/clock v1.60.0 // indirect
	code.cloudfoundry.org/lager/v3 v3.0.3 // indirect
	github.com/Masterminds/semver/v3 v3.4.0 // indirect
	github.com/go-sql-driver/mysql v1.10.1 // indirect
	github.com/go-task/slim-sprig/v3 v3.0.0 // indirect
	github.com/go-test/deep v1.1.2 // indirect
	github.com/google/pprof v0.0.0-20260402051712-545e8a4df936 // indirect
	github.com/jackc/pgx/v5 v5.13.0 // indirect
	github.com/onsi/ginkgo/v2 v2.34.0 // indirect
	github.com/onsi/gomega v1.44.0 // indirect
	github.com/openzipkin/zipkin-go v0.4.2 // indirect
	github.com/stretchr/testify v1.11.1 // indirect
	github.com/tedsuo/ifrit v0.0.0-20230516164442-7862c310ad26 // indirect
	golang.org/x/mod v0.35.0 // indirect
	golang.org/x/sync v0.22.0 // indirect
	golang.org/x/tools v0.44.0 // indirect
)
