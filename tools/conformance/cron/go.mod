module wasmscaler.dev/tools/conformance/cron

go 1.26.0

require github.com/ringtail/go-cron v1.0.1-0.20201027122514-cfb21c105f50

require (
	github.com/satori/go.uuid v1.2.0 // indirect
	gopkg.in/check.v1 v1.0.0-20201130134442-10cb98267c6c // indirect
)
